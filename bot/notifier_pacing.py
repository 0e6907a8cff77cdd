"""How the notifier's calls fit Slack's limits (issue 20): the client it calls Slack
with, which counts every call in the :class:`~bot.slack_limits.Pacer` and never
sleeps on a 429 (the row waits in the outbox instead, and only that method is held
back), what a row needs before it may go, and the one-edit-a-minute rule for a
message whose request is still running.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web.slack_response import SlackResponse

from bot.notifier_cards import COPY_ROLE, PROGRESS_ROLE
from bot.slack_limits import Pacer
from bot.store import Store

# A message is edited at most once per EDIT_INTERVAL seconds while its request is
# not finished; an edit showing a new phase (decided, started, ended) goes at once.
EDIT_INTERVAL = 60.0

# approved is running a moment later: one phase, so one edit, for people.
_PHASES = {"approved": "running"}

# How many messages' last edit the client remembers (to skip an edit changing nothing).
_SHOWN_KEPT = 5000


def phase(state: str) -> str:
    """The phase an edit shows: a change of phase is never held back."""
    return _PHASES.get(state, state)


class PacedWebClient(WebClient):
    """A WebClient whose every call is counted in a :class:`Pacer`, and which does
    not send an edit that would leave a message exactly as its last edit left it."""

    pacer: Pacer
    _shown: dict[tuple[str, str], str]

    def api_call(self, api_method: str, **kwargs: Any) -> Any:  # noqa: D102 (WebClient's)
        fields = kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {}
        fields = fields if isinstance(fields, dict) else {}
        shown = None
        if api_method == "chat.update":
            key = (str(fields.get("channel")), str(fields.get("ts")))
            content = json.dumps({k: fields.get(k) for k in ("text", "blocks", "attachments")}, sort_keys=True, default=str)
            shown = (key, hashlib.sha256(content.encode()).hexdigest())
            if self._shown.get(key) == shown[1]:  # nothing would change: no call
                return SlackResponse(client=self, http_verb="POST", api_url=self.base_url + api_method, req_args={},
                                     data={"ok": True, "channel": key[0], "ts": key[1], "unchanged": True}, headers={}, status_code=200)
        self.pacer.took(api_method, fields.get("channel"), fields.get("thread_ts") or None)
        response = super().api_call(api_method, **kwargs)
        if shown is not None:
            self._shown.pop(shown[0], None)
            self._shown[shown[0]] = shown[1]
            if len(self._shown) > _SHOWN_KEPT:  # the oldest messages are done with
                self._shown.pop(next(iter(self._shown)))
        return response


def paced_client(client: Any, pacer: Pacer) -> Any:
    """``client`` counted in ``pacer``, without slack-sdk's 429 retry handler (which
    sleeps in the calling thread: the delivery loop waits instead). Anything that is
    not a WebClient (a test double) is returned as it is."""
    if not isinstance(client, WebClient):
        return client
    paced = PacedWebClient.__new__(PacedWebClient)
    paced.__dict__.update(client.__dict__)
    paced.retry_handlers = [h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)]
    paced.pacer = pacer
    paced._shown = {}
    return paced


def method_of(error: Any) -> str:
    """The Web API method a SlackApiError answered (``…/api/chat.update`` → ``chat.update``)."""
    url = getattr(getattr(error, "response", None), "api_url", "") or ""
    return url.rstrip("/").rsplit("/", 1)[-1]


class EditClock:
    """When each request's card and progress reply were last edited, and showing
    which phase (in memory: after a restart one more edit may go at once)."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], tuple[float, str]] = {}

    def due(self, request_id: int, kind: str, state: str, final: bool, now: float) -> float:
        """When an edit of ``kind`` may go: ``now`` for a final state or a new phase,
        else one EDIT_INTERVAL after the last edit."""
        last = self._last.get((request_id, kind))
        if final or last is None or last[1] != phase(state):
            return now
        return max(now, last[0] + EDIT_INTERVAL)

    def edited(self, request_id: int, kind: str, state: str, now: float) -> None:
        """Record an edit made at ``now`` showing ``state``."""
        self._last[(request_id, kind)] = (now, phase(state))


class PacedDelivery:
    """The notifier's pacing (mixed into :class:`bot.notifier.Notifier`, which
    provides ``store``, ``pacer``, ``edits``, ``_dm_channels`` and ``_send``). Row
    kinds are the outbox kinds of ``bot.notifier``."""

    store: Store
    pacer: Pacer
    edits: EditClock
    _dm_channels: dict[str, str]

    def _send(self, row: dict[str, Any]) -> str:
        raise NotImplementedError  # the Notifier's

    _paced_until: float | None = None

    def _paced(self, seconds: float) -> None:
        """Note that a row waits ``seconds`` for its call (the loop wakes then)."""
        at = self.store.clock() + seconds
        self._paced_until = at if self._paced_until is None else min(self._paced_until, at)

    def _deliver(self, row: dict[str, Any]) -> str:
        """Send ``row`` if its call fits Slack's limits now: "wait" when it must be
        tried again later (paced, held back by a 429), "later" for an edit held back
        to one a minute, else what :meth:`_send` says."""
        kind, request = row["kind"], None
        if row["request_id"] is not None and kind not in ("respond", "ephemeral", "post", "dm"):
            request = self.store.get(row["request_id"])
        method, channel = self._call_of(row, request)
        thread = request.root_ts if request is not None and kind in ("reply", "progress") else None
        # A row carrying a copy's progress comes from the engine, which shows progress
        # once a minute already (PlanRunner.progress_edit_seconds): not held twice.
        engine_paced = row["payload"].get("progress") is not None
        if method == "chat.update" and request is not None and row["state"] != "sending" and not engine_paced:
            now = self.store.clock()
            due = self.edits.due(request.id, kind, request.state, request.is_final, now)
            if due > now:
                self.store.defer_outbox(row["id"], due)
                return "later"
        # An update edits the root and every copy of the card: room for all of them.
        calls = 1 + len(self.store.posted_messages(request.id, COPY_ROLE)) if kind == "update" and request is not None else 1
        if method and self._held_back(method, channel, calls, thread):
            return "wait"
        outcome = self._send(row)
        if request is not None and outcome == "sent" and method == "chat.update":
            self.edits.edited(request.id, kind, request.state, self.store.clock())
        return outcome

    def _call_of(self, row: dict[str, Any], request: Any) -> tuple[str | None, str | None]:
        """The paced Web API call a row starts with, and its channel."""
        kind, payload = row["kind"], row["payload"]
        if kind == "ephemeral":
            return "chat.postEphemeral", None
        if kind == "post":
            return "chat.postMessage", payload["channel"]
        if kind == "dm":
            return "chat.postMessage", self._dm_channels.get(payload["user"])
        if kind == "copy":
            return "chat.postMessage", self._dm_channels.get(payload["target"]) if payload["dm"] else payload["target"]
        if request is None:
            return None, None
        if kind == "update":
            return ("chat.update", None) if request.root_ts else (None, None)
        if kind == "progress" and request.root_ts and self.store.posted_messages(request.id, PROGRESS_ROLE):
            return "chat.update", None
        return "chat.postMessage", request.channel

    def _held_back(self, method: str, channel: str | None = None, calls: int = 1, thread_ts: str | None = None) -> bool:
        """Whether ``calls`` calls to ``method`` must wait (paced, or held by a 429);
        the loop wakes when they may go."""
        wait = self.pacer.wait(method, channel, calls, thread_ts)
        if wait > 0:
            self._paced(wait)
            return True
        return False
