"""The fake Slack Web API server: :class:`FakeSlack` serves HTTP on loopback, dispatches
``/api/<method>`` to the ``_api_*`` methods of its parts, answers scripted errors and rate
limits, serves ``response_url``\\ s, and records every call."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from offline.slack.conversations import ConversationsApi
from offline.slack.files import UPLOAD_PATH, FilesApi
from offline.slack.messages import MessagesApi
from offline.slack.people import PeopleApi
from offline.slack.views import ViewsApi

JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata"})


@dataclass
class SlackCall:
    """One request the fake received: a Web API call, or a POST to a response_url."""

    method: str  # "chat.postMessage", or the path "/commands/T0SANDBOX/3/…" for a response_url
    params: dict  # query, form and JSON fields merged; JSON-encoded fields decoded
    at: float  # time.time() on arrival
    token: str | None = None  # from the Authorization header or the token param
    status: int = 200  # HTTP status answered (429 for a scripted rate limit)
    response: dict = field(default_factory=dict)  # the JSON body answered


class FakeSlack(MessagesApi, ConversationsApi, ViewsApi, PeopleApi, FilesApi):
    """A local Slack Web API that records every call.

    ``start()`` binds 127.0.0.1 on a free port in a daemon thread; ``api_url`` is the
    base URL for ``slack_sdk.WebClient``. All public accessors return snapshots and
    are safe to call from any thread while the bot is talking to the fake.
    """

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
        # Shaped as Slack's (hooks.slack.com/commands/<team>/<id>/<token>): its last
        # part is the secret that makes it a posting link (redacted in logs, bot.logs).
        path = f"/commands/{self.team_id}/{next(self._seq)}/{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"
        with self._lock:
            self._response_urls[path] = {"channel": channel, "message_ts": message_ts, "user": user}
        return self.base_url + path

    # -- HTTP --------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(req.path)
        params: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        if url.path.startswith(UPLOAD_PATH):  # files_upload_v2's second step: the bytes, not a Web API call
            with self._lock:
                status = self._upload(url.path, raw)
                self._calls.append(SlackCall("upload", {"path": url.path, "bytes": len(raw)}, time.time(), None, status, {}))
            data = b"OK - " + str(len(raw)).encode() if status == 200 else b"not found"
            req.send_response(status)
            req.send_header("Content-Type", "text/plain")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
            return
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
        if self.enforce_limits and (retry_after := self.limits.refuse(method, p.get("channel"), p.get("thread_ts") or None)) is not None:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        result = handler(p)
        result = {"ok": True, **result} if "error" not in result else {"ok": False, **result}
        # Slack reports a token's scopes on every Web API answer.
        return 200, result, {"x-oauth-scopes": ",".join(sorted(self.scopes))}

    def _api_auth_test(self, p: dict) -> dict:
        return {"url": "https://sandbox.slack.com/", "team": "Sandbox", "user": self.bot_name,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "app_id": self.app_id, "is_enterprise_install": False,
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {})}

    def _api_apps_connections_open(self, p: dict) -> dict:
        """Socket Mode: a one-use WebSocket URL on the attached :class:`FakeSocketMode`."""
        server = getattr(self, "socket_mode", None)  # set by FakeSocketMode(fake)
        if server is None:
            return {"error": "fake_slack: no FakeSocketMode attached to this FakeSlack"}
        return {"url": server.new_url()}
