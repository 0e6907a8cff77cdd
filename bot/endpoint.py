"""The HTTP endpoint's guards: a WSGI middleware in front of Bolt (wiring).

Everything an internet-facing endpoint must refuse is refused here, cheaply and before
Bolt sees the request:

1. a body larger than ``max_body_bytes`` → 413, decided from ``Content-Length`` before
   anything reads the body (chunked bodies are read at most one byte past the limit);
2. a missing, non-numeric or stale ``X-Slack-Request-Timestamp`` → 401, before the body
   is read; a signature that does not match ``v0:<timestamp>:<body>`` → 401;
3. a signature seen before inside Slack's five-minute window (a replay) → 401;
4. signed but malformed input (invalid UTF-8, an unknown content type, bad JSON in
   ``payload``, a payload that is not an object, or one whose shape the listeners
   cannot read: ``bot.payload_shape``) → 400;
5. a payload claiming another team, enterprise or app (``bot.slack_identity``) → 403,
   and 503 while Slack has not confirmed the bot's own;
6. anything Bolt raises → 500 without a traceback in the answer.

Nothing from a refused request is logged verbatim: one short line with the reason, the
peer and sizes, every value escaped and cut (an attacker must not forge log lines).

Slack's signing scheme: https://api.slack.com/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
import urllib.parse
from typing import Any, Callable, Iterable

from bot import payload_shape

log = logging.getLogger("amibot.endpoint")

DEFAULT_MAX_BODY_BYTES = 64 * 1024
SIGNATURE_WINDOW_SECONDS = 300  # Slack's documented five minutes, either way
SLACK_PATH = "/slack/events"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"

StartResponse = Callable[..., object]
RememberSignature = Callable[[str, int], bool]


class Refused(Exception):
    """A request the endpoint answers itself, with ``status`` and a short ``reason``."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def escaped(value: object, limit: int = 80) -> str:
    """``value`` safe for one log line: control characters escaped, cut at ``limit``."""
    text = str(value)
    cut = text[:limit]
    out = cut.encode("unicode_escape").decode("ascii")
    return out + ("…" if len(text) > limit else "")


