"""Holdings: which request relies on which piece of AWS access, so removing it for one
request keeps it for another (``aws.actions.holdings``, through ``bot.holdings``).
"""

from __future__ import annotations

from typing import Any

from bot.store.events import EventStore


# Requests whose holdings count: in flight, in force (time-boxed), or settled
# permanent (a succeeded share keeps its access until an unshare ends it).
LIVE_HOLDER_STATES = ("approved", "running", "active", "succeeded")
# What an unshare (an approved, explicit removal) ends: shares in force, permanent
# or time-boxed (bot.verbs.unshare.plan settles them). What it cannot end: work in
# flight, e.g. a copy whose temporary share is needed until the copy is done.
SETTLED_HOLDER_STATES = ("active", "succeeded")
IN_FLIGHT_HOLDER_STATES = ("approved", "running")


class HoldingStore(EventStore):
    """The holdings of :class:`bot.store.Store` (mixed in)."""

    def hold(self, resource: str, request_id: int, created: bool) -> None:
        """Record that ``request_id`` relies on ``resource`` (created: it added it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO holdings (resource, request_id, created) VALUES (?,?,?)"
                " ON CONFLICT (resource, request_id) DO UPDATE SET created = CASE WHEN excluded.created > holdings.created THEN excluded.created ELSE holdings.created END",
                [resource, request_id, int(created)],
            )
            db.execute(
                "INSERT INTO held_resources (resource, managed) VALUES (?,?)"
                " ON CONFLICT (resource) DO UPDATE SET managed = CASE WHEN excluded.managed > held_resources.managed THEN excluded.managed ELSE held_resources.managed END",
                [resource, int(created)],
            )

    def _live_holders(self, db: Any, resource: str, states: tuple[str, ...], besides: int | None) -> list[int]:
        rows = db.execute(
            f"SELECT h.request_id FROM holdings h JOIN requests r ON r.id = h.request_id"
            f" WHERE h.resource = ? AND h.request_id != ? AND r.state IN ({','.join('?' * len(states))}) ORDER BY h.request_id",
            [resource, besides if besides is not None else -1, *states],
        ).fetchall()
        return [row[0] for row in rows]

    def release(self, resource: str, request_id: int, created: bool) -> tuple[bool, list[int]]:
        """``request_id`` lets ``resource`` go. Returns (remove, still held by):
        remove only when amibot manages it and no other live request holds it."""
        with self.transaction() as db:
            db.execute("DELETE FROM holdings WHERE resource = ? AND request_id = ?", [resource, request_id])
            row = db.execute("SELECT managed FROM held_resources WHERE resource = ?", [resource]).fetchone()
            managed = bool(row and row[0]) or created
            others = self._live_holders(db, resource, LIVE_HOLDER_STATES, request_id)
        return managed and not others, others

    def end_holding(self, resource: str, request_id: int) -> list[int]:
        """An explicit removal by ``request_id`` (an unshare): shares in force let go,
        the resource becomes amibot's to remove; returns the in-flight requests that
        still need it (the last of them removes it when it lets go)."""
        with self.transaction() as db:
            for settled in self._live_holders(db, resource, SETTLED_HOLDER_STATES, request_id):
                db.execute("DELETE FROM holdings WHERE resource = ? AND request_id = ?", [resource, settled])
                self._record_event(db, settled, None, None, "amibot", f"access {resource} ended by R-{request_id}")
            db.execute(
                "INSERT INTO held_resources (resource, managed) VALUES (?, 1) ON CONFLICT (resource) DO UPDATE SET managed = 1",
                [resource],
            )
            return self._live_holders(db, resource, IN_FLIGHT_HOLDER_STATES, request_id)

    def holders(self, resource: str) -> list[int]:
        """Every request that holds ``resource`` now, whatever its state."""
        return [r[0] for r in self.db.execute("SELECT request_id FROM holdings WHERE resource = ? ORDER BY request_id", [resource]).fetchall()]
