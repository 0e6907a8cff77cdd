"""Slack's side of the Events/Interactivity HTTP protocol: :class:`SignedSlackClient`
builds slash-command, button, view, option-load and event payloads as Slack does, signs
them and POSTs them to the bot; :class:`HttpResult` is what the bot answered."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from offline.slack.server import FakeSlack


@dataclass
class HttpResult:
    """What the bot's endpoint answered."""

    status: int
    body: str
    headers: dict
    elapsed: float  # seconds from sending to the end of the answer

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SignedSlackClient:
    """Plays Slack's side of the Events/Interactivity HTTP protocol: builds payloads as Slack does and signs them."""

    api_app_id = "A0AMIBOT"
    verification_token = "legacy-verification-token"  # deprecated by Slack; still sent

    def __init__(self, endpoint_url: str, signing_secret: str, fake: FakeSlack, *,
                 team_id: str = "T0SANDBOX", command: str = "/ami",
                 clock: Callable[[], float] = time.time):
        self.endpoint_url, self.signing_secret, self.fake = endpoint_url, signing_secret, fake
        self.team_id, self.command, self.clock = team_id, command, clock
        self.team_domain = "sandbox"
        self.last_response_url: str | None = None
        self.last_trigger_id: str | None = None

    # -- signing and sending -------------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> dict:
        """The two headers Slack adds: the timestamp and ``v0=`` HMAC-SHA256 of ``v0:ts:body``."""
        ts = int(self.clock()) if timestamp is None else int(timestamp)
        base = b"v0:" + str(ts).encode() + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": "v0=" + digest}

    def post_raw(self, body: bytes, headers: dict) -> HttpResult:
        """POST ``body`` with exactly ``headers`` (nothing signed for you). Never raises on 4xx/5xx."""
        request = urllib.request.Request(self.endpoint_url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, text, answer_headers = resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, text, answer_headers = err.code, err.read().decode(), dict(err.headers)
        return HttpResult(status, text, answer_headers, time.monotonic() - started)

    def _post_form(self, fields: dict, extra_headers: dict | None = None) -> HttpResult:
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                   **self.sign(body), **(extra_headers or {})}
        return self.post_raw(body, headers)

    def _post_payload(self, payload: dict) -> HttpResult:
        return self._post_form({"payload": json.dumps(payload)})

    # -- building blocks of payloads -------------------------------------------------
    def _user(self, user_id: str, user_name: str | None = None) -> dict:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _trigger(self) -> str:
        self.last_trigger_id = self.fake.new_trigger_id()
        return self.last_trigger_id

    def _response_url(self, channel: str | None, message_ts: str | None, user: str) -> str:
        self.last_response_url = self.fake.new_response_url(channel, message_ts, user)
        return self.last_response_url

    def _common(self, kind: str, user_id: str) -> dict:
        return {"type": kind, "user": self._user(user_id), "api_app_id": self.api_app_id,
                "token": self.verification_token, "team": {"id": self.team_id, "domain": self.team_domain},
                "enterprise": None, "is_enterprise_install": False}

    # -- what a person does ------------------------------------------------------------
    def slash(self, user_id: str, channel_id: str, text: str, *, user_name: str | None = None) -> HttpResult:
        """Type ``/ami <text>`` in a channel."""
        return self._post_form({
            "token": self.verification_token, "team_id": self.team_id, "team_domain": self.team_domain,
            "channel_id": channel_id, "channel_name": channel_id.lower(), "user_id": user_id,
            "user_name": user_name or user_id.lower(), "command": self.command, "text": text,
            "api_app_id": self.api_app_id, "is_enterprise_install": "false",
            "response_url": self._response_url(channel_id, None, user_id),
            "trigger_id": self._trigger()})

    def click(self, user_id: str, channel_id: str, message_ts: str, action_id: str, value: str,
              *, block_id: str | None = None, message: dict | None = None) -> HttpResult:
        """Click button ``action_id`` on a message, as it currently looks in the fake
        (or on ``message``: an ephemeral answer the fake does not keep, e.g. the body of
        a slash command's answer).

        ``block_id`` defaults to the block holding that button in the message, else
        ``"decision"``. Clicking a button no longer shown is allowed: people click
        stale messages.
        """
        ephemeral = message is not None
        message = message or self.fake.message(channel_id, message_ts) or {
            "type": "message", "ts": message_ts, "text": "", "blocks": []}
        button: dict = {}
        for block in message.get("blocks") or []:
            for el in list(block.get("elements") or []) + [block.get("accessory") or {}]:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    button, block_id = el, block_id or block.get("block_id")
        payload = self._common("block_actions", user_id)
        payload.update({
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                          "is_ephemeral": ephemeral},
            "trigger_id": self._trigger(),
            "channel": {"id": channel_id, "name": channel_id.lower()},
            "message": {k: v for k, v in message.items() if k != "channel" and v is not None},
            "state": {"values": {}},
            "response_url": self._response_url(channel_id, message_ts, user_id),
            "actions": [{"action_id": action_id, "block_id": block_id or "decision", "value": value,
                         "type": "button", "action_ts": f"{self.clock():.6f}",
                         "text": button.get("text", {"type": "plain_text", "text": action_id}),
                         **({"style": button["style"]} if "style" in button else {})}]})
        return self._post_payload(payload)

    def submit_view(self, user_id: str, callback_id: str, values: dict,
                    private_metadata: str | None = None) -> HttpResult:
        """Press Submit on a modal.

        ``values`` is ``state.values``: ``{block_id: {action_id: leaf}}``, a leaf being
        Slack's dict (e.g. ``{"type": "static_select", "selected_option": {...}}``) or
        a plain string for a text input. The view is the latest one the bot opened with
        that ``callback_id`` (its id, blocks and private_metadata), if any.
        """
        opened = [v for v in self.fake.views.values() if v.get("callback_id") == callback_id]
        view = dict(opened[-1]) if opened else {"id": "V0SUBMIT", "type": "modal", "blocks": [],
                                                "callback_id": callback_id, "private_metadata": ""}
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        view["state"] = {"values": {
            block: {action: leaf if isinstance(leaf, dict) else {"type": "plain_text_input", "value": leaf}
                    for action, leaf in actions.items()}
            for block, actions in values.items()}}
        payload = self._common("view_submission", user_id)
        payload.update({"trigger_id": self._trigger(), "view": view, "response_urls": self._view_response_urls(view, user_id)})
        return self._post_payload(payload)

    def _view_response_urls(self, view: dict, user_id: str) -> list[dict]:
        """What Slack sends for a conversation select with ``response_url_enabled``."""
        urls = []
        for block in view.get("blocks") or []:
            element = block.get("element") or {}
            if block.get("type") == "input" and element.get("response_url_enabled"):
                leaf = view["state"]["values"].get(block.get("block_id"), {}).get(element.get("action_id"), {})
                channel = leaf.get("selected_conversation") or leaf.get("selected_channel")
                if channel:
                    urls.append({"block_id": block["block_id"], "action_id": element["action_id"], "channel_id": channel,
                                 "response_url": self._response_url(channel, None, user_id)})
        return urls

    def suggest(self, user_id: str, action_id: str, value: str, *, block_id: str = "ami",
                view_id: str | None = None, values: dict | None = None) -> HttpResult:
        """Type ``value`` into an external select in a modal: a ``block_suggestion`` option load.

        The view is the one with ``view_id`` (else the latest modal opened), with the
        other fields' current ``values`` in ``state`` (``{block_id: {action_id: leaf}}``)."""
        views = self.fake.views
        if view_id is None:
            modals = [v for v in views.values() if v.get("type") == "modal"]
            view_id = modals[-1]["id"] if modals else "V0SUGGEST"
        view = dict(views.get(view_id, {"id": view_id, "type": "modal", "blocks": []}))
        view["state"] = {"values": values or {}}
        payload = self._common("block_suggestion", user_id)
        payload.update({"container": {"type": "view", "view_id": view_id},
                        "action_id": action_id, "block_id": block_id, "value": value, "view": view})
        return self._post_payload(payload)

    def shortcut(self, user_id: str, callback_id: str) -> HttpResult:
        """Choose a global shortcut (the lightning menu or the search bar)."""
        return self._post_payload({
            "type": "shortcut", "token": self.verification_token, "action_ts": f"{self.clock():.6f}",
            "team": {"id": self.team_id, "domain": self.team_domain}, "user": self._user(user_id),
            "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
            "trigger_id": self._trigger()})

    def home_opened(self, user_id: str, *, event_id: str | None = None, retry_num: int | None = None,
                    tab: str = "home") -> HttpResult:
        """Open the app's Home tab: an ``app_home_opened`` event (with the view Slack
        shows, once one was published)."""
        event: dict = {"type": "app_home_opened", "user": user_id, "channel": "D" + user_id[1:], "tab": tab}
        published = self.fake.views.get(f"VHOME{user_id}")
        if published:
            event["view"] = published
        return self.event(event, event_id=event_id, retry_num=retry_num)

    def click_view(self, user_id: str, view_id: str, action_id: str, value: str, *, block_id: str | None = None) -> HttpResult:
        """Click a button on a view (a modal or the App Home): a ``block_actions`` payload
        with a ``view`` container and no channel, as Slack sends it."""
        view = self.fake.views.get(view_id) or {"id": view_id, "type": "home", "blocks": []}
        button: dict = {}
        for block in view.get("blocks") or []:
            for el in list(block.get("elements") or []) + [block.get("accessory") or {}]:
                if isinstance(el, dict) and el.get("action_id") == action_id and el.get("value") == value:
                    button, block_id = el, block_id or block.get("block_id")
        payload = self._common("block_actions", user_id)
        payload.update({
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": self._trigger(), "view": view, "state": {"values": {}},
            "actions": [{"action_id": action_id, "block_id": block_id or "home", "value": value,
                         "type": "button", "action_ts": f"{self.clock():.6f}",
                         "text": button.get("text", {"type": "plain_text", "text": action_id})}]})
        return self._post_payload(payload)

    def choose(self, user_id: str, view_id: str, action_id: str, value: str, *, values: dict | None = None,
               view: dict | None = None) -> HttpResult:
        """Choose ``value`` in the static select ``action_id`` of a modal whose input block
        has ``dispatch_action``: a ``block_actions`` payload with the view as the fake
        holds it now (its ``hash``; or ``view``, an older look at it: two choices
        racing) and the fields' current ``values`` (``{block_id: {action_id: leaf}}``,
        the choice added)."""
        view = dict(view or self.fake.views.get(view_id) or {"id": view_id, "type": "modal", "blocks": [], "hash": ""})
        block = next((b for b in view.get("blocks") or [] if (b.get("element") or {}).get("action_id") == action_id), {})
        choice = next((o for o in (block.get("element") or {}).get("options") or [] if o.get("value") == value),
                      {"text": {"type": "plain_text", "text": value}, "value": value})
        leaf = {"type": "static_select", "selected_option": choice}
        view["state"] = {"values": {**(values or {}), block.get("block_id", action_id): {action_id: leaf}}}
        payload = self._common("block_actions", user_id)
        payload.update({
            "container": {"type": "view", "view_id": view_id}, "trigger_id": self._trigger(), "view": view,
            "actions": [{"action_id": action_id, "block_id": block.get("block_id", action_id), "type": "static_select",
                         "selected_option": choice, "action_ts": f"{self.clock():.6f}"}]})
        return self._post_payload(payload)

    def event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None) -> HttpResult:
        """Deliver an Events API ``event_callback`` (JSON); ``retry_num`` plays a redelivery."""
        event_id = event_id or "Ev" + secrets.token_hex(5).upper()
        body = json.dumps({
            "token": self.verification_token, "team_id": self.team_id, "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{self.clock():.6f}", **event}, "type": "event_callback",
            "event_id": event_id, "event_time": int(self.clock()),
            "authorizations": [{"team_id": self.team_id, "user_id": self.fake.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}]}).encode()
        headers = {"Content-Type": "application/json", **self.sign(body)}
        if retry_num:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return self.post_raw(body, headers)
