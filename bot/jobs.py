"""Jobs: background work by name, so the process that answers Slack need not do it.

A job is a kind (``command``, ``audit``, ``run``, ``cancel``) and a JSON payload.
``Jobs.submit`` runs it on this process's thread pool (the single-process bot,
``amibot serve --workers 0``, and the offline test stack) or, in the HTTP front of
``amibot serve --workers N``, records it — on SQLite in the front's inbox
(``bot.store.inbox``), on PostgreSQL in the store (``bot.store.jobs``) — where a
worker process's :class:`JobRunner` claims it under the lease ``job:<id>`` and marks
it done in the store; the front's :class:`InboxPruner` forgets done jobs. A worker
that dies stops renewing that lease; once it expires another worker takes the job
and does it again: every kind is safe to repeat (a preflight job carries the uid
of the request it stores, a run resumes from the first step not done, a cleanup
checks whether it was said).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from bot import grammar
from bot.leases import Leases
from bot.store import Store
from bot.worker import Worker

log = logging.getLogger("amibot.jobs")


class Jobs:
    """Named background work: on ``worker`` here, or (with ``store``) recorded for the
    worker processes. The payload is JSON either way, so both paths carry the same."""

    def __init__(self, worker: Any, store: Any = None):
        self.worker = worker
        self.store = store  # set (the front's inbox, or the store): durable, done by the worker processes
        self._handlers: dict[str, Callable[..., Any]] = {}

    @property
    def durable(self) -> bool:
        """Whether jobs go to the store (the HTTP front) rather than this process's pool."""
        return self.store is not None

    def register(self, kind: str, handler: Callable[..., Any]) -> None:
        """What a job of ``kind`` does: ``handler(**payload)``."""
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Callable[..., Any]:
        """The handler of ``kind`` (KeyError for a kind this version does not know)."""
        return self._handlers[kind]

    def submit(self, kind: str, **payload: Any) -> None:
        """Do ``kind`` with ``payload`` in the background (here, or in a worker process)."""
        text = json.dumps(payload)
        if self.store is not None:
            self.store.add_job(kind, payload)
        else:
            self.worker.submit(self._handlers[kind], **json.loads(text))


def request_jobs(jobs: Jobs, service: Any) -> None:
    """Register the request use cases' jobs (``service``: bot.services.RequestService)."""
    store = service.store

    def command(text: str, user: str, channel: str, response_url: str | None, uid: str) -> None:
        existing = store.request_id_for_uid(uid)
        if existing is not None:  # a worker died after storing the request: ask, unless it did
            if not store.has_outbox(f"root:{existing}"):
                service.ask(store.get(existing))
            return
        service.submit(grammar.parse_command(text), user=user, channel=channel, text=text, response_url=response_url, uid=uid)

    def audit(text: str, user: str, channel: str, response_url: str | None) -> None:
        service.audit(grammar.parse_command(text), response_url=response_url, channel=channel, user=user)

    jobs.register("command", command)
    jobs.register("audit", audit)
    jobs.register("run", lambda request_id: service.runner.run(request_id))
    jobs.register("cancel", lambda request_id, actor: service.runner.cancel_running(request_id, actor))


def job_counts(inbox: Any, store: Store) -> dict[str, Any]:
    """How many jobs wait (recorded, not marked done) and the creation time of the
    oldest (for /healthz): ``inbox`` where the front records them, ``store`` the marks."""
    jobs = inbox.job_times()
    done = store.done_jobs(job_id for job_id, _ in jobs)
    waiting = [created for job_id, created in jobs if job_id not in done]
    return {"waiting": len(waiting), "oldest_created_at": min(waiting) if waiting else None}


