"""The request log, exported by ``amibot audit``: every request, decision, state change
and step (the AWS changes) with its actor and time, as JSON lines or CSV. Read-only.

One event per line, oldest first, each with the same columns:
``at`` (ISO 8601, UTC), ``request`` (``R-17``), ``request_uid``, ``event``
(``requested``, ``approved``, ``state``, ``step``), ``actor`` (a Slack user id, or
``amibot`` for the bot's own steps and ticks), ``account``, ``region``, ``action``,
``state``, ``detail`` (text), ``data`` (JSON: the step's result, e.g. the grant
ids and images an AWS change made) and ``actor_name`` (the person's Slack name, when the
exporter can ask Slack: ``/ami history csv`` does, the command line leaves it empty).
A request's ``response_url`` is never exported.

One exporter for both: ``amibot audit`` (the whole log) and ``/ami history csv`` (the
requests the asker may see). In CSV a cell that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a
leading ``'`` (OWASP, "CSV Injection"): a reviewer opening the file runs nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from bot.requests import display_id

COLUMNS = ("at", "request", "request_uid", "event", "actor", "account", "region", "action", "state", "detail", "data", "actor_name")
FORMATS = ("jsonl", "csv")

_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SinceError(ValueError):
    """``--since`` is neither an ISO date/time nor a duration."""


def parse_since(text: str, now: datetime) -> float:
    """``2026-11-01``, ``2026-11-01T12:00:00Z`` (UTC when no zone is given), or a
    duration back from ``now`` (``90m``, ``36h``, ``7d``, ``2w``); epoch seconds."""
    cleaned = text.strip()
    match = _DURATION.fullmatch(cleaned)
    if match:
        return (now - timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])).timestamp()
    try:
        when = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise SinceError(
            f"--since {text!r} is neither a date nor a duration. Use an ISO date or time "
            "(2026-11-01, 2026-11-01T12:00:00Z) or a duration back from now (90m, 36h, 7d, 2w)."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _event(at: float, request_id: int, uids: dict[int, str], event: str, actor: str, **fields: Any) -> dict[str, Any]:
    row = {column: "" for column in COLUMNS}
    row.update(at=_iso(at), request=display_id(request_id) if request_id is not None else "", request_uid=uids.get(request_id, ""), event=event, actor=actor)
    row.update({k: ("" if v is None else v) for k, v in fields.items()})
    row["_sort"] = at
    return row


# Never exported: a response_url is a live posting link into the requester's channel
# (valid for 30 minutes, five posts), not a record (issue 17, finding 7).
_NOT_EXPORTED = frozenset({"response_url", "response_urls"})


def _shareable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _NOT_EXPORTED}


def events(trail: dict[str, list[dict[str, Any]]], uids: dict[int, str] | None = None,
           names: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Flatten :meth:`bot.store.Store.request_log` into events, oldest first; ``names``
    (a Slack user id -> their name) fills ``actor_name``."""
    uids = dict(uids or {})
    uids.update({r["id"]: r["uid"] for r in trail["requests"]})
    out = [
        _event(r["created_at"], r["id"], uids, "requested", r["requester"], action=r["kind"], state=r["state"],
               detail=r["command_text"], data=json.dumps({"channel": r["channel"], "params": _shareable(json.loads(r["params"] or "{}"))}, sort_keys=True))
        for r in trail["requests"]
    ]
    out += [_event(a["decided_at"], a["request_id"], uids, "approved", a["approver"], account=a["account_alias"]) for a in trail["approvals"]]
    out += [
        _event(a["at"], a["request_id"], uids, "state", a["actor"], state=f"{a['from_state'] or ''}→{a['to_state'] or ''}", detail=a["detail"])
        for a in trail["events"]
    ]
    out += [
        _event(s["finished_at"] or s["started_at"], s["request_id"], uids, "step", "amibot", account=s["account_id"], region=s["region"],
               action=s["action"], state=s["state"], detail=s["error"] or s["description"], data=s["result"] or "")
        for s in trail["steps"]
    ]
    out.sort(key=lambda e: e["_sort"])
    for event in out:
        del event["_sort"]
        if names is not None and re.fullmatch(r"[UW][A-Z0-9]+", event["actor"]):
            event["actor_name"] = names(event["actor"])
    return out


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'``."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def render(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    """The events as JSON lines or CSV (with a header row)."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: neutral(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()
