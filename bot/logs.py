"""Logging: one JSON object per line (or escaped text), request context on every line
about a request, and secrets redacted whatever the level.

- ``log_context(request_id=..., step=..., account=..., region=...)`` sets the fields of
  every line logged inside it (a ``ContextVar``: per thread, and copied into the work
  the bot's worker runs for it).
- :class:`RedactionFilter` sits on the root handler: Slack tokens, the signing secret,
  AWS access key ids, secret keys and session tokens (botocore's DEBUG logger prints
  AssumeRole's answer and signed headers), Authorization headers are replaced by
  ``[redacted]`` in the message and in tracebacks; so is the token part of Slack
  ``response_url``s (a reusable posting link).
- ``AMIBOT_LOG_FORMAT=json|text`` (json is the default for ``serve``) and
  ``AMIBOT_LOG_LEVEL`` (INFO) choose the rest.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

CONTEXT_FIELDS = ("request_id", "step", "account", "region")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("amibot_log_context", default={})

REDACTED = "[redacted]"
MAX_MESSAGE_CHARS = 4000  # a line is cut here: a huge message cannot fill the disk at once

# Labels whose value is a secret, in the forms loggers print them: JSON / Python dicts
# ('Key': b'value'), headers (Key: value), query strings and env (key=value).
_LABELLED = re.compile(
    r"(?i)(authorization|x-amz-security-token|x-slack-signature|aws_secret_access_key|aws_session_token"
    r"|secretaccesskey|secret_key|sessiontoken|session_token|signing_secret|client_secret|password)"
    r"""(['"]?\s*[:=]\s*b?['"]?)([^'"\n<>,}]+)"""
)
# A Slack response_url (https://hooks.slack.com/commands/T…/123/<token>, or /actions/):
# a live posting link for 30 minutes; slack-sdk's webhook client logs it at DEBUG, Bolt
# logs the payloads that carry it. Its last part is cut, plain or URL-encoded (issue 17).
_RESPONSE_URL = re.compile(r"(?i)((?:/|%2F)(?:commands|actions)(?:/|%2F)[TE][A-Z0-9]+(?:/|%2F)\d+(?:/|%2F))[A-Za-z0-9_-]+")
_XML = re.compile(r"(?i)<(SecretAccessKey|SessionToken|AccessKeyId)>[^<]*</")
_PATTERNS = (
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),  # Slack bot/user/app-config tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b"),  # AWS access key ids
    re.compile(r"[A-Za-z0-9+/=]{100,}"),  # session tokens and other long opaque blobs
)

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(*values: str | None) -> None:
    """Values to redact wherever they appear (the bot token, the signing secret...)."""
    with _secrets_lock:
        _known_secrets.update(v for v in values if v and len(v) >= 8)


def redact(text: str) -> str:
    """``text`` with every secret this module knows of replaced by ``[redacted]``."""
    with _secrets_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _RESPONSE_URL.sub(lambda m: m.group(1) + REDACTED, text)
    text = _XML.sub(lambda m: f"<{m.group(1)}>{REDACTED}</", text)
    text = _LABELLED.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries ``fields`` (added to the current ones)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class RedactionFilter(logging.Filter):
    """Rewrites each record's message and traceback without secrets; attach it to the
    root handler so every logger (botocore, urllib3, slack_bolt) goes through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message[:MAX_MESSAGE_CHARS]), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # the redacted text is what gets printed
        for name, value in _context.get().items():
            setattr(record, f"ctx_{name}", value)
        record.amibot_context = _context.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request context
    (request_id, step, account, region) and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "amibot_context", None) or _context.get()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for name in CONTEXT_FIELDS:
            line[name] = context.get(name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message [request_id=… step=…]``, control characters escaped
    so one record is one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "amibot_context", None) or _context.get()
        text = super().format(record)
        suffix = " ".join(f"{k}={context[k]}" for k in CONTEXT_FIELDS if context.get(k) is not None)
        one_line = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
        return f"{one_line} [{suffix}]" if suffix else one_line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(*, default_format: str = "text", level: str | None = None, fmt: str | None = None,
              secrets: Iterable[str | None] = ()) -> logging.Handler:
    """Set up the root logger: one stream handler with the redaction filter and the
    chosen format (``fmt``, else $AMIBOT_LOG_FORMAT, else ``default_format``)."""
    chosen = (fmt or os.environ.get("AMIBOT_LOG_FORMAT") or default_format).lower()
    if chosen not in ("json", "text"):
        raise ValueError(f"AMIBOT_LOG_FORMAT must be json or text, not {chosen!r}")
    register_secrets(*secrets)
    handler = _StderrHandler()
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):  # only a handler of an earlier configure(): not a test's capture
        if isinstance(old, _StderrHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("AMIBOT_LOG_LEVEL") or "INFO").upper())
    return handler


def secrets_from_environment(environ: dict[str, str] | None = None) -> list[str]:
    """The secrets the process was given in its environment."""
    env = os.environ if environ is None else environ
    names = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_SECRET",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return [env[n] for n in names if env.get(n)]
