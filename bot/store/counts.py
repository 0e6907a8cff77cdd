"""Counts for the metrics (``bot.metrics``): requests by kind and state, the outbox's
depth, the image copies in flight.
"""

from __future__ import annotations

from bot.requests import STEP_PENDING
from bot.store.connection import StoreConnection


class CountStore(StoreConnection):
    """The counts of :class:`bot.store.Store` (mixed in)."""

    def request_counts(self) -> list[tuple[str, str, int]]:
        """(kind, state, how many) for every kind and state present."""
        rows = self.db.execute("SELECT kind, state, COUNT(*) AS n FROM requests GROUP BY kind, state").fetchall()
        return [(r["kind"], r["state"], r["n"]) for r in rows]

    def outbox_depth(self) -> int:
        """Messages not yet sent to Slack."""
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]

    def copies_in_flight(self) -> int:
        """Image copies started (a checkpointed result) and not finished, of running requests."""
        return self.db.execute(
            "SELECT COUNT(*) FROM steps JOIN requests ON requests.id = steps.request_id"
            " WHERE steps.action = 'ec2.copy_image' AND steps.state = ? AND steps.result IS NOT NULL AND requests.state = 'running'",
            [STEP_PENDING],
        ).fetchone()[0]
