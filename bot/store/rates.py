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
        # Single statements, each committed on its own (on the ack path; see
        # ``bot.store.leases.claim_lease``): the count comes back from the upsert.
        if window != getattr(self, "_rates_pruned_for", None):  # once per window and process, not per command
            self._rates_pruned_for = window
            self.db.execute("DELETE FROM rate_counts WHERE window_start < ?", [window])
        rows = self.db.execute(
            "INSERT INTO rate_counts (user_id, window_start, uses) VALUES (?, ?, 1)"
            " ON CONFLICT (user_id, window_start) DO UPDATE SET uses = rate_counts.uses + 1 RETURNING uses",
            [user, window],
        ).fetchall()
        return int(rows[0][0])
