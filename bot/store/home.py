"""The App Home's viewers: only the tabs of people who opened it are republished.
"""

from __future__ import annotations

from bot.store.connection import StoreConnection


class HomeStore(StoreConnection):
    """The Home viewers of :class:`bot.store.Store` (mixed in)."""

    def record_home_viewer(self, user: str) -> None:
        """Remember that ``user`` opened the App Home (their tab is kept current)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
                [user, self.clock()],
            )

    def home_viewers(self, users: list[str]) -> list[str]:
        """Those of ``users`` who have opened the App Home."""
        if not users:
            return []
        rows = self.db.execute(
            f"SELECT user_id FROM home_viewers WHERE user_id IN ({','.join('?' * len(users))}) ORDER BY user_id", list(users)
        ).fetchall()
        return [r["user_id"] for r in rows]