class SlackEndpoint:
    """WSGI middleware guarding ``POST /slack/events`` in front of ``app`` (Bolt's adapter).

    ``remember_signature(signature, timestamp)`` returns False when the signature was
    seen before (the store keeps them across processes for the signature window)."""

    def __init__(self, app: Callable, signing_secret: str, *, remember_signature: RememberSignature,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, clock: Callable[[], float] = time.time,
                 observe: Callable[[str], None] | None = None, identity: Callable[[str, object], str | None] | None = None):
        self.app = app
        # (kind, parsed body) -> why it is not for this workspace/app, or None (bot.slack_identity).
        self.identity = identity
        self.secret = signing_secret.encode()
        self.remember_signature = remember_signature
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.observe = observe or (lambda outcome: None)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != SLACK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, "404 Not Found", "not found")
        try:
            body = self._checked_body(environ)
        except Refused as refused:
            self.observe(refused.status.split()[0])
            log.warning("refused request: %s %s (peer %s, content-length %s, user-agent %s)",
                        refused.status.split()[0], refused.reason, escaped(environ.get("REMOTE_ADDR", "?"), 45),
                        escaped(environ.get("CONTENT_LENGTH", "-"), 20), escaped(environ.get("HTTP_USER_AGENT", "-"), 60))
            return _answer(start_response, refused.status, refused.reason)
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            result = self.app(environ, start_response)
            return list(result)
        except Exception as error:  # Bolt failed: answer 500, log the type, not the body
            log.error("the Slack adapter failed on a signed request: %s", escaped(type(error).__name__))
            self.observe("500")
            return _answer(start_response, "500 Internal Server Error", "internal error")

    # -- the checks, cheapest first ------------------------------------------------------

    def _checked_body(self, environ: dict) -> bytes:
        if not self.secret:
            raise Refused("401 Unauthorized", "no signing secret is configured")
        length = self._content_length(environ)
        timestamp = self._timestamp(environ)
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not signature.startswith("v0=") or len(signature) != 67:
            raise Refused("401 Unauthorized", "missing or malformed signature")
        body = self._read(environ, length)
        expected = "v0=" + hmac.new(self.secret, b"v0:%d:" % timestamp + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            raise Refused("401 Unauthorized", "signature does not match")
        if not self.remember_signature(signature, timestamp):
            raise Refused("401 Unauthorized", "replayed signature")
        parsed = _check_content(environ.get("CONTENT_TYPE", ""), body)
        if parsed is not None and self.identity is not None:
            problem = self.identity(*parsed)
            if problem:
                raise Refused("403 Forbidden", f"payload's {problem}")
        return body

    def _content_length(self, environ: dict) -> int | None:
        raw = environ.get("CONTENT_LENGTH") or ""
        if not raw:
            return None  # chunked: read with a cap
        if not raw.isdigit():
            raise Refused("400 Bad Request", "Content-Length is not a number")
        length = int(raw)
        if length > self.max_body_bytes:
            raise Refused("413 Payload Too Large", f"body of {length} bytes is over the {self.max_body_bytes}-byte limit")
        return length

    def _timestamp(self, environ: dict) -> int:
        raw = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
            raise Refused("401 Unauthorized", "missing or non-numeric X-Slack-Request-Timestamp")
        timestamp = int(raw)
        if abs(self.clock() - timestamp) > SIGNATURE_WINDOW_SECONDS:
            raise Refused("401 Unauthorized", "stale X-Slack-Request-Timestamp")
        return timestamp

    def _read(self, environ: dict, length: int | None) -> bytes:
        stream = environ["wsgi.input"]
        body = stream.read(self.max_body_bytes + 1 if length is None else length)
        if len(body) > self.max_body_bytes:
            raise Refused("413 Payload Too Large", f"body over the {self.max_body_bytes}-byte limit")
        return body


def _check_content(content_type: str, body: bytes) -> tuple[str, object] | None:
    """Signed input Bolt will parse: refuse what would make it fail (400). Returns
    what the workspace check reads (``form``/``payload``/``body`` and the parsed value),
    or None for Slack's own checks (url_verification, ssl_check)."""
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("400 Bad Request", "body is not UTF-8") from None
    if media == _JSON:
        event = _json_object(text, "body")
        _shaped(payload_shape.events_problem(event), "body")
        return None if event.get("type") == "url_verification" else ("body", event)
    if media != _FORM:
        raise Refused("400 Bad Request", f"unsupported content type {escaped(media, 40)}")
    try:
        fields = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Refused("400 Bad Request", "form field is not UTF-8") from None
    if "payload" in fields:
        payload = _json_object(fields["payload"][0], "payload")
        _shaped(payload_shape.interactive_problem(payload), "payload")
        return "payload", payload
    _shaped(payload_shape.form_problem(fields), "body")
    return None if "ssl_check" in fields else ("form", fields)


def _json_object(text: str, what: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise Refused("400 Bad Request", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused("400 Bad Request", f"{what} is not a JSON object")
    return value


def _shaped(problem: str | None, what: str) -> None:
    """Refuse a signed payload whose shape the listeners cannot read (bot.payload_shape)."""
    if problem:
        raise Refused("400 Bad Request", f"{what} {problem}")


def _answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = json.dumps({"error": text}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def socket_mode_guard(identity: Callable[[str, object], str | None], observe: Callable[[str], None] | None = None) -> Callable[..., Any]:
    """A Bolt middleware giving Socket Mode envelopes the checks the HTTP endpoint
    makes after the signature (the WebSocket itself is the proof it is Slack): the
    payload's shape (``bot.payload_shape``) and its team, enterprise and app
    (``identity``). A refused envelope reaches no listener and is not acknowledged,
    as an HTTP 400/403 is not. HTTP requests pass: the endpoint checked them."""
    from slack_bolt.response import BoltResponse

    def guard(req: Any, resp: Any, next: Callable[[], Any]) -> Any:  # noqa: A002 (Bolt's parameter name)
        if getattr(req, "mode", "http") != "socket_mode":
            return next()
        try:
            parsed = _socket_mode_content(req.body)
            problem = identity(*parsed) if parsed is not None else None
            if problem:
                raise Refused("403 Forbidden", f"payload's {problem}")
        except Refused as refused:
            code = refused.status.split()[0]
            log.warning("refused a Socket Mode envelope: %s %s", code, refused.reason)
            if observe is not None:
                observe(code)
            return BoltResponse(status=int(code), body=refused.reason)
        return next()

    return guard


def _socket_mode_content(body: Any) -> tuple[str, object] | None:
    """What ``_check_content`` says of an HTTP body, for a Socket Mode payload (already
    parsed by slack-sdk: a slash command's fields are strings, not lists)."""
    if not isinstance(body, dict):
        raise Refused("400 Bad Request", "payload is not a JSON object")
    if "command" in body or "ssl_check" in body:
        fields = {key: value if isinstance(value, list) else [value] for key, value in body.items()}
        if not all(isinstance(v, str) for values in fields.values() for v in values):
            raise Refused("400 Bad Request", "body has a slash-command field that is not a string")
        _shaped(payload_shape.form_problem(fields), "body")
        return "form", fields
    if body.get("type") in ("event_callback", "url_verification"):
        _shaped(payload_shape.events_problem(body), "body")
        return "body", body
    _shaped(payload_shape.interactive_problem(body), "payload")
    return "payload", body
