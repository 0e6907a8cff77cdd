"""Reaching the approvers: copies of the approval card where owners look (approval
channels, their DMs), reminders before expiry, and what happens when Slack refuses
the card itself (join the channel, re-route it, or end the request).
"""

from __future__ import annotations

import logging
from typing import Callable

from slack_sdk.errors import SlackApiError

from bot import cards, slacktext
from bot.config import Config
from bot.lifecycle import Lifecycle
from bot.notifier import Notifier
from bot.requests import PENDING_APPROVAL, Request
from bot.store import Store

log = logging.getLogger("amibot.approvals")


class Approvals:
    """Puts a pending request in front of the people who may decide it."""

    def __init__(self, config: Config, store: Store, notifier: Notifier, lifecycle: Lifecycle, owner_users: Callable[[str], set[str]]):
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

    def ask_owners_elsewhere(self, request: Request) -> None:
        """Copies of the approval card, with the same buttons: in each account's
        ``approval_channel`` and in a DM to each eligible owner (``approval_dm``)."""
        channels: list[str] = []
        dm_accounts: list[str] = []
        for alias in request.approver_accounts:
            account = self.config.account(alias)
            if account.approval_channel and account.approval_channel != request.channel and account.approval_channel not in channels:
                channels.append(account.approval_channel)
            if account.approval_dm if account.approval_dm is not None else self.config.bot.approval_dm:
                dm_accounts.append(alias)
        for channel in channels:
            self.notifier.post_card_elsewhere(request.id, channel, dm=False)
        for user in self.eligible_owners(request, dm_accounts):
            self.notifier.post_card_elsewhere(request.id, user, dm=True)

    def remind(self, request: Request, hours: int) -> int:
        """A DM reminder, with the buttons, to each owner who could still decide; once
        per owner and schedule entry. Returns how many were queued."""
        queued = 0
        for user in self.eligible_owners(request):
            key = f"remind:{request.id}:{hours}:{user}"
            if not self.store.has_outbox(key):
                self.notifier.post_card_elsewhere(request.id, user, dm=True, note=cards.reminder_note(request, hours), dedupe=key, role_target=f"{user}:reminder:{hours}")
                queued += 1
        return queued

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
