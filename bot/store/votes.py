"""Approvers' votes: under a two-owner rule (``bot.policy``) an account is approved
when enough distinct people have voted for it. One vote per person and account (a
second click by the same person counts nothing); the ``approvals`` row is written, in
the same transaction, by the vote that completes the count."""

from __future__ import annotations

from bot.store.events import EventStore
from bot.store.requests import awaiting_approval


class VoteStore(EventStore):
    """The votes of :class:`bot.store.Store` (mixed in)."""

    def votes(self, request_id: int) -> dict[str, list[str]]:
        """Account alias -> its voters so far, in order."""
        found: dict[str, list[str]] = {}
        for row in self.db.execute("SELECT account_alias, approver FROM approval_votes WHERE request_id = ? ORDER BY decided_at, approver",
                                   [request_id]).fetchall():
            found.setdefault(row["account_alias"], []).append(row["approver"])
        return found

    def record_votes(self, request_id: int, accounts: list[str], voter: str, needed: int) -> tuple[list[str], list[str]]:
        """``voter``'s vote for each account (only while the request waits and has not
        expired). Returns the accounts this vote counted for, and those it completed
        (``needed`` distinct voters reached: the approval is recorded)."""
        counted: list[str] = []
        completed: list[str] = []
        now = self.clock()
        with self.transaction() as db:
            if not awaiting_approval(db, request_id, now):
                return counted, completed
            for alias in accounts:
                cursor = db.execute(
                    "INSERT INTO approval_votes (request_id, account_alias, approver, decided_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                    [request_id, alias, voter, now],
                )
                if cursor.rowcount != 1:
                    continue  # the same person again: counts nothing
                counted.append(alias)
                total = db.execute("SELECT COUNT(*) FROM approval_votes WHERE request_id = ? AND account_alias = ?", [request_id, alias]).fetchone()[0]
                if total >= needed:
                    done = db.execute(
                        "INSERT INTO approvals (request_id, account_alias, approver, decided_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                        [request_id, alias, voter, now],
                    )
                    if done.rowcount == 1:
                        completed.append(alias)
            if counted:
                self._record_event(db, request_id, None, None, voter,
                                   "voted for " + ", ".join(counted) + (f"; approved for {', '.join(completed)}" if completed else f" ({needed} distinct approvers needed)"))
        return counted, completed
