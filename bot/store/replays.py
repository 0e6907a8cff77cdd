"""Replay protection: Slack request signatures already accepted, and Events API
deliveries already handled, so a replay or a retried delivery has no second effect.
"""

from __future__ import annotations

import time

from bot.store.connection import StoreConnection


# How often old signatures are pruned (they are refused by their timestamp anyway).
PRUNE_EVERY_SECONDS = 10.0


class ReplayStore(StoreConnection):
    """The signature and delivery records of :class:`bot.store.Store` (mixed in)."""

    def remember_signature(self, signature: str, request_ts: int, keep_seconds: float = 600.0) -> bool:
        """Record a Slack request signature; False if it was recorded before (a replay).

        Signatures whose request timestamp is older than ``keep_seconds`` are pruned
        (at most every ``PRUNE_EVERY_SECONDS``): Slack's window is five minutes either
        way, so they could no longer be accepted."""
        # Two statements, each committed on its own (the connections autocommit): the
        # write lock is never held across this process's GIL, on the ack path of every
        # request (``bot.store.leases.claim_lease`` says why).
        now = time.time()
        if now >= getattr(self, "_signatures_pruned_at", 0.0) + PRUNE_EVERY_SECONDS:  # not a write per request
            self._signatures_pruned_at = now
            self.db.execute("DELETE FROM seen_signatures WHERE request_ts < ?", [int(now - keep_seconds)])
        cursor = self.db.execute(
            "INSERT INTO seen_signatures (signature, request_ts) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING",
            [signature, request_ts],
        )
        return cursor.rowcount == 1

    def signature_seen(self, signature: str) -> bool:
        """Whether a signature was recorded (a read: no write lock)."""
        return self.db.execute("SELECT 1 FROM seen_signatures WHERE signature = ?", [signature]).fetchone() is not None

    def first_delivery(self, event_id: str) -> bool:
        """Record an Events API delivery; False if this event id was handled before
        (Slack retries a delivery up to 3 times, with ``X-Slack-Retry-Num``)."""
        cursor = self.db.execute(  # one statement, committed on its own
            "INSERT INTO slack_events (event_id, received_at) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
            [event_id, self.clock()],
        )
        return cursor.rowcount == 1

    def forget_events_before(self, cutoff: float) -> None:
        """Drop delivery records older than ``cutoff`` (retries come within minutes)."""
        with self.transaction() as db:
            db.execute("DELETE FROM slack_events WHERE received_at < ?", [cutoff])
