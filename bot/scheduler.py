"""The scheduler: APScheduler is the clock, the store is the truth.

One periodic *tick* job asks the store what is due (expired approvals, requests to
resume, messages to send) instead of keeping one job per request, so nothing lives
only in the scheduler and a restart rebuilds everything by simply ticking again.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.notifier import Notifier
from bot.requests import APPROVED, EXPIRED, PENDING_APPROVAL, RUNNING
from bot.store import Store
from bot.worker import PlanRunner, Worker
from bot import messages

log = logging.getLogger("amibot.scheduler")


class Clockwork:
    """What the tick does; callable directly by tests with a controllable clock."""

    def __init__(self, store: Store, notifier: Notifier, worker: Worker, runner: PlanRunner, clock: Callable[[], float] = time.time):
        self.store = store
        self.notifier = notifier
        self.worker = worker
        self.runner = runner
        self.clock = clock

    def tick(self) -> None:
        """Everything that is due now."""
        self.expire_pending()
        self.notifier.flush()

    def resume_unfinished(self) -> list[int]:
        """At start-up: continue every approved or running request from its first
        step not done (the process that ran it may have died)."""
        resumed = []
        for request in self.store.find(states=(APPROVED, RUNNING), limit=10_000):
            self.worker.submit(self.runner.run, request.id)
            resumed.append(request.id)
        return resumed

    def expire_pending(self) -> list[int]:
        """Pending requests past ``approval_ttl_hours`` expire; the requester is told."""
        expired = []
        now = self.clock()
        for request in self.store.find(states=(PENDING_APPROVAL,), limit=10_000):
            if request.expires_at <= now and self.store.transition(request.id, PENDING_APPROVAL, EXPIRED, "amibot", "approval window passed"):
                self.notifier.reply(
                    request.id,
                    f":zzz: {messages.mention(request.requester)} {request.display_id} expired: nobody decided in time. Nothing was changed; ask again if it is still needed.",
                    broadcast=True,
                    dedupe=f"final:{request.id}",
                )
                self.notifier.update_root(request.id)
                expired.append(request.id)
        return expired


class Scheduler:
    """Runs the clockwork's tick every few seconds on APScheduler."""

    def __init__(self, clockwork: Clockwork, tick_seconds: float = 5.0):
        self.clockwork = clockwork
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self._tick, "interval", seconds=tick_seconds, id="tick", max_instances=1, coalesce=True)

    def _tick(self) -> None:
        try:
            self.clockwork.tick()
        except Exception:
            log.exception("tick failed")

    def start(self) -> None:
        self._scheduler.start()
        self.clockwork.resume_unfinished()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return self._scheduler.running
