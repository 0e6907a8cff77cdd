"""The lifecycle of a request: every change of its state, and every ending.

Nothing else calls ``store.transition``. Whatever ends a request (its plan
finishing or failing, a distribution's last target, expiry, the end of a time-boxed
share, an unshare that removed it, a cancel, a denial, a root message Slack refused)
ends it the same way, in :meth:`Lifecycle.end`: the compare-and-set transition, then
the announcement (:meth:`Lifecycle.announce`) — the progress reply brought to its
final state, the broadcast reply in the thread, every card edited, the requester's
DM (each exactly once), and the copy in ``notify_channel`` where configured.

The words of each ending are here too, beside the transition they announce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from bot import messages, plan_groups, results, slacktext
from bot.notifier import PROGRESS, Notifier
from bot.requests import (
    ACTIVE,
    APPROVED,
    CANCELLED,
    DENIED,
    EXPIRED,
    FAILED,
    PARTIAL,
    PENDING_APPROVAL,
    REVOKED,
    RUNNING,
    SUCCEEDED,
    Request,
)
from bot.store import Store
from bot.verbs import registry

# Endings also posted to ``notify_channel`` (design.md: "a copy's completion"): a
# copy's success, and the outcome of a distribution's run (its targets are copies).
_NOTIFIED = {"copy": (SUCCEEDED,), "distribute": (SUCCEEDED, PARTIAL, FAILED)}


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


class Lifecycle:
    """Moves requests between states and ends them, saying so in Slack."""

    def __init__(self, store: Store, notifier: Notifier, *, notify_channel: str | None = None, clock: Callable[[], float] | None = None):
        self.store = store
        self.notifier = notifier
        self.notify_channel = notify_channel
        self.clock = clock or store.clock

    # -- the one way a request ends ---------------------------------------------------

    def end(self, request_id: int, from_state: str, to_state: str, actor: str, detail: str, text: str | Callable[[Request], str], *,
            dedupe_kind: str = "final", **fields: Any) -> bool:
        """Move the request to its final state (or ``active``, the end of its run) and
        announce it. ``text`` may be built from the request as stored after the
        transition. True only for the caller that made the change."""
        if from_state == RUNNING:
            fields.setdefault("progress", None)  # nothing is in progress any more: no stale "35 %"
        if not self.store.transition(request_id, from_state, to_state, actor, detail, **fields):
            return False
        request = self.store.get(request_id)
        self.announce(request, text if isinstance(text, str) else text(request), dedupe_kind=dedupe_kind)
        return True

    def announce(self, request: Request, text: str, *, dedupe_kind: str = "final") -> None:
        """Say that ``request`` ended: its progress reply (if it ran), the thread, the
        cards, the requester's DM and ``notify_channel``."""
        if any(row["kind"] == PROGRESS for row in self.store.outbox(request.id)):
            self.notifier.progress(request.id)  # rendered at send time from the final state: never "running" after the end
        # The thread's reply keeps the contract's mention of the requester; their DM is
        # a short summary linking to it (results.ended_dm), never the whole text again.
        self.notifier.final(request.id, text, dedupe_kind=dedupe_kind, dm_text=results.ended_dm(request, text),
                            buttons=results.statement_button(request) if request.state in (SUCCEEDED, ACTIVE) else None)
        if self.notify_channel and request.state in _NOTIFIED.get(request.kind, ()):
            self.notifier.post(self.notify_channel, text, request.id, dedupe=f"notify:{request.id}")

    # -- transitions that do not end it -------------------------------------------------

    def approve(self, request: Request, actor: str, accounts: list[str]) -> bool:
        """The last approval: ``approved`` (only before the approval expiry), said in the thread."""
        if not self.store.transition(request.id, PENDING_APPROVAL, APPROVED, actor, "all accounts approved", unexpired=True):
            return False
        self.notifier.reply(request.id, f":white_check_mark: {request.display_id} approved by {messages.mention(actor)} for "
                            f"{', '.join(f'`{a}`' for a in accounts)}. Starting.", dedupe=f"approved:{request.id}")
        self._tell_approved(request, messages.mention(actor))
        self.notifier.update_root(request.id)
        return True

    def _tell_approved(self, request: Request, by: str) -> None:
        """The requester hears it without following the thread: a DM, once."""
        request = self.store.get(request.id)  # its permalink, if known by now
        self.notifier.dm(request.requester, results.approved_dm(request, by), request.id, dedupe=f"approved-dm:{request.id}")

    def progressed(self, request_id: int) -> None:
        """A running request's progress was shown (``bot.engine``): a long copy's
        requester gets a DM at most every ``results.PROGRESS_DM_SECONDS``, with the
        elapsed time and an estimate from the copy's own percentage."""
        request = self.store.get(request_id)
        started = next((e["at"] for e in reversed(self.store.events(request_id)) if e["to_state"] == RUNNING), None)
        if request.state != RUNNING or started is None:
            return
        elapsed = self.clock() - float(started)
        slot = int(elapsed // results.PROGRESS_DM_SECONDS)
        if slot < 1:
            return  # not a long one (yet): the ending says it all
        self.notifier.dm(request.requester, results.progress_dm(request, elapsed, results.copy_percent(request)), request.id,
                         dedupe=f"progress-dm:{request.id}:{slot}")

    def approved_by_rule(self, request: Request, rule: str) -> bool:
        """An ``approve = "auto"`` policy rule approved it (after every preflight check
        passed): ``approved``, recorded as approved by the rule's name, said in the thread."""
        if not self.store.transition(request.id, PENDING_APPROVAL, APPROVED, f"policy:{rule}", f"approved by policy {rule}", unexpired=True):
            return False
        self.notifier.reply(request.id, f":white_check_mark: {request.display_id} approved by policy `{slacktext.escape(rule)}` "
                            "(every preflight check passed). Starting.", dedupe=f"approved:{request.id}")
        self._tell_approved(request, f"policy `{slacktext.escape(rule)}`")
        self.notifier.update_root(request.id)
        return True

    def start(self, request_id: int) -> bool:
        """``approved`` → ``running``: the card says so and the one progress reply appears."""
        if not self.store.transition(request_id, APPROVED, RUNNING, "amibot", "execution started"):
            return False
        self.notifier.update_root(request_id)
        self.notifier.progress(request_id)  # the one progress reply, edited as steps finish
        return True

    def stop_running(self, request_id: int, actor: str) -> bool:
        """A running request cancelled: ``cancelled`` now (its runner stops before the
        next step); the ending is announced by :meth:`cancelled_while_running` once
        what it did is undone."""
        return self.store.transition(request_id, RUNNING, CANCELLED, actor, "cancelled while running", progress=None)

    # -- endings, with their words ----------------------------------------------------------

    def succeeded(self, request_id: int, settled: list[str], duration_seconds: float | None) -> bool:
        """Every step done; a time-boxed share becomes ``active`` until its end."""
        moved = self._move_end(self.store.get(request_id))  # an extension: the share's new end

        def text(request: Request) -> str:
            # Results first: what was made (linked to the console) and what to do next,
            # then the rest (the IAM statement is behind a button: results.statement_button).
            said = f":tada: {messages.mention(request.requester)} {request.display_id} is done: {registry.alert(request)}." + moved
            if request.active_until:
                said += f" The share ends automatically at {messages.slack_date(request.active_until)}."
                if request.params.get("shortened_by"):  # Approve for less time
                    said += (f" {messages.mention(request.params['shortened_by'])} approved it for {request.params['duration_seconds'] / 3600:g} h "
                             f"(asked: {request.params['asked_seconds'] / 3600:g} h).")
            return said + "".join(f"\n{line}" for line in [*results.made_lines(request), *settled])

        if duration_seconds:
            # A time-boxed share runs from completion; its removal was approved with it.
            return self.end(request_id, RUNNING, ACTIVE, "amibot", "all steps done; time-boxed", text, active_until=self.clock() + duration_seconds)
        return self.end(request_id, RUNNING, SUCCEEDED, "amibot", "all steps done", text)

    def _move_end(self, extension: Request) -> str:
        """An approved extension (bot.approvals.Approvals.extension) moves the end of the
        share it extends, if that share is still active; says so in the share's thread."""
        if not extension.params.get("extends"):
            return ""
        share = self.store.get(int(extension.params["extends"]))
        if share.state != ACTIVE or not share.active_until:
            return f" {share.display_id} had already ended; nothing was moved."
        until = share.active_until + float(extension.params["extend_seconds"])
        if extension.params.get("moved_to") is None:  # once, even if this runs again on resume
            self.store.set_fields(share.id, active_until=until, reminded=0)
            extension.params["moved_to"] = until
            self.store.set_params(extension.id, extension.params)
            self.store.note(share.id, extension.requester, f"end moved to {messages.when(until)} by {extension.display_id}")
            self.notifier.reply(share.id, f":hourglass: {share.display_id}'s share now ends at {messages.slack_date(until)} (extended by {extension.display_id}).",
                                dedupe=f"extended:{extension.id}")
            self.notifier.update_root(share.id)
        return f" {share.display_id} now ends at {messages.slack_date(float(extension.params['moved_to']))}."

    def failed(self, request_id: int, seq: int, description: str, error_words: str, report: UndoReport) -> bool:
        """A step failed and what the request added was undone."""
        return self.end(request_id, RUNNING, FAILED, "amibot", f"step {seq} failed",
                        lambda request: failure_text(request, description, error_words, report.undone, report.remains), error=error_words)

    def targets_finished(self, request_id: int, settled: list[str] = ()) -> bool:
        """Every target of a grouped plan finished: ``succeeded``, ``partial`` or
        ``failed``; ``settled``: the lines the verb's after-success hooks added."""
        state, detail = plan_groups.ending(self.store.get(request_id))
        text = lambda request: plan_groups.final_text(request) + "".join(f"\n{note}" for note in settled)  # noqa: E731
        return self.end(request_id, RUNNING, state, "amibot", detail, text, **({"error": detail} if state != SUCCEEDED else {}))

    def cancelled_while_running(self, request: Request, actor: str, report: UndoReport) -> None:
        """The cleanup of a request cancelled while running is finished: say what it undid."""
        text = f":heavy_multiplication_x: {messages.mention(request.requester)} {request.display_id} was cancelled by {messages.mention(actor)} while running."
        text += "\nUndone: " + ("; ".join(report.undone) if report.undone else "nothing needed undoing")
        if report.remains:
            text += "\nRemains: " + "; ".join(report.remains)
        self.announce(self.store.get(request.id), text)

    def cancelled(self, request: Request, actor: str) -> bool:
        """Cancelled before it ran: nothing was changed."""
        text = f":heavy_multiplication_x: {messages.mention(request.requester)} {request.display_id} was cancelled by {messages.mention(actor)}. Nothing was changed."
        return any(request.state == from_state and self.end(request.id, from_state, CANCELLED, actor, "cancelled", text)
                   for from_state in (PENDING_APPROVAL, APPROVED))

    def denied(self, request: Request, actor: str, accounts: list[str], reason: str) -> bool:
        """An owner denied it (with an optional reason the requester reads)."""
        text = f":no_entry: {messages.mention(request.requester)} {request.display_id} was denied by {messages.mention(actor)}. Nothing was changed."
        if reason:
            text += f"\nReason: {messages.escape(reason)}"
        detail = f"denied for {', '.join(accounts)}" + (f": {reason}" if reason else "")
        return self.end(request.id, PENDING_APPROVAL, DENIED, actor, detail, text)

    def expired(self, request: Request) -> bool:
        """Nobody decided within the approval window."""
        text = (f":zzz: {messages.mention(request.requester)} {request.display_id} expired: nobody decided in time. "
                "Nothing was changed; ask again if it is still needed.")
        return self.end(request.id, PENDING_APPROVAL, EXPIRED, "amibot", "approval window passed", text)

    def not_asked(self, request: Request, code: str, error: str, why: str, what: str) -> bool:
        """Slack refused the approval message for good: nobody could be asked."""
        text = f":x: {messages.mention(request.requester)} {request.display_id} was not asked: {why} {what} Nothing was changed in AWS."
        return self.end(request.id, PENDING_APPROVAL, FAILED, "amibot", f"root message refused: {code}", text, error=error)

    def share_ended(self, request: Request, report: UndoReport) -> bool:
        """A time-boxed share's time is up and its access was removed."""
        text = (f":lock: {messages.mention(request.requester)} {request.display_id}'s share ended and was removed: "
                + ("; ".join(report.undone) or "nothing was left to remove") + ".")
        if report.kept:
            text += " Kept on purpose: " + "; ".join(report.kept)
        return self.end(request.id, ACTIVE, REVOKED, "amibot", "time-boxed share ended", text, dedupe_kind="revoked")

    def share_removed_by(self, other: Request, unshare: Request, *, how: str = "unshare") -> bool:
        """An unshare (or a retire that disabled the image: ``how``) removed everything
        an active time-boxed share had added."""
        text = (f":lock: {messages.mention(other.requester)} {other.display_id}'s share was removed by {unshare.display_id} "
                f"({slacktext.code(unshare.command_text)}); nothing is left for its expiry to remove.")
        return self.end(other.id, ACTIVE, REVOKED, "amibot", f"removed by {unshare.display_id} ({how})", text, dedupe_kind="revoked")


def failure_text(request: Request, step_description: str, why: str, undone: list[str], remains: list[str]) -> str:
    """The final reply of a failed request: which step, why (already in words, see
    ``messages.error_text``), what was undone, what remains."""
    lines = [f":x: {messages.mention(request.requester)} {request.display_id} failed at: {step_description}", why]
    lines.append("Undone: " + ("; ".join(undone) if undone else "nothing needed undoing"))
    if remains:
        lines.append("Remains: " + "; ".join(remains))
    return "\n".join(lines)
