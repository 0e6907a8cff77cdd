"""The engine: runs approved plans step by step, on the worker's threads.

Each step is idempotent and recorded when done, so a restarted process resumes at the
first step not done. A request's steps run under its lease (``request:<id>``), held
and renewed by one process at a time; another replica resumes them once it expires.

One code path runs every step, grouped or not (:meth:`PlanRunner._execute`): the
lease check, the action in the step's log context, its metrics, ``mark_step`` with
this process as holder, a wait checkpointed and retried after the delay the action
asked for (spread by the action's :class:`~aws.actions.retry.RetryPolicy`), and the
same undo. A plan whose steps are grouped by target (a distribution) runs its groups
independently, as :mod:`bot.plan_groups` describes; a plain plan is its simple case.

On failure the engine undoes, in reverse order, what the request (or the failed
group) added, and the lifecycle says exactly what it undid and what remains.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from aws.actions import Kept, StepContext, StepWaiting, get_action
from aws.actions.disposable import DISPOSABLE, DISPOSABLE_TAG
from aws.actions.images import ImageStatusCache
from aws.sessions import AwsSessions
from bot import crashpoints, messages, plan_groups
from bot.verbs import registry
from bot.holdings import StoreHoldings
from bot.leases import Leases
from bot.lifecycle import Lifecycle, UndoReport
from bot.logs import log_context
from bot.notifier import Notifier
from bot.requests import APPROVED, RUNNING, STEP_DONE, STEP_FAILED, STEP_PENDING, STEP_UNDONE, Request, Step
from bot.store import Store

log = logging.getLogger("amibot.engine")

# What one step came to (besides a _Waiting): done, failed (recorded with its words),
# or stopped before anything was recorded (cancelled, shutting down, lease lost).
DONE, FAILED, STOPPED = "done", "failed", "stopped"


class StepObserver(Protocol):
    """Told how long each step took (metrics)."""

    def step_finished(self, action: str, outcome: str, seconds: float) -> None: ...


class _NoStepObserver:
    def step_finished(self, action: str, outcome: str, seconds: float) -> None:
        pass


@dataclass
class _Waiting:
    """A step left pending because its work is under way in AWS."""

    step: Step
    waiting: StepWaiting
    first_time: bool  # nothing was checkpointed before: its first wait
    label: str  # how the distribution's progress names it (its target)


def request_lease(request_id: int) -> str:
    """The lease under which a request's steps run."""
    return f"request:{request_id}"


