"""The messages of a request besides its root that are edited later: the approval
copies (approval channels, owners' DMs, reminders) and the one progress reply.
"""

from __future__ import annotations

from typing import Any

from bot.store.connection import StoreConnection


class SlackMessageStore(StoreConnection):
    """The posted-message records of :class:`bot.store.Store` (mixed in)."""

    def record_message(self, request_id: int, role: str, target: str, channel: str, ts: str) -> None:
        """Remember a posted approval copy or progress reply (to edit it later)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO slack_messages (request_id, role, target, channel, ts, posted_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (request_id, role, target) DO NOTHING",
                [request_id, role, target, channel, ts, self.clock()],
            )

    def posted_messages(self, request_id: int, role: str | None = None) -> list[dict[str, Any]]:
        """The messages recorded for a request (oldest first), optionally of one role."""
        sql = "SELECT * FROM slack_messages WHERE request_id = ?"
        args: list[Any] = [request_id]
        if role is not None:
            sql += " AND role = ?"
            args.append(role)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY posted_at, target", args).fetchall()]
