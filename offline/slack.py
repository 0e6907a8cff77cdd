"""Slack's side of the conversation, on loopback: for the tests and ``amibot demo``.

Three pieces, standard library only:

* :class:`FakeSlack` answers the Slack Web API (point ``SLACK_API_URL`` / the
  ``WebClient``'s ``base_url`` at :attr:`FakeSlack.api_url`), records every call,
  keeps channels and threads as Slack would show them, can script 429s and errors,
  and serves ``response_url``\\ s.
* :class:`SignedSlackClient` plays a person in Slack: it builds slash-command,
  button-click, view-submission, option-load and event payloads the way Slack does,
  signs them (``v0:<timestamp>:<body>``, HMAC-SHA256) and POSTs them to the bot.
* :class:`FakeSocketMode` is Slack's Socket Mode WebSocket endpoint (RFC 6455):
  ``apps.connections.open`` on the fake hands out its ``ws://`` URLs, and it delivers
  envelopes (``slash_commands``, ``interactive``, ``events_api``) and collects the acks.

The fake is strict where a real Slack would be and the bot could get it wrong:
a call with no token is ``not_authed``; more than 50 blocks (100 in a view), a
section text over 3,000 characters, more than 25 elements in an actions block,
button text over 75 characters or a duplicate ``action_id``/``block_id`` is
``invalid_blocks``; a ``trigger_id`` it issued works once, within 3 s.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from bot.slack_scopes import OPTIONAL_BOT_SCOPES, REQUIRED_BOT_SCOPES

__all__ = ["FakeSlack", "SlackCall", "SignedSlackClient", "HttpResult", "FakeSocketMode"]

JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata"})
TRIGGER_TTL_SECONDS = 3.0


@dataclass
class SlackCall:
    """One request the fake received: a Web API call, or a POST to a response_url."""

    method: str  # "chat.postMessage", or the path "/response/3" for a response_url
    params: dict  # query, form and JSON fields merged; JSON-encoded fields decoded
    at: float  # time.time() on arrival
    token: str | None = None  # from the Authorization header or the token param
    status: int = 200  # HTTP status answered (429 for a scripted rate limit)
    response: dict = field(default_factory=dict)  # the JSON body answered


def _truthy(value: Any) -> bool:
    return value in (True, 1) or str(value).lower() in ("true", "1", "yes")


def _block_problems(blocks: Any, max_blocks: int) -> list[str]:
    """The Block Kit limits Slack enforces and a plain dict would slip past."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = [f"{len(blocks)} blocks; at most {max_blocks}"] if len(blocks) > max_blocks else []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"block {i}: not an object")
            continue
        action_ids: set[str] = set()  # Slack wants action_ids unique within a block
        if block.get("block_id") in block_ids:
            problems.append(f"block {i}: duplicate block_id {block['block_id']!r}")
        block_ids.add(block.get("block_id"))
        block_ids.discard(None)
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if len(text) > 3000:
            problems.append(f"block {i}: section text is {len(text)} characters; at most 3000")
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if len(elements) > 25:
            problems.append(f"block {i}: {len(elements)} elements; at most 25")
        elements += [e for e in (block.get("accessory"), block.get("element")) if e]
        for el in (e for e in elements if isinstance(e, dict)):
            if el.get("type") == "button" and len((el.get("text") or {}).get("text", "")) > 75:
                problems.append(f"block {i}: button text over 75 characters")
            options = el.get("options") or []
            if len(options) > 100:
                problems.append(f"block {i}: {len(options)} options; at most 100")
            if any(len((o.get("text") or {}).get("text", "")) > 75 for o in options):
                problems.append(f"block {i}: option text over 75 characters")
            if el.get("action_id") in action_ids:
                problems.append(f"block {i}: duplicate action_id {el['action_id']!r}")
            if el.get("action_id"):
                action_ids.add(el["action_id"])
    return problems


