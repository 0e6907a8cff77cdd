"""Reaching the approvers: copies of the approval card where owners look (approval
channels, their DMs), reminders before expiry, and what happens when Slack refuses
the card itself (join the channel, re-route it, or end the request).

And what the approval policy (:mod:`bot.policy`) adds to a decision: a rule that
approves by itself, break-glass, and the approvers' choices — approve for less time,
reassign to another owner, escalation when nobody decides in time.
"""

from __future__ import annotations

import logging
import secrets
from typing import Callable

from slack_sdk.errors import SlackApiError

from bot import cards, messages, policy, slacktext
from bot.config import Config
from bot.errors import AlreadyDecidedError, AmibotError, NobodyCanApproveError, NotAllowedError
from bot.lifecycle import Lifecycle
from bot.notifier import Notifier
from bot.requests import PENDING_APPROVAL, Request
from bot.store import Store

log = logging.getLogger("amibot.approvals")


class Approvals:
    """Puts a pending request in front of the people who may decide it."""

    def __init__(self, config: Config, store: Store, notifier: Notifier, lifecycle: Lifecycle, owner_users: Callable[[str], set[str]],
                 group_members: Callable[[str], list[str]] = lambda group: []):
        self.group_members = group_members  # a Slack user group's members (escalate_to)
        self.config = config
        self.store = store
        self.notifier = notifier
        self.lifecycle = lifecycle
        self.owner_users = owner_users  # account alias -> its owners, user groups expanded
        self._bot_name: str | None = None

    def eligible_owners(self, request: Request, accounts: list[str] | None = None) -> list[str]:
        """The people who may still approve ``accounts`` (default: those still waiting):
        groups expanded, the requester left out."""
        people: list[str] = []
        for alias in accounts if accounts is not None else [a for a in request.approver_accounts if a not in request.approvals]:
            for user in sorted(self.owner_users(alias)):
                if user != request.requester and user not in people:
                    people.append(user)
        return people

    def check_someone_can_approve(self, accounts: list[str], requester: str, rule: dict | None = None) -> None:
        """Refuse, before anyone is asked, a request nobody could approve (under ``rule``,
        the approval policy that applied: two owners besides the requester, or break-glass)."""
        rule = rule or {}
        for alias in accounts:
            account = self.config.account(alias)
            if rule.get("approve") == policy.TWO_OWNERS:
                if len(self.owner_users(alias) - {requester}) < 2:
                    raise NobodyCanApproveError(
                        f"Policy `{slacktext.escape(str(rule['rule']))}` needs two distinct owners of `{alias}` besides you, and it has fewer. Nobody was asked.",
                        fix=f"Add owners to `accounts.{alias}.owners`, or change the rule.")
                continue
            self_ok = account.allow_self_approval or rule.get("break_glass")
            possible = self.owner_users(alias) - ({requester} if not self_ok else set())
            if not possible:
                if requester in self.owner_users(alias):
                    raise NobodyCanApproveError(
                        f"Nobody but you could approve changes to `{alias}`, and you cannot approve your own request.",
                        fix=f"Add another owner to `accounts.{alias}.owners`, or set `allow_self_approval = true` for it.",
                    )
                raise NobodyCanApproveError(
                    f"Account `{alias}` has no owners, so nobody could approve this request.",
                    fix=f"Add Slack user or group ids to `accounts.{alias}.owners` in the config.",
                )

    # -- the approval policy ------------------------------------------------------------

    def auto_approve(self, request: Request) -> bool:
        """Under an ``approve = "auto"`` rule the rule approves (recorded as approved by
        the rule's name); the preflight has already passed. True if it did."""
        rule = request.facts.get("policy") or {}
        return rule.get("approve") == policy.AUTO and self.lifecycle.approved_by_rule(request, str(rule["rule"]))

    def not_yet_voted(self, request: Request, user: str, eligible: list[str]) -> list[str]:
        """The accounts ``user`` has not approved yet; a second click by the same person
        is refused (under a two-owner rule they count once)."""
        fresh = [a for a in eligible if user not in request.votes.get(a, [])]
        if not fresh:
            raise AlreadyDecidedError(f"You already approved {request.display_id} for {', '.join(f'`{a}`' for a in eligible)}; policy "
                                      f"`{slacktext.escape(str((request.facts.get('policy') or {}).get('rule')))}` needs a second, different owner. Nothing was changed.")
        return fresh

    def break_glass_used(self, request: Request, user: str, accounts: list[str]) -> None:
        """An owner approved their own request under a break-glass rule: the history and
        the card mark it, and every other owner of those accounts is told at once."""
        rule = (request.facts.get("policy") or {}).get("rule")
        if not policy.break_glass(request.facts):
            return
        self._set_param(request, "break_glass_by", user)
        self.store.note(request.id, user, f"break-glass: approved their own request for {', '.join(accounts)} under policy {rule}")
        text = (f":rotating_light: Break-glass: {messages.mention(user)} approved their own request {request.display_id} "
                f"({slacktext.code(request.command_text)}) for {', '.join(f'`{a}`' for a in accounts)} under policy `{slacktext.escape(str(rule))}`.")
        for other in sorted({u for a in accounts for u in self.owner_users(a)} - {user}):
            self.notifier.dm(other, text, request.id, dedupe=f"breakglass:{request.id}:{other}")
        self.notifier.reply(request.id, text, dedupe=f"breakglass:{request.id}")

    def record(self, request: Request, eligible: list[str], user: str) -> tuple[list[str], list[str]]:
        """This approval: under a two-owner rule a vote (the accounts it counted for, and
        those it completed), else the approval itself."""
        needed = policy.needed(request.facts)
        if needed > 1:
            return self.store.record_votes(request.id, eligible, user, needed)
        recorded = self.store.record_approvals(request.id, eligible, user)
        return recorded, recorded

    def first_of_two(self, request: Request, user: str, counted: list[str]) -> None:
        """Said in the thread when a vote counted but another owner is still needed."""
        rule = slacktext.escape(str((request.facts.get("policy") or {}).get("rule")))
        self.notifier.reply(request.id, f"{request.display_id}: {messages.mention(user)} approved for {', '.join(f'`{a}`' for a in counted)} "
                            f"(1 of {policy.needed(request.facts)}); policy `{rule}` needs a second, different owner.")
        self.notifier.update_root(request.id)

    def shorten(self, request: Request, user: str, hours: int, *, apply: bool = True) -> None:
        """Approve for less time: the time-boxed share ends ``hours`` after it completes
        (never longer than asked, nor than the rule's maximum); the card and the ending
        say who shortened it. Raises when the request is not a time-boxed share."""
        asked = request.params.get("duration_seconds")
        if request.kind != "share" or not asked:
            raise NotAllowedError(f"{request.display_id} is not a time-boxed share, so it cannot be approved for less time. Nothing was changed.")
        limit = policy.max_hours(request.facts)
        seconds = min(hours * 3600, asked, limit * 3600 if limit else asked)
        if apply and seconds < asked:
            request.params.update(duration_seconds=seconds, shortened_by=user, asked_seconds=request.params.get("asked_seconds") or asked)
            self.store.set_params(request.id, request.params)
            self.store.note(request.id, user, f"shortened the share to {seconds / 3600:g} h (asked: {asked / 3600:g} h)")

    def reassign(self, request: Request, user: str, alias: str, to: str) -> str:
        """An owner passes the decision for ``alias`` to another named owner of it: that
        owner gets the card as an alert; every eligible owner can still decide."""
        if alias not in request.approver_accounts or alias in request.approvals or user not in self.owner_users(alias):
            raise NotAllowedError(f"Only an owner of `{alias}` can reassign {request.display_id} while `{alias}` waits. Nothing was changed.")
        if to == user or to == request.requester or to not in self.owner_users(alias):
            raise AmibotError(f"{messages.mention(to)} cannot decide {request.display_id} for `{alias}`. Nothing was changed.",
                              fix=f"Pick another owner of `{alias}` (not you, not the requester).")
        request.params.setdefault("reassigned", []).append({"account": alias, "by": user, "to": to})
        self.store.set_params(request.id, request.params)
        self.store.note(request.id, user, f"reassigned {alias} to {to}")
        note = f":arrows_counterclockwise: {messages.mention(user)} reassigned {request.display_id} for `{alias}` to you."
        # One alert: the card copy (with the buttons, the note on top, kept up to date
        # like every copy), its lock-screen text saying why it comes.
        self.notifier.post_card_elsewhere(request.id, to, dm=True, note=note, dedupe=f"reassign:{request.id}:{alias}:{to}", role_target=f"{to}:reassign",
                                          lead=f"Reassigned to you for {alias}: ")
        self.notifier.update_root(request.id)
        return f"{request.display_id}: reassigned `{alias}` to {messages.mention(to)}."

    def escalated_to(self, request: Request, alias: str) -> set[str]:
        """The escalation group's members, once ``alias``'s approval was escalated."""
        escalation = self.config.escalations.get(alias)
        if escalation is None or alias not in (request.params.get("escalated") or {}):
            return set()
        return self._people(escalation.to)

    def escalate(self, request: Request, now: float) -> list[str]:
        """When no owner of an account decided within its ``escalate_after_hours``, the
        request goes to ``escalate_to`` too (an alert with the same buttons), once.
        Returns the accounts escalated now."""
        done = dict(request.params.get("escalated") or {})
        due = [a for a in request.approver_accounts if a not in request.approvals and a not in done and a in self.config.escalations
               and now >= request.created_at + self.config.escalations[a].after_hours * 3600]
        for alias in due:
            done[alias] = now
            request.params["escalated"] = done
            self.store.set_params(request.id, request.params)
            self.store.note(request.id, "amibot", f"escalated {alias} to {', '.join(self.config.escalations[alias].to)}")
            hours = self.config.escalations[alias].after_hours
            note = f":rotating_light: Escalated: no owner of `{alias}` decided {request.display_id} within {hours:g} h, so it comes to you too."
            for user in sorted(self._people(self.config.escalations[alias].to) - {request.requester}):
                self.notifier.post_card_elsewhere(request.id, user, dm=True, note=note, dedupe=f"escalate:{request.id}:{alias}:{user}",
                                                  role_target=f"{user}:escalate", lead=f"Escalated ({alias}, nobody decided in {hours:g} h): ")
        if due:
            self.notifier.update_root(request.id)
        return due

    def extension(self, original: Request, user: str) -> Request:
        """Extend: the requester of an active time-boxed share asks to move its end by
        the time first asked. A new request, approved like any other (the rule that
        applied to the share is evaluated again, on the tags it matched); it has no AWS
        step, and its success moves the share's end (:meth:`Lifecycle.succeeded`)."""
        if user != original.requester:
            raise NotAllowedError(f"Only {messages.mention(original.requester)}, who asked for {original.display_id}, can extend it. Nothing was changed.")
        seconds = original.params.get("asked_seconds") or original.params.get("duration_seconds")
        if original.state != "active" or not original.active_until or not seconds:
            raise NotAllowedError(f"{original.display_id} is not an active time-boxed share, so there is nothing to extend. Nothing was changed.")
        waiting = [r for r in self.store.find(states=(PENDING_APPROVAL,), limit=10_000) if r.params.get("extends") == original.id]
        if waiting:
            raise NotAllowedError(f"{waiting[0].display_id} already asks to extend {original.display_id}; it waits for the owners. Nothing was changed.")
        image_tags = (original.facts.get("image") or {}).get("tags")
        decision = policy.evaluate(self.config, original.kind, original.params, image_tags)
        policy.check_duration(decision, original.kind, {**original.params, "duration_seconds": seconds})
        rule = policy.decision_facts(decision)
        self.check_someone_can_approve(original.approver_accounts, user, rule)
        new_end = original.active_until + seconds
        return self.store.create_request(
            kind="extend", requester=user, channel=original.channel,
            command_text=f"extend {original.display_id} by {seconds / 3600:g}h", uid=secrets.token_hex(8),
            params={"extends": original.id, "extend_seconds": seconds, "image_id": original.params.get("image_id"),
                    "source": original.params.get("source"), "targets": original.params.get("targets") or [],
                    "organization": original.params.get("organization"), "ou_id": original.params.get("ou_id"), "response_url": None},
            facts={"checked": [f"{original.display_id} ({original.command_text}) is active until {messages.when(original.active_until)}.",
                               policy.plan_line(rule)],
                   "after": [f"On approval its end moves to {messages.when(new_end)}; nothing changes in AWS now."], "policy": rule,
                   "image": original.facts.get("image")},
            approver_accounts=list(original.approver_accounts), steps=[],
            ttl_seconds=self.config.bot.approval_ttl_hours * 3600, state="pending_approval")

    def _people(self, ids: tuple[str, ...]) -> set[str]:
        people: set[str] = set()
        for one in ids:
            people.update(self.group_members(one) if one.startswith("S") else [one])
        return people

    def note_asked_by_dm(self, request: Request) -> None:
        """Before the card is posted: the accounts whose owners are asked by DM
        (``approval_dm``), and who. Those owners are not also mentioned on the cards in
        channels (one alert per approver per request, ``bot.cards``); an account with
        ``approval_dm = false`` has its owners, groups included, mentioned there."""
        asked = {alias: self.eligible_owners(request, [alias]) for alias in request.approver_accounts if self._by_dm(alias)}
        self._set_param(request, "asked_by_dm", asked)

    def _by_dm(self, alias: str) -> bool:
        account = self.config.account(alias)
        return account.approval_dm if account.approval_dm is not None else self.config.bot.approval_dm

    def ask_owners_elsewhere(self, request: Request) -> None:
        """Copies of the approval card, with the same buttons: in each account's
        ``approval_channel`` and in a DM to each eligible owner (``approval_dm``)."""
        channels: list[str] = []
        dm_accounts: list[str] = []
        for alias in request.approver_accounts:
            account = self.config.account(alias)
            if account.approval_channel and account.approval_channel != request.channel and account.approval_channel not in channels:
                channels.append(account.approval_channel)
            if self._by_dm(alias):
                dm_accounts.append(alias)
        for channel in channels:
            self.notifier.post_card_elsewhere(request.id, channel, dm=False)
        for user in self.eligible_owners(request, dm_accounts):
            self.notifier.post_card_elsewhere(request.id, user, dm=True)

    def remind(self, request: Request, hours: int) -> int:
        """A DM reminder, with the buttons, to each owner who could still decide; once
        per owner and schedule entry. Returns how many were queued."""
        return self._remind_each(request, cards.reminder_note(request, hours), f"remind:{request.id}:{hours}", f"reminder:{hours}")

    def _remind_each(self, request: Request, note: str, key: str, role: str, lead: str = "Reminder: ") -> int:
        queued = 0
        for user in self.eligible_owners(request):
            if not self.store.has_outbox(f"{key}:{user}"):
                self.notifier.post_card_elsewhere(request.id, user, dm=True, note=note, dedupe=f"{key}:{user}", role_target=f"{user}:{role}", lead=lead)
                queued += 1
        return queued

    def check_requester(self, request: Request, user: str, what: str) -> None:
        """The card's Nudge and Cancel are the requester's alone."""
        if user != request.requester:
            raise NotAllowedError(f"Only {messages.mention(request.requester)}, who asked for {request.display_id}, can {what} it here. Nothing was changed.")

    def nudge(self, request: Request, user: str, now: float) -> str:
        """The requester's Nudge: the approvers still to decide get the reminder again
        (the card, with its buttons, in their DM), at most once every
        ``cards.NUDGE_MINUTES`` per request. Returns what the requester is told."""
        self.check_requester(request, user, "nudge the approvers of")
        if request.state != PENDING_APPROVAL:
            raise NotAllowedError(f"{request.display_id} is not waiting for approval any more; nobody was nudged.")
        period = cards.NUDGE_MINUTES * 60
        left = float(request.params.get("nudged_at") or 0) + period - now
        if left > 0:
            raise NotAllowedError(f"The approvers of {request.display_id} were nudged less than {cards.NUDGE_MINUTES} min ago; "
                                  f"you can nudge them again in {int(left // 60) + 1} min. Nothing was sent.")
        self._set_param(request, "nudged_at", now)
        # The slot in the key: two clicks at once send one reminder per owner.
        queued = self._remind_each(request, cards.nudge_note(request), f"nudge:{request.id}:{int(now // period)}", f"nudge:{int(now // period)}",
                                    lead="Reminder (the requester nudged): ")
        self.store.note(request.id, user, f"nudged the approvers ({queued} reminded)")
        people = ", ".join(messages.mention(u) for u in self.eligible_owners(request)) or "nobody (no owner can decide it)"
        return f"{request.display_id}: reminded {people}."

    def root_refused(self, request_id: int, code: str) -> None:
        """Slack refused the request's root message for good: join the channel if it is
        public and that is allowed, else re-route to an approval channel, else end the
        request; the requester is told exactly why and what to do."""
        request = self.store.get(request_id)
        if request.state != PENDING_APPROVAL:
            return
        kind = self._channel_kind(request.channel)
        if code == "not_in_channel" and kind == "public" and not request.params.get("join_tried"):
            self._set_param(request, "join_tried", True)
            if self._join(request.channel):
                self.notifier.post_root(request_id, dedupe=f"root:{request_id}:joined")
                return
        why, what = self._why_no_root(code, kind, request.channel)
        original = request.channel
        for alias in request.approver_accounts:
            target = self.config.account(alias).approval_channel
            if target and target != original and not request.params.get("rerouted_from"):
                self._set_param(request, "rerouted_from", original)
                self.store.set_fields(request_id, channel=target)
                self.notifier.post_root(request_id, dedupe=f"root:{request_id}:{target}")
                self._tell_requester(request, f"{why} So {request.display_id}'s approval is in {slacktext.channel(target)} instead; follow it there. {what}")
                return
        error = f"The approval message could not be posted in {slacktext.channel(original)} (`{code}`): {why}"
        self.lifecycle.not_asked(request, code, error, why, what)

    def _tell_requester(self, request: Request, text: str) -> None:
        url = request.params.get("response_url")
        if url:
            self.notifier.respond(url, text, request.id)

    def _set_param(self, request: Request, key: str, value: object) -> None:
        request.params[key] = value
        self.store.set_params(request.id, request.params)

    def _channel_kind(self, channel: str) -> str:
        """dm, private, public or unknown (conversations.info)."""
        if channel.startswith("D"):
            return "dm"
        try:
            info = self.notifier.client.conversations_info(channel=channel)["channel"]
        except SlackApiError:
            return "unknown"
        if info.get("is_im") or info.get("is_mpim"):
            return "dm"
        if info.get("is_archived"):
            return "archived"
        return "private" if info.get("is_private") else "public"

    def _join(self, channel: str) -> bool:
        """conversations.join (scope channels:join); False if not allowed."""
        try:
            self.notifier.client.conversations_join(channel=channel)
            return True
        except SlackApiError as error:
            log.warning("could not join %s: %s", channel, error.response.get("error"))
            return False

    def bot_name(self) -> str:
        """The app's name as people type it after @ (auth.test), cached."""
        if self._bot_name is None:
            try:
                self._bot_name = str(self.notifier.client.auth_test().get("user") or "amibot")
            except SlackApiError:
                return "amibot"
        return self._bot_name

    def _why_no_root(self, code: str, kind: str, channel: str) -> tuple[str, str]:
        """Why the approval message could not be posted, and what the requester can do."""
        at, cmd = f"@{self.bot_name()}", self.config.bot.command
        if kind == "dm" or channel.startswith("D"):
            return ("requests cannot be approved in a direct message.", f"Ask again in a channel where the owners can see it, e.g. `{cmd} …` in your team's channel.")
        if code == "is_archived" or kind == "archived":
            return ("the channel is archived.", "Ask again in a channel that is in use.")
        if code in ("msg_too_long", "invalid_blocks", "no_text"):
            return (f"Slack refused the message (`{code}`); this is a bug in amibot.", "Please report it with the request id; asking again will not help until it is fixed.")
        if kind == "private" or code == "channel_not_found":
            return ("it is a private channel I am not a member of.", f"Invite me with `/invite {at}` in that channel, then ask again; or ask in a channel I am in.")
        return ("I am not a member of this channel and could not join it (the app lacks the `channels:join` scope).", f"Add me with `/invite {at}`, then ask again.")