class PlanRunner:
    """Executes a request's plan, records each step, keeps its progress shown."""

    def __init__(self, store: Store, sessions: AwsSessions, notifier: Notifier, *, lifecycle: Lifecycle | None = None,
                 sleep: Callable[[float], None] = time.sleep, grant_wait_seconds: float = 300.0, clock: Callable[[], float] = time.time,
                 leases: Leases | None = None, observer: StepObserver | None = None, consistency_window_seconds: float = 300.0):
        self.store = store
        self.consistency_window_seconds = consistency_window_seconds
        self.sessions = sessions
        self.notifier = notifier
        self.lifecycle = lifecycle or Lifecycle(store, notifier, clock=clock)
        self.sleep = sleep
        self.grant_wait_seconds = grant_wait_seconds
        self.clock = clock
        self.observer = observer or _NoStepObserver()
        # Every image a copy or migration waits on carries amibot:disposable from its
        # creation call until delivered: the light look between full ones asks by it.
        self.image_status = ImageStatusCache(marked=(DISPOSABLE_TAG, DISPOSABLE[DISPOSABLE_TAG]))
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
            clock=self.clock,
            log=lambda text: log.info("%s step %s: %s", request.display_id, seq, text),
            holdings=StoreHoldings(self.store, request.id, self.leases),
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
            self.lifecycle.cancelled_while_running(request, actor, self.undo_done_steps(request))

    # -- the plan's three phases ------------------------------------------------------

    def _run(self, request_id: int) -> None:
        request = self.store.get(request_id)
        if request.state == APPROVED:
            if not self.lifecycle.start(request_id):
                return
        elif request.state != RUNNING:
            return  # decided otherwise meanwhile, or already finished
        plan = plan_groups.phases(request)
        if not self._run_common(request_id, plan.before):
            return
        if not plan.groups:
            self._succeed(request_id)
            return
        waits = self._run_groups(request_id)
        if waits is None:
            return
        if waits:
            self._wait(request_id, waits)
            return
        # After the groups (the removal of the temporary share): reported, never undone.
        for step in plan.after:
            if step.state != STEP_PENDING:
                continue
            outcome = self._execute(request_id, step.seq)
            if outcome == STOPPED:
                return
            if isinstance(outcome, _Waiting):
                outcome.label = "cleanup"
                self._wait(request_id, [outcome])
                return
        self._finish_groups(request_id)

    def _run_common(self, request_id: int, steps: list[Step]) -> bool:
        """The common steps, in order; a failure fails the request. True once all are done."""
        for step in steps:
            if step.state == STEP_DONE:
                continue
            if step.state == STEP_FAILED:
                # The process died while handling this failure: finish it (undo and
                # the final reply are idempotent).
                self._finish_failure(request_id, step, step.error or "the step failed")
                return False
            if step.state != STEP_PENDING:
                return False
            outcome = self._execute(request_id, step.seq)
            if isinstance(outcome, _Waiting):
                self._wait(request_id, [outcome])
                return False
            if outcome == FAILED:
                failed = self._step(request_id, step.seq)
                self._finish_failure(request_id, failed, failed.error or "the step failed")
            if outcome != DONE:
                return False
            # The thread stays quiet: the progress reply is edited, no reply per step.
            self.notifier.progress(request_id)
            self.notifier.update_root(request_id)
        return True

    def _run_groups(self, request_id: int) -> list[_Waiting] | None:
        """Each open group as far as it goes; a failed group is undone alone. Returns
        the groups' waits (none: every group finished), None if stopped."""
        waits: list[_Waiting] = []
        for name, steps in plan_groups.groups(self.store.get(request_id)).items():
            if plan_groups.group_state(steps) != plan_groups.OPEN:
                continue
            for step in steps:
                if step.state != STEP_PENDING:
                    continue
                outcome = self._execute(request_id, step.seq)
                if outcome == STOPPED:
                    return None
                if isinstance(outcome, _Waiting):
                    waits.append(outcome)
                    break
                if outcome == FAILED:
                    self._undo_group(request_id, name)
                    break
        return waits

    # -- one step ---------------------------------------------------------------------

    def _step(self, request_id: int, seq: int) -> Step:
        return next(s for s in self.store.get(request_id).steps if s.seq == seq)

    def _may_go_on(self, request_id: int, request: Request | None = None) -> bool:
        """Still this process's to run: not cancelled, not shutting down, lease not lost."""
        if request is not None and request.state != RUNNING:
            return False  # cancelled meanwhile
        if self.stopping.is_set():
            return False  # shutting down: the next process resumes from this step
        # A process that stalled past its lease: another one has the request, and
        # runs (idempotently) and records this step itself.
        return not self.leases.lost(request_lease(request_id))

    def _execute(self, request_id: int, seq: int) -> str | _Waiting:
        """Run one step: ``DONE``, ``FAILED`` (recorded with its words), a _Waiting
        (its partial result checkpointed), or ``STOPPED`` (nothing recorded)."""
        request = self.store.get(request_id)  # earlier steps' results, fresh
        step = next(s for s in request.steps if s.seq == seq)
        if not self._may_go_on(request_id, request):
            return STOPPED
        crashpoints.reached(f"before:{seq}")
        started, outcome = time.monotonic(), DONE
        try:
            with log_context(step=seq, account=step.account_id, region=step.region):
                log.debug("step %s: %s", seq, step.action)
                result = get_action(step.action).execute(self.context(request, seq), step.account_id, step.region, step.params)
            crashpoints.reached(f"executed:{seq}")
        except StepWaiting as waiting:
            outcome = "waiting"
            if waiting.result:  # what is under way in AWS, recorded whoever goes on with it
                self.store.save_step_progress(request_id, seq, {**step.result, **waiting.result})
            if not self._may_go_on(request_id):
                return STOPPED
            return _Waiting(step, waiting, first_time=not step.result, label=plan_groups.group_name(step.params) or step.description.split(":")[0])
        except Exception as error:  # turned into words by messages.error_text
            outcome = FAILED
            if not self._may_go_on(request_id):
                return STOPPED
            self.store.mark_step(request_id, seq, STEP_FAILED, error=messages.error_text(error), by=self.leases.holder)
            return FAILED
        finally:
            self.observer.step_finished(step.action, outcome, time.monotonic() - started)
        if not self._may_go_on(request_id):
            return STOPPED
        self.store.mark_step(request_id, seq, STEP_DONE, result={**step.result, **result}, by=self.leases.holder)
        crashpoints.reached(f"done:{seq}")
        return DONE

    def _wait(self, request_id: int, waits: list[_Waiting]) -> None:
        """Leave the steps pending, show progress (edited at most once a minute), and
        come back after the soonest delay asked for, spread by the action's policy."""
        request = self.store.get(request_id)
        if plan_groups.is_grouped(request):
            progress = plan_groups.progress_text(request, [(w.label, w.waiting.progress) for w in waits])
        else:
            progress = waits[0].waiting.progress
        now = self.clock()
        # Jitter spreads the polls of many requests over the interval.
        delay = min(get_action(w.step.action).retry.spread(w.waiting.retry_after) for w in waits)
        fields = {"wake_at": now + delay, "progress": progress}
        show = request.progress_shown_at is None or now - request.progress_shown_at >= self.progress_edit_seconds
        if show:
            fields["progress_shown_at"] = now
        self.store.set_fields(request_id, **fields)
        # The thread stays quiet: the one progress reply and the card, edited in place.
        if show or any(w.first_time for w in waits):
            self.notifier.progress(request_id, progress)
        if show:
            self.notifier.update_root(request_id, progress=progress)
            self.lifecycle.progressed(request_id)  # a long copy's requester hears how far it is (at most every few minutes)

    # -- the end -------------------------------------------------------------------------

    def _succeed(self, request_id: int) -> None:
        request = self.store.get(request_id)
        # Before the transition: a crash in between settles again on resume (idempotent).
        settled = registry.settle_after_success(request, self.store, self.lifecycle)  # e.g. unshare marks the shares it removed
        self.lifecycle.succeeded(request_id, settled, request.params.get("duration_seconds"))

    def _finish_failure(self, request_id: int, failed_step: Step, error_words: str) -> None:
        """Undo what the request added, mark it failed, say so once."""
        report = self.undo_done_steps(self.store.get(request_id))
        self.lifecycle.failed(request_id, failed_step.seq, failed_step.description, error_words, report)

    def _finish_groups(self, request_id: int) -> None:
        # The temporary share was removed by the cleanup step: record it as undone,
        # so nothing later (unshare, audit, drift) treats it as in force.
        for step in self.store.get(request_id).steps:
            if step.action == "plan.remove_temporary" and step.state == STEP_DONE:
                for seq in step.params.get("steps", []):
                    self.store.mark_step(request_id, int(seq), STEP_UNDONE)
        # The verb's hooks settle what its finished groups did (e.g. retire's disable).
        settled = registry.settle_after_success(self.store.get(request_id), self.store, self.lifecycle)
        self.lifecycle.targets_finished(request_id, settled)

    # -- undo ------------------------------------------------------------------------------

    def undo_done_steps(self, request: Request) -> UndoReport:
        """Undo this request's done steps, newest first. A step whose undo failed
        stays done, so calling this again tries exactly what is left."""
        request = self.store.get(request.id)
        return self._undo(request, request.steps)

    def _undo_group(self, request_id: int, name: str) -> None:
        """Undo what one failed group did; what is kept or could not be undone is
        recorded on its failed step for the final message."""
        request = self.store.get(request_id)
        steps = plan_groups.groups(request)[name]
        report = self._undo(request, steps)
        failed = next(s for s in steps if s.state == STEP_FAILED)
        # Stored keys of plans written before the engine was one.
        self.store.save_step_progress(request_id, failed.seq, {**failed.result, "unit_undone": report.undone, "unit_remains": report.remains})

    def _undo(self, request: Request, steps: list[Step]) -> UndoReport:
        report = UndoReport()
        for step in reversed(steps):
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