class JobRunner:
    """A worker process's side: claims waiting jobs of ``inbox`` (the front's, read
    only; or the store), as many as it has free threads, each under the lease
    ``job:<id>`` held (and renewed) while it runs, and marks it done in ``store`` (with
    one database, deletes it too). A job tried ``MAX_CLAIMS`` times (its workers kept
    dying) is dropped with an error in the log."""

    MAX_CLAIMS = 3

    def __init__(self, jobs: Jobs, store: Store, leases: Leases, *, inbox: Any = None, threads: int = 4, poll_seconds: float = 0.05):
        self.jobs = jobs
        self.store = store
        self.inbox = store if inbox is None else inbox
        self.leases = leases
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.pool = Worker(threads=threads, name="amibot-job")
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = 0

    def start(self) -> None:
        """Poll for jobs in a background thread until ``stop()``."""
        self._thread = threading.Thread(target=self._loop, name="amibot-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.dispatch()
            except Exception:
                log.exception("could not read the jobs")

    def dispatch(self) -> list[int]:
        """Start the waiting jobs this process has room for; their ids."""
        with self._lock:
            free = self.threads - len(self._running)
            running = set(self._running)
        if free <= 0:
            return []
        waiting = self.inbox.waiting_jobs(limit=free + len(running) + 50)
        done = self.store.done_jobs(job["id"] for job in waiting)  # the front forgets them soon
        waiting = [job for job in waiting if job["id"] not in done]
        taken = self.leases.held_by_others("job:") if waiting else set()
        started: list[int] = []
        for job in waiting:
            if len(started) >= free:
                break
            if job["id"] in running or f"job:{job['id']}" in taken:
                continue
            with self._lock:
                self._running.add(job["id"])
            self.pool.submit(self._do, job)
            started.append(job["id"])
        return started

    def _do(self, job: dict[str, Any]) -> None:
        try:
            with self.leases.hold(f"job:{job['id']}") as mine:
                if not mine:
                    return  # another worker has it
                claims = self.store.count_job_claim(job["id"])
                # Asked after the mark: the front forgets a job before its mark, so a
                # job done and forgotten meanwhile is seen by one of the two.
                if claims is None or not self.inbox.has_job(job["id"]):
                    return  # done meanwhile
                if claims > self.MAX_CLAIMS:
                    log.error("job %s (%s) dropped: tried %s times, its worker died each time", job["id"], job["kind"], claims - 1)
                else:
                    try:
                        self.jobs.handler(job["kind"])(**job["payload"])
                    except Exception:
                        log.exception("job %s (%s) failed", job["id"], job["kind"])
                self.store.finish_job(job["id"])
                if self.inbox is self.store:  # one database: the worker forgets it (job, then mark)
                    self.store.forget_jobs([job["id"]])
                    self.store.forget_job_marks([job["id"]])
                self.done += 1
        finally:
            with self._lock:
                self._running.discard(job["id"])

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until no job waits or runs (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._running
            if idle and not job_counts(self.inbox, self.store)["waiting"]:
                return
            time.sleep(0.02)
        raise TimeoutError("jobs did not drain")

    def stop(self) -> None:
        """Stop claiming; let the jobs running finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.pool.shutdown(wait=True)


class InboxPruner:
    """The front's side on SQLite: forgets the jobs of its inbox the workers marked
    done, then their marks (in that order: see ``JobRunner._do``), every ``every``
    seconds from a thread of its own — off the ack path."""

    def __init__(self, inbox: Any, store: Store, *, every: float = 1.0):
        self.inbox = inbox
        self.store = store
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prune(self) -> int:
        """Forget the jobs marked done; how many."""
        done = self.store.done_jobs(job_id for job_id, _ in self.inbox.job_times())
        self.inbox.forget_jobs(done)
        self.store.forget_job_marks(done)
        return len(done)

    def start(self) -> None:
        """Prune until ``stop()``."""
        self._thread = threading.Thread(target=self._loop, name="amibot-inbox", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.prune()
            except Exception:
                log.exception("could not forget the done jobs")

    def stop(self) -> None:
        """Stop pruning."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
