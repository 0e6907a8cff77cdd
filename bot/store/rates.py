"""Per-user rate limits: how many commands that call AWS each user asked for in the
current window, counted in the store so the limit holds across replicas (issue 17)."""

from __future__ import annotations

from bot.store.connection import StoreConnection


class RateStore(StoreConnection):
    """The rate counters of :class:`bot.store.Store` (mixed in)."""

    def count_use(self, user: str, window_seconds: int) -> int:
        """Count one use by ``user`` in the current fixed window of ``window_seconds``
        (on the store's clock) and return the uses in that window, this one included.
        Windows before the current one are pruned."""
        window = int(self.clock() // window_seconds) * window_seconds
        with self.transaction() as db:
            db.execute("DELETE FROM rate_counts WHERE window_start < ?", [window])
            db.execute(
                "INSERT INTO rate_counts (user_id, window_start, uses) VALUES (?, ?, 1)"
                " ON CONFLICT (user_id, window_start) DO UPDATE SET uses = rate_counts.uses + 1",
                [user, window],
            )
            return int(db.execute("SELECT uses FROM rate_counts WHERE user_id = ? AND window_start = ?", [user, window]).fetchone()[0])
