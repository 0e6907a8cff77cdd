"""The scheduler: APScheduler is the clock, the store is the truth.

One periodic *tick* job asks the store what is due (expired approvals, requests to
resume, messages to send) instead of keeping one job per request, so nothing lives
only in the scheduler and a restart rebuilds everything by simply ticking again.

Every process ticks; the database decides who acts. Each scheduled duty runs under a
lease (``duty:<name>``), each account-region's batched image poll under another
(``poll:<account>:<region>``), and each request's steps under ``request:<id>``, so
with several replicas each piece of work is done by one of them, and the work of a
replica that died is taken up once its leases expire.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from aws.actions import get_action, image_of
from aws.actions.images import WaitImageAvailable
from aws.actions.retry import RetryPolicy, slowest
from bot.engine import PlanRunner, request_lease
from bot.leases import Leases
from bot.lifecycle import Lifecycle
from bot.notifier import Notifier
from bot.requests import ACTIVE, APPROVED, CANCELLED, PENDING_APPROVAL, RUNNING, STEP_DONE, STEP_PENDING, Request
from bot.store import Store
from bot.store.in_flight import InFlight, PendingWait
from bot.worker import Worker
from bot import messages, plan_groups, slacktext

log = logging.getLogger("amibot.scheduler")


class Clockwork:
    """What the tick does; callable directly by tests with a controllable clock."""

    # The scheduled duties, each run by one process at a time under the lease
    # ``duty:<name>``. A new duty is one more method name here.
    DUTIES = ("expire_pending", "remind_pending", "escalate_pending", "remind_share_ending", "revoke_due", "check_drift")

    def __init__(self, store: Store, notifier: Notifier, worker: Worker, runner: PlanRunner, clock: Callable[[], float] = time.time,
                 leases: Leases | None = None, *, service: Any = None, reminder_hours: tuple[int, ...] = (12, 1),
                 lifecycle: Lifecycle | None = None):
        self.store = store
        self.notifier = notifier
        self.worker = worker
        self.runner = runner
        self.lifecycle = lifecycle or runner.lifecycle
        self.clock = clock
        self.leases = leases or runner.leases
        self.service = service  # bot.approvals.Approvals: the DM reminders to owners who could still decide
        self.reminder_hours = reminder_hours
        self.drift: Any = None  # bot.audit.DriftChecker, set by the wiring
        # Copies found unchanged by the batched poll: request id -> when to look again.
        # Only this process's pacing (a restart looks at once); nothing is stored.
        self._quiet_until: dict[int, float] = {}

    def tick(self) -> None:
        """Everything that is due now."""
        for duty in self.DUTIES:
            with self.leases.hold(f"duty:{duty}") as mine:
                if mine:
                    getattr(self, duty)()
        self.resume_waiting()
        self.finish_cancellations(within_seconds=86400)  # a replica died cleaning up; start-up looks further back
        self.notifier.flush()

    def resume_unfinished(self) -> list[int]:
        """At start-up: continue every approved or running request from its first
        step not done (the process that ran it may have died), unless another live
        process holds it."""
        taken = self.leases.held_by_others("request:")
        resumed = []
        for request in self.store.find(states=(APPROVED, RUNNING), limit=10_000):
            if request_lease(request.id) not in taken:
                self.worker.submit(self.runner.run, request.id)
                resumed.append(request.id)
        return resumed + self.finish_cancellations()

    def finish_cancellations(self, within_seconds: float | None = None) -> list[int]:
        """Cancelled while running, but the process died before the cleanup said so:
        the final message is the marker that the cleanup finished. ``within_seconds``:
        only requests changed that recently (the tick need not re-read old ones)."""
        taken = self.leases.held_by_others("request:")
        resumed = []
        since = None if within_seconds is None else self.clock() - within_seconds
        for request in self.store.find(states=(CANCELLED,), limit=10_000, updated_since=since):
            if request_lease(request.id) in taken or not any(s.state == "done" for s in request.steps):
                continue
            if not self.runner.cancellation_said(request.id):
                actor = next((a["actor"] for a in reversed(self.store.events(request.id)) if a["to_state"] == CANCELLED), "amibot")
                self.worker.submit(self.runner.cancel_running, request.id, actor)
                resumed.append(request.id)
        return resumed

    def resume_waiting(self) -> list[int]:
        """Run again the requests whose waiting step is due, and take up those whose
        process died (no live lease). Images being waited on are polled first in one
        batch per account and region, by the one process holding that account-region's
        poll lease, so a hundred copies in flight cost one DescribeImages per account
        and region per tick, not a hundred, however many replicas run.

        A copy the batched answer shows unchanged (still pending at the percentage its
        step recorded) is not run again: nothing is resumed, recorded or sent for it,
        and it is looked at again after its poll interval. Only the copies that moved
        (a new percentage, finished, failed, gone, unreadable) are resumed; so is a
        request whose last progress could not be shown within the edit interval."""
        now = self.clock()
        taken = self.leases.held_by_others("request:")
        due: list[InFlight] = []
        # The narrow read (bot/store/in_flight.py): timing columns and pending waits
        # only; a request that needs work is loaded whole by the engine that runs it.
        for request in self.store.in_flight((APPROVED, RUNNING), WaitImageAvailable.name):
            if request_lease(request.id) in taken:
                continue  # another process is running it
            if request.wake_at is not None and request.wake_at > now:
                continue  # waiting, not yet due
            if self._quiet_until.get(request.id, 0.0) > now:
                continue  # unchanged at its last look: not yet due for the next one
            if request.state == APPROVED and (request.updated_at or 0) > now - self.leases.seconds:
                continue  # just approved: the approving process starts it (this is for orphans)
            due.append(request)
        self._quiet_until = {k: v for k, v in self._quiet_until.items() if v > now}
        if not due:
            return []
        image_waits: dict[tuple[str, str], list[tuple[InFlight, PendingWait, str]]] = {}
        others = []
        for request in due:
            waits = self._copies_in_flight(request)
            if waits is None:
                # Something other than a copy in flight is next (a target not started
                # when the process running it stopped, a failure to finish): run it.
                others.append(request)
                continue
            for wait, image_id in waits:
                image_waits.setdefault((wait.account_id, wait.region), []).append((request, wait, image_id))
        resumed = {r.id: r for r in others}
        quiet: dict[int, InFlight] = {}
        for (account, region), waits in image_waits.items():
            if not self.leases.claim(f"poll:{account}:{region}"):
                continue  # another process polls this account-region and resumes its requests
            cache = self.runner.image_status
            # Each copy's progress as its wait recorded it: between the once-a-minute full
            # looks, DescribeImages asks only for the images that are no longer pending.
            recorded = {(account, region, image_id): step.result.get("progress") for _, step, image_id in waits
                        if "progress" in step.result and not step.result.get("misses")}
            try:
                cache.refresh(self.runner.sessions, [(account, region, image_id) for _, _, image_id in waits], recorded=recorded, now=now)
                polled = True
            except Exception:
                log.exception("batched image poll failed; steps will poll on their own")
                polled = False
            for request, step, image_id in waits:
                status = cache.get(account, region, image_id) if polled else None
                if status is not None and WaitImageAvailable.unchanged(step.result, status) and not self._progress_owed(request, now):
                    quiet.setdefault(request.id, request)
                else:
                    resumed[request.id] = request
        for request_id, request in quiet.items():
            if request_id not in resumed:
                self._quiet_until[request_id] = now + self._poll_delay(request)
        for request in resumed.values():
            self._quiet_until.pop(request.id, None)
            self.worker.submit(self.runner.run, request.id)
        return list(resumed)

    def _progress_owed(self, request: InFlight, now: float) -> bool:
        """A progress change was recorded after the last one shown (it came within the
        edit interval) and the interval is over: the request is resumed once so the
        card and the progress reply catch up."""
        shown = request.progress_shown_at
        if shown is None or now - shown < self.runner.progress_edit_seconds:
            return False
        # The engine writes progress_shown_at and updated_at together (the store's clock
        # a moment later): a later change moved updated_at past it by a tick or more.
        return (request.updated_at or 0.0) - shown > 1.0

    def _copies_in_flight(self, request: InFlight) -> list[tuple[PendingWait, str]] | None:
        """The images ``request`` waits on (a distribution waits on one per target), or
        None when something other than copies in flight comes next (it is run). A plan
        without groups: its first step not done must be a pending wait that recorded
        its image. A distribution's groups are decided on the whole request
        (``plan_groups.next_steps``), loaded for it alone."""
        if not request.waits:
            return None
        if any(plan_groups.group_name(w.params) for w in request.waits):
            whole = self.store.get(request.id)
            nexts = plan_groups.next_steps(whole)
            if nexts is None or any(s.action != WaitImageAvailable.name for s in nexts):
                return None
            results = {s.seq: s.result for s in whole.steps}
            waits = [(PendingWait(s.seq, s.account_id, s.region, s.params, s.result), image_of(s.params, results)) for s in whole.steps
                     if s.state == STEP_PENDING and s.action == WaitImageAvailable.name]
            return [(w, image_id) for w, image_id in waits if image_id] or None
        if request.first_open not in {w.seq for w in request.waits}:
            return None
        waits = [(w, w.result.get("image_id") or w.params.get("image_id")) for w in request.waits]
        if not any(image_id and w.seq == request.first_open for w, image_id in waits):
            return None  # the next wait has not said which image yet: running it does
        return [(w, image_id) for w, image_id in waits if image_id]

    @staticmethod
    def _poll_delay(request: InFlight) -> float:
        """When an unchanged copy is looked at again: as its step asked (its poll
        interval, spread by the action's policy), the soonest of its waits."""
        return min((WaitImageAvailable.retry.spread(float(w.params.get("poll_seconds", 30))) for w in request.waits), default=30.0)

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
            if request.expires_at <= now and self.lifecycle.expired(request):
                expired.append(request.id)
        return expired


    # Bits of the ``reminded`` column: each reminder is sent once.
    REMINDED_APPROVERS = 1
    REMINDED_SHARE_ENDING = 2

    def remind_pending(self) -> list[int]:
        """DM the owners who could still decide, with the buttons, at each of
        ``bot.reminder_hours_before_expiry`` before expiry (once per owner and entry)."""
        reminded = []
        now = self.clock()
        if self.service is None:
            return reminded
        for request in self.store.find(states=(PENDING_APPROVAL,), limit=10_000):
            due = [h for h in self.reminder_hours if request.expires_at - h * 3600 <= now < request.expires_at]
            # Only the latest entry that is due: a late tick sends one reminder, not several.
            if due and self.service.remind(request, min(due)):
                reminded.append(request.id)
        return reminded

    def escalate_pending(self) -> list[int]:
        """``accounts.<a>.escalate_to``: a request no owner of ``a`` decided within
        ``escalate_after_hours`` goes to the escalation group too, once."""
        escalated: list[int] = []
        if self.service is None:
            return escalated
        now = self.clock()
        for request in self.store.find(states=(PENDING_APPROVAL,), limit=10_000):
            if now < request.expires_at and self.service.escalate(request, now):
                escalated.append(request.id)
        return escalated

    def remind_share_ending(self) -> list[int]:
        """A day before a time-boxed share ends, say so in its thread."""
        reminded = []
        now = self.clock()
        for request in self.store.find(states=(ACTIVE,), limit=10_000):
            if request.active_until and now >= request.active_until - 86400 and now < request.active_until and not request.reminded & self.REMINDED_SHARE_ENDING:
                self.store.set_fields(request.id, reminded=request.reminded | self.REMINDED_SHARE_ENDING)
                self.notifier.reply(
                    request.id,
                    f":hourglass: {messages.mention(request.requester)} {request.display_id}'s share ends at {messages.slack_date(request.active_until)}; "
                    "it will be removed automatically. Ask again with a new request if it is still needed.",
                    dedupe=f"ending:{request.id}",
                )
                reminded.append(request.id)
        return reminded

    # A time-boxed share whose removal fails is retried with the backoff its actions
    # declare (``Action.retry``; never marked revoked while access remains); the
    # owners hear after this many attempts.
    REVOKE_TELL_OWNERS_AFTER = 3

    def revoke_due(self) -> list[int]:
        """Remove time-boxed shares whose time is up (approved with the share: no
        second approval). Fails closed: if anything could not be removed, the share
        stays ``active`` and due, and is tried again with backoff."""
        revoked = []
        now = self.clock()
        for request in self.store.find(states=(ACTIVE,), limit=10_000):
            if not request.active_until or request.active_until > now:
                continue
            if request.wake_at is not None and request.wake_at > now:
                continue  # a failed removal waits for its next attempt
            report = self.runner.undo_done_steps(request)
            if report.failed:
                self._removal_failed(request, report.failed, now)
                continue
            if not self.lifecycle.share_ended(request, report):
                continue
            revoked.append(request.id)
        return revoked

    def _removal_failed(self, request, failed: list[str], now: float) -> None:
        """Keep the share due; say so once in the thread, and tell the owners once
        when it keeps failing."""
        attempts = request.revoke_attempts + 1
        delay = removal_policy(request).backoff(attempts)
        self.store.set_fields(request.id, revoke_attempts=attempts, wake_at=now + delay)
        self.store.note(request.id, "amibot", f"removal at expiry failed (attempt {attempts}): " + "; ".join(failed))
        what = slacktext.escape("; ".join(failed))  # AWS's words: escaped before Slack
        if attempts == 1:
            self.notifier.reply(
                request.id,
                f":warning: {request.display_id}'s share is due to end, but not everything could be removed yet: {what}. "
                f"The share stays in force and amibot keeps trying (next attempt at {messages.slack_date(now + delay)}).",
                dedupe=f"revoke-retry:{request.id}",
            )
        if attempts == self.REVOKE_TELL_OWNERS_AFTER:
            owners = " ".join(messages.mention(o) for a in request.approver_accounts for o in self.notifier.owners_of(a))
            self.notifier.reply(
                request.id,
                f":rotating_light: {owners} {request.display_id}'s share should have ended at {messages.slack_date(request.active_until)} "
                f"but removing it has failed {attempts} times: {what}. Access is still in place. amibot keeps trying; "
                "to remove it now by hand, fix the cause (often the member role's permissions) or run the unshare yourself.",
                broadcast=True,
                dedupe=f"revoke-stuck:{request.id}",
            )


def removal_policy(request: Request) -> RetryPolicy:
    """How a failed removal of ``request``'s changes is tried again: the slowest
    policy among the actions still to undo."""
    return slowest(get_action(s.action).retry for s in request.steps if s.state == STEP_DONE and get_action(s.action).undoable)


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
