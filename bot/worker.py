"""The worker: runs approved plans step by step, off Slack's listener threads.

Each step is idempotent and recorded when done, so a restarted process resumes at the
first step not done. A request's steps run under its lease (``request:<id>``), held
and renewed by one process at a time; another replica resumes them once it expires. On failure the worker undoes, in reverse order, what this request
added, and says exactly what it undid and what remains.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from aws.actions import Kept, StepContext, StepWaiting, get_action
from aws.actions.images import ImageStatusCache
from aws.sessions import AwsSessions
from bot import crashpoints, messages, operations, slacktext, units
from bot.holdings import StoreHoldings
from bot.leases import Leases
from bot.logs import log_context
from bot.notifier import Notifier
from bot.requests import (
    ACTIVE,
    APPROVED,
    FAILED,
    RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_PENDING,
    STEP_UNDONE,
    SUCCEEDED,
    Request,
    Step,
)
from bot.store import Store

log = logging.getLogger("amibot.worker")


class Worker:
    """The bot's own thread pool (Bolt's 5-thread listener pool must stay free)."""

    def __init__(self, threads: int = 4, name: str = "amibot-worker"):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._futures: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run ``fn`` on the pool; exceptions are logged, never lost silently."""

        def guarded() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
                raise

        # The submitter's log context (request id...) follows the work to the pool.
        future = self._pool.submit(contextvars.copy_context().run, guarded)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no task is running or queued (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for future in pending:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:
                    pass
        raise TimeoutError("worker did not drain")

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


class StepObserver(Protocol):
    """Told how long each step took (metrics)."""

    def step_finished(self, action: str, outcome: str, seconds: float) -> None: ...


class _NoStepObserver:
    def step_finished(self, action: str, outcome: str, seconds: float) -> None:
        pass


class PlanRunner:
    """Executes a request's plan, records each step, reports in the thread."""

    def __init__(self, store: Store, sessions: AwsSessions, notifier: Notifier, *, notify_channel: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, grant_wait_seconds: float = 300.0, clock: Callable[[], float] = time.time,
                 leases: Leases | None = None, observer: StepObserver | None = None, consistency_window_seconds: float = 300.0):
        self.store = store
        self.consistency_window_seconds = consistency_window_seconds
        self.sessions = sessions
        self.notifier = notifier
        self.notify_channel = notify_channel
        self.sleep = sleep
        self.grant_wait_seconds = grant_wait_seconds
        self.clock = clock
        self.observer = observer or _NoStepObserver()
        self.image_status = ImageStatusCache()
        self.progress_edit_seconds = 60.0  # Slack: edit a root message at most once a minute
        self.stopping = threading.Event()  # SIGTERM: finish the current step, start no other
        self.leases = leases or Leases(store)

    def context(self, request: Request, seq: int) -> StepContext:
        steps = {s.seq: s for s in request.steps}
        return StepContext(
            previous=steps[seq].result if seq in steps else {},
            results={s.seq: s.result for s in request.steps},
            steps={s.seq: {"action": s.action, "account_id": s.account_id, "region": s.region, "params": s.params, "result": s.result, "state": s.state} for s in request.steps},
            request_id=request.display_id,
            requester=request.requester,
            approvers=sorted(set(request.approvals.values())),
            image_status=self.image_status,
            sessions=self.sessions,
            request_uid=request.uid,
            session_tag=f"{request.display_id}-{request.uid}",
            checkpoint=lambda result: self.store.save_step_progress(request.id, seq, result),
            sleep=self.sleep,
            grant_wait_seconds=self.grant_wait_seconds,
            consistency_window_seconds=self.consistency_window_seconds,
            log=lambda text: log.info("%s step %s: %s", request.display_id, seq, text),
            holdings=StoreHoldings(self.store, request.id),
        )

    def run(self, request_id: int) -> None:
        """Run (or resume) an approved request. One runner per request across every
        process (its lease): a second call while one runs returns at once."""
        with self.leases.hold(request_lease(request_id)) as mine:
            if mine:
                with log_context(request_id=f"R-{request_id}"):
                    self._run(request_id)

    def cancellation_said(self, request_id: int) -> bool:
        """Whether a cancelled request's cleanup finished (its final message is queued)."""
        return any(row["dedupe_key"] == f"final:{request_id}" for row in self.store.outbox(request_id))

    def cancel_running(self, request_id: int, actor: str) -> None:
        """After a running request was cancelled: wait for its current step (on
        whichever process runs it), then undo what it added (an unfinished copy
        included) and say what remains."""
        with self.leases.hold(request_lease(request_id), wait=True):
            if self.cancellation_said(request_id):
                return  # another process finished the cleanup
            request = self.store.get(request_id)
            report = self.undo_done_steps(request)
            undone, remains = report.undone, report.remains
            text = f":heavy_multiplication_x: {messages.mention(request.requester)} {request.display_id} was cancelled by {messages.mention(actor)} while running."
            text += "\nUndone: " + ("; ".join(undone) if undone else "nothing needed undoing")
            if remains:
                text += "\nRemains: " + "; ".join(remains)
            self.notifier.progress(request_id)
            self.notifier.final(request_id, text)

    def _run(self, request_id: int) -> None:
        request = self.store.get(request_id)
        if request.state == APPROVED:
            if not self.store.transition(request_id, APPROVED, RUNNING, "amibot", "execution started"):
                return
            self.notifier.update_root(request_id)
            self.notifier.progress(request_id)  # the one progress reply, edited as steps finish
        elif request.state != RUNNING:
            return  # decided otherwise meanwhile, or already finished
        if units.has_units(request):
            units.UnitRunner(self).run(request_id)  # a distribution: targets run independently
            return
        for step in request.steps:
            if step.state == STEP_DONE:
                continue
            if step.state == STEP_FAILED:
                # The process died while handling this failure: finish it (undo and
                # the final reply are idempotent).
                self._finish_failure(request_id, step, step.error or "the step failed")
                return
            if step.state != STEP_PENDING:
                return
            request = self.store.get(request_id)  # earlier steps' results, fresh
            if request.state != RUNNING:
                return  # cancelled meanwhile
            if self.stopping.is_set():
                return  # shutting down: the next process resumes from this step
            if self.leases.lost(request_lease(request_id)):
                return  # this process stalled past its lease: another one has the request
            crashpoints.reached(f"before:{step.seq}")
            started, outcome = time.monotonic(), "done"
            try:
                with log_context(step=step.seq, account=step.account_id, region=step.region):
                    log.debug("step %s: %s", step.seq, step.action)
                    result = get_action(step.action).execute(self.context(request, step.seq), step.account_id, step.region, step.params)
                crashpoints.reached(f"executed:{step.seq}")
            except StepWaiting as waiting:
                outcome = "waiting"
                self._wait(request, step, waiting)
                return
            except Exception as error:  # turned into words by messages.error_text
                outcome = "failed"
                self._fail(request_id, step, error)
                return
            finally:
                self.observer.step_finished(step.action, outcome, time.monotonic() - started)
            self.store.mark_step(request_id, step.seq, STEP_DONE, result={**step.result, **result}, by=self.leases.holder)
            crashpoints.reached(f"done:{step.seq}")
            # The thread stays quiet: the progress reply is edited, no reply per step.
            self.notifier.progress(request_id)
            self.notifier.update_root(request_id)
        self._succeed(request_id)

    def _wait(self, request: Request, step: Step, waiting: StepWaiting) -> None:
        """Leave the step pending, checkpoint what it started, show progress (edited
        at most once a minute), and come back after ``retry_after``."""
        first_time = not step.result
        if waiting.result:
            self.store.save_step_progress(request.id, step.seq, {**step.result, **waiting.result})
        now = self.clock()
        # Jitter spreads the polls of many requests over the interval.
        fields = {"wake_at": now + waiting.retry_after * random.uniform(0.9, 1.1), "progress": waiting.progress}
        show = request.progress_shown_at is None or now - request.progress_shown_at >= self.progress_edit_seconds
        if show:
            fields["progress_shown_at"] = now
        self.store.set_fields(request.id, **fields)
        if first_time or show:
            self.notifier.progress(request.id, waiting.progress)
        if show:
            self.notifier.update_root(request.id, progress=waiting.progress)

    def _succeed(self, request_id: int) -> None:
        request = self.store.get(request_id)
        # Before the transition: a crash in between settles again on resume (idempotent).
        settled = operations.settle_after_success(request, self.store, self.notifier)  # e.g. unshare marks the shares it removed
        duration = request.params.get("duration_seconds")
        if duration:
            # A time-boxed share runs from completion; its removal was approved with it.
            active_until = self.clock() + duration
            if not self.store.transition(request_id, RUNNING, ACTIVE, "amibot", "all steps done; time-boxed", active_until=active_until):
                return
        elif not self.store.transition(request_id, RUNNING, SUCCEEDED, "amibot", "all steps done"):
            return
        request = self.store.get(request_id)
        text = f":tada: {messages.mention(request.requester)} {request.display_id} is done: {slacktext.code(request.command_text)}."
        if request.active_until:
            text += f" The share ends automatically at {messages.when(request.active_until)}."
        text += "".join(f"\n{note}" for note in settled)
        self.notifier.progress(request_id)
        self.notifier.final(request_id, text)
        if self.notify_channel and request.kind == "copy":
            self.notifier.post(self.notify_channel, text, request_id, dedupe=f"notify:{request_id}")

    def _fail(self, request_id: int, failed_step: Step, error: Exception) -> None:
        error_words = messages.error_text(error)
        self.store.mark_step(request_id, failed_step.seq, STEP_FAILED, error=error_words, by=self.leases.holder)
        self._finish_failure(request_id, failed_step, error_words)

    def _finish_failure(self, request_id: int, failed_step: Step, error_words: str) -> None:
        """Undo what the request added, mark it failed, say so once."""
        request = self.store.get(request_id)
        report = self.undo_done_steps(request)
        undone, remains = report.undone, report.remains
        if not self.store.transition(request_id, RUNNING, FAILED, "amibot", f"step {failed_step.seq} failed", error=error_words):
            return
        text = messages.failure_text(request, failed_step.description, error_words, undone, remains)
        self.notifier.progress(request_id)
        self.notifier.final(request_id, text)

    def undo_done_steps(self, request: Request) -> "UndoReport":
        """Undo this request's done steps, newest first. A step whose undo failed
        stays done, so calling this again tries exactly what is left."""
        report = UndoReport()
        request = self.store.get(request.id)
        for step in reversed(request.steps):
            # A pending step with a checkpointed result is work in flight (a copy
            # started but unfinished): undo it too.
            in_flight = step.state == STEP_PENDING and bool(step.result)
            if step.state != STEP_DONE and not in_flight:
                continue
            action = get_action(step.action)
            if not action.undoable:
                continue
            try:
                with log_context(request_id=request.display_id, step=step.seq, account=step.account_id, region=step.region):
                    said = action.undo(self.context(request, step.seq), step.account_id, step.region, step.params, step.result)
            except Kept as kept:
                report.kept.append(str(kept))
                continue
            except Exception as error:
                report.failed.append(f"{step.description} (undo failed: {messages.error_text(error)})")
                continue
            self.store.mark_step(request.id, step.seq, STEP_UNDONE)
            if said:
                report.undone.append(said)
        return report


@dataclass
class UndoReport:
    """What undoing a request's steps did: undone, kept on purpose, failed."""

    undone: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def remains(self) -> list[str]:
        """Everything still in place: kept on purpose, then what could not be undone."""
        return self.kept + self.failed


def request_lease(request_id: int) -> str:
    """The lease under which a request's steps run."""
    return f"request:{request_id}"


def _result_detail(result: dict[str, Any]) -> str:
    if result.get("summary"):  # an action's own one-line account of what it did (copy)
        return result["summary"]
    if result.get("grant_id"):
        return f"grant id `{result['grant_id']}`" + ("" if result.get("created", True) else " (already existed)")
    if result.get("already_present"):
        return "already in place before: " + ", ".join(str(next(iter(e.values()))) for e in result["already_present"])
    return ""
