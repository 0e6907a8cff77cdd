"""The request log: each request's events (created, each state change, approvals,
notes such as its reason) and, for ``amibot audit``, the log of every request.
"""

from __future__ import annotations

from typing import Any

from bot.store.connection import StoreConnection

# The table keeps its first name ("audit"): renaming it would break every operator's
# query and backup reader for a word; the code calls its rows events.


class EventStore(StoreConnection):
    """The event rows of :class:`bot.store.Store` (mixed in)."""

    def _record_event(self, db: Any, request_id: int | None, from_state: str | None, to_state: str | None, actor: str, detail: str) -> None:
        """Write an event row inside the caller's transaction ``db`` (with its change)."""
        db.execute(
            "INSERT INTO audit (request_id, from_state, to_state, actor, at, detail) VALUES (?,?,?,?,?,?)",
            [request_id, from_state, to_state, actor, self.clock(), detail],
        )

    def note(self, request_id: int, actor: str, detail: str) -> None:
        """An event that changes no state (e.g. the request's reason)."""
        with self.transaction() as db:
            self._record_event(db, request_id, None, None, actor, detail)

    def events(self, request_id: int) -> list[dict[str, Any]]:
        """A request's events, oldest first."""
        return [dict(r) for r in self.db.execute("SELECT * FROM audit WHERE request_id = ? ORDER BY id", [request_id]).fetchall()]

    def request_log(self, since: float | None = None, request_ids: list[int] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Read-only, for ``amibot audit`` and ``/ami history csv`` (``bot.request_log``): the
        requests, decisions (approvals), state changes and steps at or after ``since``
        (epoch seconds), oldest first; with ``request_ids``, those requests' only."""
        start = since if since is not None else 0.0
        queries = {
            "requests": ("id", "SELECT * FROM requests WHERE created_at >= ?{only} ORDER BY created_at, id"),
            "approvals": ("request_id", "SELECT * FROM approvals WHERE decided_at >= ?{only} ORDER BY decided_at"),
            "events": ("request_id", "SELECT * FROM audit WHERE at >= ?{only} ORDER BY at, id"),
            "steps": ("request_id", "SELECT * FROM steps WHERE COALESCE(finished_at, started_at) >= ?{only} ORDER BY COALESCE(finished_at, started_at), request_id, seq"),
        }
        ids = list(request_ids) if request_ids is not None else []
        out: dict[str, list[dict[str, Any]]] = {}
        for name, (column, sql) in queries.items():
            only = f" AND {column} IN ({','.join('?' * len(ids))})" if request_ids is not None and ids else (" AND 1=0" if request_ids is not None else "")
            out[name] = [dict(r) for r in self.db.execute(sql.format(only=only), [start, *ids]).fetchall()]
        return out