class FakeSlack:
    """A local Slack Web API that records every call.

    ``start()`` binds 127.0.0.1 on a free port in a daemon thread; ``api_url`` is the
    base URL for ``slack_sdk.WebClient``. All public accessors return snapshots and
    are safe to call from any thread while the bot is talking to the fake.
    """

    def __init__(self, *, bot_user_id: str = "UAMIBOT", bot_id: str = "BAMIBOT",
                 team_id: str = "T0SANDBOX", usergroups: dict[str, list[str]] | None = None,
                 channels_bot_cannot_post: set[str] | frozenset[str] = frozenset(),
                 users: dict[str, dict] | None = None,
                 channel_members: dict[str, list[str]] | None = None, bot_name: str = "amibot",
                 public_channels_not_joined: set[str] | frozenset[str] = frozenset(),
                 archived_channels: set[str] | frozenset[str] = frozenset(),
                 unknown_channels: set[str] | frozenset[str] = frozenset(),
                 scopes: set[str] | frozenset[str] | None = None):
        self.bot_user_id, self.bot_id, self.team_id = bot_user_id, bot_id, team_id
        self.bot_name = bot_name
        self.usergroups = dict(usergroups or {})
        self.channels_bot_cannot_post = set(channels_bot_cannot_post)
        # Public channels the bot is not in: posting is not_in_channel until conversations.join
        # (which needs the channels:join scope).
        self.public_channels_not_joined = set(public_channels_not_joined)
        self.archived_channels = set(archived_channels)  # posting: is_archived
        self.unknown_channels = set(unknown_channels)  # posting, info: channel_not_found
        # The bot token's scopes: reported in x-oauth-scopes (amibot doctor) and checked
        # by the methods that need one (missing_scope); tests remove one to see it noticed.
        self.scopes: set[str] = set(scopes) if scopes is not None else set(REQUIRED_BOT_SCOPES) | set(OPTIONAL_BOT_SCOPES)
        # None: any token works; else other tokens get invalid_auth (a revoked token).
        self.accepted_tokens: set[str] | None = None
        self._dms: dict[str, str] = {}  # user id -> D... channel opened with conversations.open
        self.users = dict(users or {})  # user id -> fields overriding users.info defaults
        # channel -> member user ids (conversations.members); other channels: channel_not_found
        self.channel_members = {c: list(m) for c, m in (channel_members or {}).items()}
        self._every: tuple[int, int, frozenset[str]] | None = None  # see rate_limit_every
        self._every_count = 0
        self._lock = threading.RLock()
        self._calls: list[SlackCall] = []
        self._responses: list[SlackCall] = []
        self._messages: dict[str, list[dict]] = {}  # channel -> messages in posting order
        self._ephemerals: list[dict] = []
        self._views: dict[str, dict] = {}
        self._scripted: dict[str, list[tuple[int, dict, dict]]] = {}
        self._response_urls: dict[str, dict] = {}  # path -> {"channel", "message_ts", "user"}
        self._triggers: dict[str, float] = {}  # trigger_id -> issued at (monotonic); -1 once used
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Serve on 127.0.0.1 on a free port, in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                fake._handle(self)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-slack", daemon=True).start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server, "FakeSlack.start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """Base URL of the Web API, ending in ``/api/`` (``SLACK_API_URL``)."""
        return self.base_url + "/api/"

    # -- what happened -----------------------------------------------------------
    @property
    def calls(self) -> list[SlackCall]:
        """Every Web API call in arrival order (rate-limited and failed ones included)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    @property
    def responses(self) -> list[SlackCall]:
        """POSTs to response_urls; ``method`` is the URL's path, ``params`` the JSON body."""
        with self._lock:
            return list(self._responses)

    def responses_to(self, url: str) -> list[SlackCall]:
        path = urllib.parse.urlsplit(url).path
        return [r for r in self.responses if r.method == path]

    def messages(self, channel: str) -> list[dict]:
        """What the channel shows: root messages and broadcast replies, latest versions."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, [])
                    if m["thread_ts"] in (None, m["ts"]) or m["reply_broadcast"]]

    def thread(self, channel: str, ts: str) -> list[dict]:
        """The replies under root message ``ts``, in order (the root excluded)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, [])
                    if m["thread_ts"] == ts and m["ts"] != ts]

    def message(self, channel: str, ts: str) -> dict | None:
        """The latest version of one message (root or reply), or None."""
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def ephemerals(self, user: str | None = None) -> list[dict]:
        """Messages only one person saw: chat.postEphemeral and ephemeral response_url posts."""
        with self._lock:
            return [dict(e) for e in self._ephemerals if user in (None, e["user"])]

    @property
    def views(self) -> dict[str, dict]:
        """Views opened, updated or published, by view id (latest version)."""
        with self._lock:
            return copy.deepcopy(self._views)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate`` until it returns something truthy, and return that.

        On timeout raise AssertionError listing the calls and responses seen, which
        is usually enough to tell what the bot did instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s\n{self.dump()}")
            time.sleep(0.02)

    def dump(self) -> str:
        """A readable list of everything received, for failure messages."""
        def brief(c: SlackCall) -> str:
            p = {k: (v if len(repr(v)) < 200 else repr(v)[:200] + "...") for k, v in c.params.items()}
            err = "" if c.response.get("ok", True) else f" -> {c.response.get('error')}"
            return f"  {c.method} [{c.status}]{err} {p}"
        calls, responses = [brief(c) for c in self.calls], [brief(r) for r in self.responses]
        return "\n".join(["Web API calls:", *(calls or ["  (none)"]),
                          "response_url posts:", *(responses or ["  (none)"])])

    # -- scripting ---------------------------------------------------------------
    def script_rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls to ``method`` get HTTP 429 with ``Retry-After``."""
        self.script_error(method, "ratelimited", times=times, status=429,
                          headers={"Retry-After": str(retry_after)})

    def rate_limit_every(self, n: int | None, retry_after: int = 1,
                         methods: tuple[str, ...] = ("chat.postMessage", "chat.update", "chat.postEphemeral")) -> None:
        """From now on every ``n``-th call to ``methods`` gets HTTP 429 with
        ``Retry-After`` (``None`` stops it): sustained rate limiting, for benchmarks."""
        with self._lock:
            self._every = None if n is None else (n, retry_after, frozenset(methods))
            self._every_count = 0

    def script_error(self, method: str, error: str = "internal_error", *, times: int = 1,
                     status: int = 200, headers: dict | None = None) -> None:
        """The next ``times`` calls to ``method`` fail with ``{"ok": false, "error": error}``.

        ``status=500`` or ``503`` plays a Slack outage; 200 is how Slack reports most errors.
        """
        with self._lock:
            self._scripted.setdefault(method, []).extend(
                [(status, {"ok": False, "error": error}, dict(headers or {}))] * times)

    def new_response_url(self, channel: str | None = None, message_ts: str | None = None,
                         user: str | None = None) -> str:
        """A response_url on this server; POSTs to it are recorded in ``responses``.

        Given the channel (and message), ``response_type: in_channel``,
        ``replace_original`` and ``delete_original`` act on it as Slack would;
        other posts are ephemeral replies to ``user``.
        """
        path = f"/response/{next(self._seq)}"
        with self._lock:
            self._response_urls[path] = {"channel": channel, "message_ts": message_ts, "user": user}
        return self.base_url + path

    def new_trigger_id(self) -> str:
        """A trigger_id that views.open accepts once, within 3 s."""
        trigger = f"{next(self._seq)}.{self.team_id[1:]}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = time.monotonic()
        return trigger

    # -- HTTP --------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(req.path)
        params: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        try:
            params.update(self._parse_body(raw, req.headers.get("Content-Type", "")))
            parsed = True
        except ValueError as err:  # a malformed body: recorded, and answered as Slack does
            params["_unparsed_body"], parsed = f"{raw[:500]!r}: {err}", False
        auth, form_token = req.headers.get("Authorization", ""), params.pop("token", None)
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else form_token
        headers: dict[str, str] = {}
        if url.path.startswith("/api/"):
            method = url.path[len("/api/"):]
            with self._lock:
                try:
                    status, body, headers = (self._answer(method, params, token) if parsed
                                             else (200, {"ok": False, "error": "invalid_json"}, {}))
                except Exception as err:  # a bug in the fake: answer 500 and show it in dump()
                    status, body, headers = 500, {"ok": False, "error": f"fake_slack: {err!r}"}, {}
                self._calls.append(SlackCall(method, params, time.time(), token, status, body))
        elif url.path in self._response_urls:
            status, body = 200, {"ok": True}
            with self._lock:
                self._responses.append(SlackCall(url.path, params, time.time(), None, status, body))
                self._apply_response(self._response_urls[url.path], params)
        else:
            status, body = 404, {"ok": False, "error": "not_found"}
        data = json.dumps(body).encode()
        req.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json; charset=utf-8",
                            "Content-Length": str(len(data))}.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _parse_body(raw: bytes, ctype: str) -> dict:
        """Form or JSON fields; JSON-encoded form fields (``blocks``, ``view`` ...) decoded."""
        if not raw:
            return {}
        if ctype.startswith("application/json"):
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError("JSON body is not an object")
            return parsed
        fields: dict[str, Any] = {k: v[-1] for k, v in
                                  urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
        for key in JSON_FIELDS & fields.keys():
            if fields[key][:1] in ("[", "{"):
                fields[key] = json.loads(fields[key])
        return fields

    # -- the Web API (called with the lock held) ----------------------------------
    def _answer(self, method: str, p: dict, token: str | None) -> tuple[int, dict, dict]:
        if self._scripted.get(method):
            return self._scripted[method].pop(0)
        if self._every is not None and method in self._every[2]:
            self._every_count += 1
            if self._every_count % self._every[0] == 0:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self._every[1])}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        result = handler(p)
        result = {"ok": True, **result} if "error" not in result else {"ok": False, **result}
        # Slack reports a token's scopes on every Web API answer.
        return 200, result, {"x-oauth-scopes": ",".join(sorted(self.scopes))}

    def _next_ts(self) -> str:
        micros = 100 * next(self._seq)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _find(self, channel: str, ts: str) -> dict | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    def _content_error(self, p: dict) -> dict | None:
        if "blocks" in p and (problems := _block_problems(p["blocks"], 50)):
            return {"error": "invalid_blocks", "errors": problems}
        if len(p.get("text") or "") > 40000:
            return {"error": "msg_too_long"}
        return None

    def _api_auth_test(self, p: dict) -> dict:
        return {"url": "https://sandbox.slack.com/", "team": "Sandbox", "user": self.bot_name,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _api_apps_connections_open(self, p: dict) -> dict:
        """Socket Mode: a one-use WebSocket URL on the attached :class:`FakeSocketMode`."""
        server = getattr(self, "socket_mode", None)  # set by FakeSocketMode(fake)
        if server is None:
            return {"error": "fake_slack: no FakeSocketMode attached to this FakeSlack"}
        return {"url": server.new_url()}

    def _api_chat_postMessage(self, p: dict) -> dict:  # noqa: N802 (Slack's method name)
        channel = p.get("channel")
        if not channel:
            return {"error": "channel_not_found"}
        if channel in self.channels_bot_cannot_post or channel in self.public_channels_not_joined:
            return {"error": "not_in_channel"}
        if channel in self.unknown_channels or (channel.startswith("D") and channel not in self._dms.values()):
            return {"error": "channel_not_found"}  # Slack's word for a DM the bot is not part of, too
        if channel in self.archived_channels:
            return {"error": "is_archived"}
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            return {"error": "no_text"}
        if error := self._content_error(p):
            return error
        thread_ts = p.get("thread_ts") or None
        msg = {"type": "message", "ts": self._next_ts(), "channel": channel,
               "text": p.get("text", ""), "blocks": p.get("blocks", []),
               "attachments": p.get("attachments", []), "user": self.bot_user_id,
               "bot_id": self.bot_id, "thread_ts": thread_ts,
               "reply_broadcast": bool(thread_ts) and _truthy(p.get("reply_broadcast")),
               "metadata": p.get("metadata"), "edited": None}
        if thread_ts and (root := self._find(channel, thread_ts)):
            root["thread_ts"] = thread_ts
            root["reply_count"] = root.get("reply_count", 0) + 1
        self._messages.setdefault(channel, []).append(msg)
        return {"channel": channel, "ts": msg["ts"], "message": copy.deepcopy(msg)}

    def _api_chat_update(self, p: dict) -> dict:
        msg = self._find(p.get("channel", ""), p.get("ts", ""))
        if msg is None:
            return {"error": "message_not_found"}
        if error := self._content_error(p):
            return error
        for key in ("text", "blocks", "attachments", "metadata"):  # omitted fields are kept
            if key in p:
                msg[key] = p[key]
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": msg["channel"], "ts": msg["ts"], "text": msg["text"],
                "message": copy.deepcopy(msg)}

    def _api_chat_postEphemeral(self, p: dict) -> dict:  # noqa: N802
        if p.get("channel") in self.channels_bot_cannot_post:
            return {"error": "not_in_channel"}
        if not p.get("user"):
            return {"error": "user_not_in_channel"}
        if error := self._content_error(p):
            return error
        eph = {"channel": p.get("channel"), "user": p["user"], "text": p.get("text", ""),
               "blocks": p.get("blocks", []), "thread_ts": p.get("thread_ts"),
               "ts": self._next_ts(), "via": "chat.postEphemeral"}
        self._ephemerals.append(eph)
        return {"message_ts": eph["ts"]}

    def _store_view(self, view: Any, view_id: str | None = None) -> dict:
        if not isinstance(view, dict):
            return {"error": "invalid_arguments", "errors": ["view must be an object"]}
        problems = _block_problems(view.get("blocks", []), 100)
        if len((view.get("title") or {}).get("text", "")) > 24:
            problems.append("title over 24 characters")
        if problems:
            return {"error": "invalid_arguments", "errors": problems}
        view_id = view_id or f"V{next(self._seq):08d}"
        stored = {"private_metadata": "", "callback_id": "", **copy.deepcopy(view), "id": view_id,
                  "team_id": self.team_id, "hash": f"{time.time():.6f}", "bot_id": self.bot_id}
        self._views[view_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _api_views_open(self, p: dict) -> dict:
        issued = self._triggers.get(p.get("trigger_id", ""))  # unknown triggers pass
        if issued == -1:
            return {"error": "exchanged_trigger_id"}
        if issued is not None and time.monotonic() - issued > TRIGGER_TTL_SECONDS:
            return {"error": "expired_trigger_id"}
        result = self._store_view(p.get("view"))
        if issued is not None and "view" in result:
            self._triggers[p["trigger_id"]] = -1
        return result

    def _api_views_update(self, p: dict) -> dict:
        view_id = p.get("view_id") or next(
            (v["id"] for v in self._views.values()
             if p.get("external_id") and v.get("external_id") == p["external_id"]), None)
        if view_id not in self._views:
            return {"error": "not_found"}
        return self._store_view(p.get("view"), view_id)

    def _api_views_publish(self, p: dict) -> dict:
        return self._store_view({**(p.get("view") or {}), "type": "home"}, f"VHOME{p.get('user_id')}")

    def _api_chat_getPermalink(self, p: dict) -> dict:  # noqa: N802
        channel, ts = p.get("channel") or "", p.get("message_ts") or ""
        if self._find(channel, ts) is None:
            return {"error": "message_not_found"}
        return {"channel": channel, "permalink": f"https://sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _api_conversations_members(self, p: dict) -> dict:
        """Members of a channel, paginated with ``limit`` and ``cursor`` as Slack does."""
        channel = p.get("channel") or ""
        if channel not in self.channel_members:
            return {"error": "channel_not_found"}
        members = self.channel_members[channel]
        start = int(base64.b64decode(p["cursor"]).decode().split(":")[1]) if p.get("cursor") else 0
        limit = min(int(p.get("limit") or 100), 1000)
        page, rest = members[start:start + limit], members[start + limit:]
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if rest else ""
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _api_usergroups_users_list(self, p: dict) -> dict:
        if p.get("usergroup") not in self.usergroups:
            return {"error": "no_such_subteam"}
        return {"users": list(self.usergroups[p["usergroup"]])}

    def _api_users_info(self, p: dict) -> dict:
        uid = p.get("user") or ""
        if uid[:1] not in ("U", "W") or not uid.isalnum():
            return {"error": "user_not_found"}
        name = uid.lower()
        user = {"id": uid, "team_id": self.team_id, "name": name, "real_name": name.title(),
                "tz": "UTC", "tz_label": "Coordinated Universal Time", "tz_offset": 0,
                "is_bot": uid == self.bot_user_id, "deleted": False,
                "profile": {"display_name": name, "real_name": name.title()}}
        return {"user": {**user, **self.users.get(uid, {})}}

    def _api_conversations_replies(self, p: dict) -> dict:
        """The thread (root first), newest last; metadata only when asked, as Slack."""
        channel, ts = p.get("channel", ""), p.get("ts", "")
        root = self._find(channel, ts)
        if root is None:
            return {"error": "thread_not_found"}
        thread = [root] + [m for m in self._messages.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts]
        return {"messages": [self._as_listed(m, p) for m in thread], "has_more": False}

    def _api_conversations_history(self, p: dict) -> dict:
        """Root messages of a channel, newest first."""
        channel = p.get("channel", "")
        if channel in self.channels_bot_cannot_post:
            return {"error": "not_in_channel"}
        roots = [m for m in self._messages.get(channel, []) if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("reply_broadcast")]
        limit = int(p.get("limit") or 100)
        return {"messages": [self._as_listed(m, p) for m in reversed(roots)][:limit], "has_more": False}

    @staticmethod
    def _as_listed(message: dict, p: dict) -> dict:
        listed = copy.deepcopy(message)
        if not _truthy(p.get("include_all_metadata")):
            listed.pop("metadata", None)
        return listed

    def _api_conversations_info(self, p: dict) -> dict:
        cid = p.get("channel") or ""
        if not cid or cid in self.unknown_channels:
            return {"error": "channel_not_found"}
        if cid.startswith("D"):
            if cid not in self._dms.values():
                return {"error": "channel_not_found"}
            user = next(u for u, d in self._dms.items() if d == cid)
            return {"channel": {"id": cid, "is_im": True, "user": user, "is_org_shared": False}}
        return {"channel": {"id": cid, "name": cid.lower(), "is_channel": True, "is_im": False, "is_mpim": False,
                            "is_private": cid.startswith("G"), "is_archived": cid in self.archived_channels,
                            "is_member": cid not in self.channels_bot_cannot_post and cid not in self.public_channels_not_joined}}

    def _api_conversations_open(self, p: dict) -> dict:
        """A DM with one person: ``{"channel": {"id": "D…"}}`` (``no_op``/``already_open``
        when it was open already), as docs.slack.dev/reference/methods/conversations.open."""
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if len(users) != 1:
            return {"error": "not_enough_users" if not users else "fake_slack: only one-person DMs are played"}
        user = users[0]
        if "im:write" not in self.scopes:
            return {"error": "missing_scope", "needed": "im:write", "provided": ",".join(sorted(self.scopes))}
        if user[:1] not in ("U", "W"):
            return {"error": "user_not_found"}
        opened = user in self._dms
        channel = self._dms.setdefault(user, "D" + user[1:])
        return {"no_op": opened, "already_open": opened, "channel": {"id": channel}}

    def _api_conversations_join(self, p: dict) -> dict:
        """docs.slack.dev/reference/methods/conversations.join: public channels only,
        with the channels:join scope."""
        cid = p.get("channel") or ""
        if "channels:join" not in self.scopes:
            return {"error": "missing_scope", "needed": "channels:join", "provided": ",".join(sorted(self.scopes))}
        if not cid or cid in self.unknown_channels:
            return {"error": "channel_not_found"}
        if cid in self.archived_channels:
            return {"error": "is_archived"}
        if cid.startswith(("G", "D")) or cid in self.channels_bot_cannot_post:
            return {"error": "method_not_supported_for_channel_type"}
        was_in = cid not in self.public_channels_not_joined
        self.public_channels_not_joined.discard(cid)
        result: dict = {"channel": {"id": cid, "name": cid.lower(), "is_channel": True, "is_member": True, "is_private": False}}
        if was_in:
            result.update({"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}})
        return result

    def dm_channel(self, user: str) -> str | None:
        """The DM channel the bot opened with ``user``, if any."""
        with self._lock:
            return self._dms.get(user)

    def _apply_response(self, target: dict, body: dict) -> None:
        """What Slack does with a POST to a response_url (lock held)."""
        channel, original = target["channel"], self._find(target["channel"] or "", target["message_ts"] or "")
        if _truthy(body.get("delete_original")) and original:
            self._messages[channel].remove(original)
        elif _truthy(body.get("replace_original")) and original:  # a whole new message
            original.update({k: body.get(k, "" if k == "text" else []) for k in ("text", "blocks", "attachments")})
        elif body.get("response_type") == "in_channel" and channel:
            self._messages.setdefault(channel, []).append({
                "type": "message", "ts": self._next_ts(), "channel": channel,
                "text": body.get("text", ""), "blocks": body.get("blocks", []),
                "user": self.bot_user_id, "bot_id": self.bot_id, "edited": None,
                "thread_ts": body.get("thread_ts"), "reply_broadcast": False})
        else:
            self._ephemerals.append({"channel": channel, "user": target["user"],
                                     "text": body.get("text", ""), "blocks": body.get("blocks", []),
                                     "thread_ts": None, "ts": self._next_ts(), "via": "response_url"})


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
              *, block_id: str | None = None) -> HttpResult:
        """Click button ``action_id`` on a message, as it currently looks in the fake.

        ``block_id`` defaults to the block holding that button in the message, else
        ``"decision"``. Clicking a button no longer shown is allowed: people click
        stale messages.
        """
        message = self.fake.message(channel_id, message_ts) or {
            "type": "message", "ts": message_ts, "text": "", "blocks": []}
        button: dict = {}
        for block in message.get("blocks") or []:
            for el in list(block.get("elements") or []) + [block.get("accessory") or {}]:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    button, block_id = el, block_id or block.get("block_id")
        payload = self._common("block_actions", user_id)
        payload.update({
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                          "is_ephemeral": False},
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


class FakeSocketMode:
    """Slack's Socket Mode endpoint on loopback: a minimal RFC 6455 WebSocket server.

    Standard library only (``socket`` + ``threading``), enough for slack-sdk's
    built-in client: the HTTP upgrade with ``Sec-WebSocket-Accept``, text frames
    both ways (client frames masked, server frames not), ping/pong (the client
    pings and treats a connection without pongs as stale), close, and Slack's
    ``{"type": "hello"}`` on connect.

    ``FakeSocketMode(fake).start()`` also makes ``fake`` answer
    ``apps.connections.open`` with a fresh one-use ``ws://127.0.0.1:PORT/link/?ticket=...``
    URL, as Slack does. :meth:`request` delivers an envelope (``slash_commands``,
    ``interactive``, ``events_api``) to the newest connection and waits for the ack.
    """

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, fake: FakeSlack | None = None, *, app_id: str = "A0AMIBOT"):
        self.fake, self.app_id = fake, app_id
        self._cond = threading.Condition()
        self._listener: Any = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[Any] = []  # open sockets, oldest first
        self._send_locks: dict[Any, threading.Lock] = {}
        self._tickets: set[str] = set()
        self._received: list[dict] = []  # text messages from the client, parsed
        self.connections = 0  # completed handshakes
        self.pings = 0  # pings answered
        self.rejected: list[str] = []  # handshakes refused, and why
        if fake is not None:
            fake.socket_mode = self  # type: ignore[attr-defined]  # read by _api_apps_connections_open

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeSocketMode:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() polls, so stop() needs no wake-up trick
        self._spawn(self._accept_loop, "fake-socket-mode")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection (close frame 1001 first) and the listener; join the threads."""
        self._stopping.set()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            self._close(conn, 1001, "going away")
        for thread in list(self._threads):
            thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._listener is not None, "FakeSocketMode.start() first"
        return self._listener.getsockname()[1]

    def new_url(self) -> str:
        """A WebSocket URL with a fresh ticket, good for one connection (apps.connections.open)."""
        ticket = secrets.token_hex(8)
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what happened -------------------------------------------------------------
    @property
    def received(self) -> list[dict]:
        """Every text message the client sent (acks), parsed, in order."""
        with self._cond:
            return copy.deepcopy(self._received)

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._conns)

    def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` handshakes have completed and one connection is open."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections >= count and self._conns, timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout} s "
                                     f"(handshakes {self.connections}, rejected {self.rejected})")

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> dict:
        """The client's ack for ``envelope_id``: ``{"envelope_id": ..., "payload"?: {...}}``."""
        def ack() -> dict | None:
            return next((m for m in self._received if m.get("envelope_id") == envelope_id), None)

        with self._cond:
            if not self._cond.wait_for(ack, timeout):
                raise AssertionError(f"no ack for envelope {envelope_id} within {timeout} s; "
                                     f"received {self._received}")
            return copy.deepcopy(ack())  # type: ignore[arg-type]

    # -- what Slack sends ----------------------------------------------------------
    def send(self, message: dict) -> None:
        """One text frame to the newest open connection (as Slack, to one connection)."""
        with self._cond:
            if not self._conns:
                raise AssertionError("no open Socket Mode connection")
            conn = self._conns[-1]
        self._send_frame(conn, 0x1, json.dumps(message).encode())

    def deliver(self, kind: str, payload: dict, *, accepts_response_payload: bool = False,
                retry_attempt: int | None = None, retry_reason: str | None = None) -> str:
        """Send an envelope as Slack does; return its ``envelope_id``."""
        envelope_id = str(uuid.uuid4())
        envelope: dict = {"envelope_id": envelope_id, "payload": payload, "type": kind,
                          "accepts_response_payload": accepts_response_payload}
        if kind == "events_api":
            envelope.update({"retry_attempt": retry_attempt or 0, "retry_reason": retry_reason or ""})
        self.send(envelope)
        return envelope_id

    def request(self, kind: str, payload: dict, *, accepts_response_payload: bool = False,
                timeout: float = 3.0, **retry: Any) -> dict:
        """Deliver an envelope and wait for its ack (Slack's 3 s)."""
        envelope_id = self.deliver(kind, payload, accepts_response_payload=accepts_response_payload, **retry)
        return self.wait_for_ack(envelope_id, timeout)

    # -- the WebSocket protocol ------------------------------------------------------
    def _spawn(self, target: Callable, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._spawn(self._serve, "fake-socket-mode-conn", conn)

    def _serve(self, conn: Any) -> None:
        rfile = conn.makefile("rb")
        try:
            if not self._handshake(conn, rfile):
                return
            self._send_frame(conn, 0x1, json.dumps({
                "type": "hello", "num_connections": len(self._conns),
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id}}).encode())
            message = b""
            while not self._stopping.is_set():
                frame = self._read_frame(rfile)
                if frame is None:  # EOF: the client closed its socket
                    return
                fin, opcode, data = frame
                if opcode == 0x9:  # ping -> pong with the same payload
                    with self._cond:
                        self.pings += 1
                    self._send_frame(conn, 0xA, data)
                elif opcode == 0x8:  # close -> echo the code, then close
                    self._close(conn, int.from_bytes(data[:2], "big") if len(data) >= 2 else 1000, "")
                    return
                elif opcode in (0x0, 0x1, 0x2):
                    message += data
                    if fin:
                        self._record(message)
                        message = b""
        except (OSError, ValueError):
            pass  # socket closed under us (stop(), or the client went away)
        finally:
            rfile.close()
            self._forget(conn)

    def _handshake(self, conn: Any, rfile: Any) -> bool:
        request_line = rfile.readline().decode("latin-1").strip()
        headers: dict[str, str] = {}
        while (line := rfile.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = request_line.split(" ")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(parts[1] if len(parts) > 1 else "").query)
        ticket = (query.get("ticket") or [""])[0]
        with self._cond:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        key = headers.get("sec-websocket-key", "")
        problem = ("not a GET" if parts[0] != "GET" else
                   "not a websocket upgrade" if headers.get("upgrade", "").lower() != "websocket" else
                   "no Sec-WebSocket-Key" if not key else
                   "Sec-WebSocket-Version is not 13" if headers.get("sec-websocket-version") != "13" else
                   f"unknown or used ticket {ticket!r}" if not known else None)
        if problem:
            with self._cond:
                self.rejected.append(problem)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        with self._cond:
            self._conns.append(conn)
            self._send_locks[conn] = threading.Lock()
            self.connections += 1
            self._cond.notify_all()
        return True

    @staticmethod
    def _read_frame(rfile: Any) -> tuple[bool, int, bytes] | None:
        def exactly(n: int) -> bytes:
            data = rfile.read(n) if n else b""
            if len(data) < n:
                raise EOFError
            return data

        try:
            b1, b2 = exactly(2)
            length = b2 & 0x7F
            if length == 126:
                length = int.from_bytes(exactly(2), "big")
            elif length == 127:
                length = int.from_bytes(exactly(8), "big")
            mask = exactly(4) if b2 & 0x80 else b""  # RFC 6455: clients always mask
            data = exactly(length)
        except EOFError:
            return None
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return bool(b1 & 0x80), b1 & 0x0F, data

    def _send_frame(self, conn: Any, opcode: int, data: bytes) -> None:
        n = len(data)
        header = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else
                                           bytes([126]) + n.to_bytes(2, "big") if n < 1 << 16 else
                                           bytes([127]) + n.to_bytes(8, "big"))
        with self._cond:
            lock = self._send_locks.get(conn)
        if lock is None:
            raise OSError("connection closed")
        with lock:
            conn.sendall(header + data)

    def _record(self, message: bytes) -> None:
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = {"_unparsed": message.decode(errors="replace")}
        with self._cond:
            self._received.append(parsed if isinstance(parsed, dict) else {"_unparsed": parsed})
            self._cond.notify_all()

    def _close(self, conn: Any, code: int, reason: str) -> None:
        try:
            self._send_frame(conn, 0x8, code.to_bytes(2, "big") + reason.encode())
        except OSError:
            pass
        try:
            conn.shutdown(socket.SHUT_RDWR)  # wakes the connection thread's read
        except OSError:
            pass
        self._forget(conn)

    def _forget(self, conn: Any) -> None:
        with self._cond:
            if conn in self._conns:
                self._conns.remove(conn)
            self._send_locks.pop(conn, None)
            self._cond.notify_all()
        conn.close()
