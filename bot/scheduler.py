"""The scheduler: APScheduler is the clock, the store is the truth.

One periodic *tick* job asks the store what is due (expired approvals, requests to
resume, messages to send) instead of keeping one job per request, so nothing lives
only in the scheduler and a restart rebuilds everything by simply ticking again.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.notifier import Notifier
from bot.requests import ACTIVE, APPROVED, CANCELLED, EXPIRED, PENDING_APPROVAL, REVOKED, RUNNING
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
        self.drift: Any = None  # bot.audit.DriftChecker, set by the wiring

    def tick(self) -> None:
        """Everything that is due now."""
        self.expire_pending()
        self.remind_pending()
        self.remind_share_ending()
        self.revoke_due()
        self.resume_waiting()
        self.check_drift()
        self.notifier.flush()

    def resume_unfinished(self) -> list[int]:
        """At start-up: continue every approved or running request from its first
        step not done (the process that ran it may have died)."""
        resumed = []
        for request in self.store.find(states=(APPROVED, RUNNING), limit=10_000):
            self.worker.submit(self.runner.run, request.id)
            resumed.append(request.id)
        # Cancelled while running, but the process died before the cleanup said so:
        # the final message is the marker that the cleanup finished.
        for request in self.store.find(states=(CANCELLED,), limit=10_000):
            said = any(row["dedupe_key"] == f"final:{request.id}" for row in self.store.outbox(request.id))
            if not said and any(s.state == "done" for s in request.steps):
                actor = next((a["actor"] for a in reversed(self.store.audit(request.id)) if a["to_state"] == CANCELLED), "amibot")
                self.worker.submit(self.runner.cancel_running, request.id, actor)
                resumed.append(request.id)
        return resumed

    def resume_waiting(self) -> list[int]:
        """Run again the requests whose waiting step is due. Images being waited on
        are polled first in one batch per account and region, so a hundred copies in
        flight cost one DescribeImages per account and region, not a hundred."""
        now = self.clock()
        due = [r for r in self.store.find(states=(RUNNING,), limit=10_000) if r.wake_at is not None and r.wake_at <= now]
        if not due:
            return []
        image_waits = []
        for request in due:
            # Every image the request waits on (a distribution waits on one per target).
            for step in request.steps:
                if step.state != "pending" or step.action != "ec2.wait_image_available":
                    continue
                image_id = step.params.get("image_id") or request.steps[int(step.params["image_from_step"]) - 1].result.get("image_id")
                if image_id:
                    image_waits.append((step.account_id, step.region, image_id))
        if image_waits:
            try:
                self.runner.image_status.refresh(self.runner.sessions, image_waits)
            except Exception:
                log.exception("batched image poll failed; steps will poll on their own")
        for request in due:
            self.worker.submit(self.runner.run, request.id)
        return [r.id for r in due]

    def check_drift(self) -> int:
        """When due (``bot.drift_check_hours``, daily by default): compare what
        amibot granted with AWS and report new findings once. Runs on the worker, so
        a slow read does not hold up the tick. Returns the number of checks started."""
        if self.drift is None or not self.drift.due():
            return 0
        self.store.set_drift_checked(self.clock())  # claimed now: the next tick does not start a second one
        self.worker.submit(self.drift.check)
        return 1

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


    # Bits of the ``reminded`` column: each reminder is sent once.
    REMINDED_APPROVERS = 1
    REMINDED_SHARE_ENDING = 2

    def remind_pending(self) -> list[int]:
        """Halfway through the approval window, remind the approvers once."""
        reminded = []
        now = self.clock()
        for request in self.store.find(states=(PENDING_APPROVAL,), limit=10_000):
            halfway = request.created_at + (request.expires_at - request.created_at) / 2
            if now >= halfway and not request.reminded & self.REMINDED_APPROVERS:
                self.store.set_fields(request.id, reminded=request.reminded | self.REMINDED_APPROVERS)
                waiting = [a for a in request.approver_accounts if a not in request.approvals]
                owners = " ".join(messages.mention(o) for a in waiting for o in self.notifier.owners_of(a))
                self.notifier.reply(
                    request.id,
                    f":bell: {owners} {request.display_id} is still waiting for approval for {', '.join(f'`{a}`' for a in waiting)}; "
                    f"it expires at {messages.when(request.expires_at)}.",
                    dedupe=f"remind:{request.id}",
                )
                reminded.append(request.id)
        return reminded

    def remind_share_ending(self) -> list[int]:
        """A day before a time-boxed share ends, say so in its thread."""
        reminded = []
        now = self.clock()
        for request in self.store.find(states=(ACTIVE,), limit=10_000):
            if request.active_until and now >= request.active_until - 86400 and now < request.active_until and not request.reminded & self.REMINDED_SHARE_ENDING:
                self.store.set_fields(request.id, reminded=request.reminded | self.REMINDED_SHARE_ENDING)
                self.notifier.reply(
                    request.id,
                    f":hourglass: {messages.mention(request.requester)} {request.display_id}'s share ends at {messages.when(request.active_until)}; "
                    "it will be removed automatically. Ask again with a new request if it is still needed.",
                    dedupe=f"ending:{request.id}",
                )
                reminded.append(request.id)
        return reminded

    def revoke_due(self) -> list[int]:
        """Remove time-boxed shares whose time is up (approved with the share: no second approval)."""
        revoked = []
        now = self.clock()
        for request in self.store.find(states=(ACTIVE,), limit=10_000):
            if not request.active_until or request.active_until > now:
                continue
            undone, remains = self.runner.undo_done_steps(request)
            if not self.store.transition(request.id, ACTIVE, REVOKED, "amibot", "time-boxed share ended"):
                continue
            text = f":lock: {messages.mention(request.requester)} {request.display_id}'s share ended and was removed: " + ("; ".join(undone) or "nothing was left to remove") + "."
            if remains:
                text += " Still in place (could not be removed): " + "; ".join(remains)
            self.notifier.reply(request.id, text, broadcast=True, dedupe=f"revoked:{request.id}")
            self.notifier.update_root(request.id)
            revoked.append(request.id)
        return revoked


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
