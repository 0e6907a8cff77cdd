"""The outbox: messages to Slack, written in the transaction that decided them and sent
by ``bot.notifier``, so none is lost across a crash and none is sent twice.
"""

from __future__ import annotations

import json
from typing import Any

from bot.store.connection import StoreConnection


class OutboxStore(StoreConnection):
    """The outbox of :class:`bot.store.Store` (mixed in)."""

    def enqueue(self, kind: str, payload: dict[str, Any], *, request_id: int | None = None, dedupe_key: str | None = None) -> int | None:
        """Add a message to the outbox; a repeated ``dedupe_key`` is ignored (returns None)."""
        with self.transaction() as db:
            row = db.execute(
                "INSERT INTO outbox (request_id, kind, payload, dedupe_key, created_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                [request_id, kind, json.dumps(payload), dedupe_key, self.clock()],
            ).fetchone()
            return row[0] if row else None

    def pending_outbox(self, limit: int = 100) -> list[dict[str, Any]]:
        """Sendable messages (pending, or sending when a crash interrupted them), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE state IN ('pending', 'sending') AND not_before <= ? ORDER BY id LIMIT ?",
            [self.clock(), limit],
        ).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def pending_outbox_for(self, request_id: int | None, limit: int = 100, *, due_only: bool = True) -> list[dict[str, Any]]:
        """One request's sendable messages (or those of no request), oldest first;
        ``due_only=False`` adds those waiting for a later time (a held-back edit)."""
        where = "request_id IS NULL" if request_id is None else "request_id = ?"
        args = [] if request_id is None else [request_id]
        rows = self.db.execute(
            f"SELECT * FROM outbox WHERE {where} AND state IN ('pending', 'sending') AND not_before <= ? ORDER BY id LIMIT ?",
            [*args, self.clock() if due_only else 1e18, limit],
        ).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def mark_outbox_sending(self, message_id: int) -> None:
        """Record that a message is being sent: a row still ``sending`` after a crash
        may or may not have reached Slack, and is checked there before resending."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state = 'sending' WHERE id = ?", [message_id])

    def finish_outbox(self, message_id: int, state: str, error: str | None = None) -> None:
        """Record a message's final state (``sent``, ``failed``, …) and its error."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = ?, sent_at = ?, error = ?, attempts = attempts + 1 WHERE id = ?",
                [state, self.clock(), error, message_id],
            )

    def retry_outbox_later(self, message_id: int, delay: float, error: str) -> None:
        """Put a message back to be sent again after ``delay`` seconds."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', attempts = attempts + 1, not_before = ?, error = ? WHERE id = ?",
                [self.clock() + delay, error, message_id],
            )

    def defer_outbox(self, message_id: int, until: float) -> None:
        """Hold a message back until ``until`` (an edit that would come too soon after
        the last one); not an attempt, and a newer edit still supersedes it."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET not_before = ? WHERE id = ?", [until, message_id])

    def outbox(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows (all, or one request's), oldest first: for status and tests."""
        if request_id is None:
            rows = self.db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM outbox WHERE request_id = ? ORDER BY id", [request_id]).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def has_outbox(self, dedupe_key: str) -> bool:
        """Whether a message with this dedupe key was ever enqueued."""
        return self.db.execute("SELECT 1 FROM outbox WHERE dedupe_key = ?", [dedupe_key]).fetchone() is not None
