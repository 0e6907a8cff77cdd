"""How the notifier posts a message exactly once across a crash, and keeps a
request's cards (the root message and its copies elsewhere) and its one progress
reply current in Slack. Part of :class:`bot.notifier.Notifier`, which provides
``store``, ``client``, ``owners_of``, ``update_root`` and the DM channel cache.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import cards, crashpoints, messages
from bot.store import Store

log = logging.getLogger("amibot.notifier")

COPY_ROLE = "copy"  # stored role of a card posted elsewhere (an approval channel, an owner's DM)
PROGRESS_ROLE = "progress"
METADATA_EVENT = "amibot_outbox"


class CardPosting:
    """Posting once, and editing the cards and the progress reply (see the module)."""

    store: Store
    client: WebClient
    owners_of: Callable[[str], list[str]]
    _dm_channels: dict[str, str]

    def update_root(self, request_id: int, progress: str | None = None) -> None:
        raise NotImplementedError  # the Notifier's

    def _metadata(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": row["id"]}}

    def _already_posted(self, row: dict[str, Any], channel: str, thread_ts: str | None) -> str | None:
        """The ts of the message this row already posted, if Slack has it. Without
        the history scopes (``missing_scope``) nobody can tell: None, and the row is
        sent again (the README states this degradation)."""
        try:
            if thread_ts:
                messages_ = self.client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True, limit=200)["messages"]
            else:
                messages_ = self.client.conversations_history(channel=channel, include_all_metadata=True, limit=100)["messages"]
        except SlackApiError as error:
            if error.response.get("error") not in ("missing_scope", "not_in_channel"):
                raise
            log.warning("cannot check whether outbox %s was posted before a restart (%s): sending it again", row["id"], error.response.get("error"))
            return None
        for message in messages_:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("outbox_id") == row["id"]:
                return message["ts"]
        return None

    def _post_once(self, row: dict[str, Any], **kwargs: Any) -> str:
        """chat.postMessage at most once for this row, even across a crash."""
        if row["state"] == "sending":
            ts = self._already_posted(row, kwargs["channel"], kwargs.get("thread_ts"))
            if ts:
                log.info("outbox %s was already posted before a restart (ts %s)", row["id"], ts)
                return ts
        self.store.mark_outbox_sending(row["id"])
        crashpoints.reached(f"posting:{row['kind']}")
        response = self.client.chat_postMessage(metadata=self._metadata(row), **kwargs)
        crashpoints.reached(f"posted:{row['kind']}")
        return response["ts"]

    def _owners(self, request: Any) -> dict[str, list[str]]:
        """Who may approve each account, as configured, the requester left out."""
        return {alias: [o for o in self.owners_of(alias) if o != request.requester] for alias in request.approver_accounts}

    def _dm_channel(self, user: str) -> str:
        """The DM channel with ``user`` (conversations.open, cached)."""
        if user not in self._dm_channels:
            self._dm_channels[user] = self.client.conversations_open(users=user)["channel"]["id"]
        return self._dm_channels[user]

    def _send_card_elsewhere(self, row: dict[str, Any], request: Any) -> None:
        payload = row["payload"]
        # Not needed any more: decided before this copy went out, or the root itself was
        # re-routed to that channel (one card is enough).
        unneeded = request.state != "pending_approval" or (not payload["dm"] and payload["target"] == request.channel)
        if unneeded and row["state"] != "sending":
            return
        channel = self._dm_channel(payload["target"]) if payload["dm"] else payload["target"]
        if unneeded:
            # It may have reached Slack just before a crash: record it so that it is
            # brought up to date (buttons gone) like every other copy.
            ts = self._already_posted(row, channel, None)
            if ts:
                self.store.record_message(request.id, COPY_ROLE, payload["role_target"], channel, ts)
                self.update_root(request.id)
            return
        blocks = messages.root_blocks(request, self._owners(request), asked_in=request.channel, note=payload.get("note"))
        # The text is what a phone shows (Slack notifies with the top-level text, not
        # the blocks): written for the lock screen, a reminder saying it is one.
        text = messages.lock_screen(request, payload.get("lead") or "") if payload["dm"] else messages.channel_alert(request)
        ts = self._post_once(row, channel=channel, text=text, blocks=blocks)
        self.store.record_message(request.id, COPY_ROLE, payload["role_target"], channel, ts)

    def _update_cards(self, request: Any, progress: str | None) -> None:
        """Bring the root message and every copy of the card up to date. A copy that
        cannot be edited (deleted, archived channel) does not hold the others back."""
        revoked_by, denied_by = self._revoked_by(request), self._denied_by(request)
        text = messages.root_text(request)
        if request.root_ts:
            blocks = messages.root_blocks(request, self._owners(request), progress=progress, revoked_by=revoked_by, denied_by=denied_by)
            self.client.chat_update(channel=request.channel, ts=request.root_ts, text=text, blocks=blocks)
        for posted in self.store.posted_messages(request.id, COPY_ROLE):
            blocks = messages.root_blocks(request, self._owners(request), progress=progress, asked_in=request.channel, revoked_by=revoked_by,
                                         denied_by=denied_by)
            try:
                self.client.chat_update(channel=posted["channel"], ts=posted["ts"], text=text, blocks=blocks)
            except SlackApiError as error:
                code = error.response.get("error", "")
                if code not in ("message_not_found", "channel_not_found", "is_archived", "cant_update_message"):
                    raise
                log.warning("copy of request %s in %s could not be updated: %s", request.id, posted["channel"], code)

    def _revoked_by(self, request: Any) -> str | None:
        if request.state != "revoked":
            return None
        entry = next((a for a in reversed(self.store.events(request.id)) if a["to_state"] == "revoked"), None)
        return entry["detail"] if entry else None

    def _denied_by(self, request: Any) -> str | None:
        """Who denied it (the card says so)."""
        if request.state != "denied":
            return None
        entry = next((a for a in reversed(self.store.events(request.id)) if a["to_state"] == "denied"), None)
        return entry["actor"] if entry else None

    def _send_progress(self, row: dict[str, Any], request: Any) -> None:
        text = cards.progress_text(request, row["payload"].get("progress") or request.progress)
        posted = self.store.posted_messages(request.id, PROGRESS_ROLE)
        if posted:
            self.client.chat_update(channel=posted[0]["channel"], ts=posted[0]["ts"], text=text)
            return
        # The first progress row posts the reply (once, even across a crash); later
        # rows edit it. Rows are sent in order, so a later row finds it recorded.
        ts = self._post_once(row, channel=request.channel, thread_ts=request.root_ts, text=text)
        self.store.record_message(request.id, PROGRESS_ROLE, request.channel, request.channel, ts)
