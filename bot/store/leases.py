"""Leases in the store: which process does a piece of work, until when.

A lease is a row ``(name, holder, expires_at)``. Claiming is one conditional upsert
(``INSERT … ON CONFLICT (name) DO UPDATE … WHERE the holder is the same or the lease
expired``), which both databases run atomically: of two processes claiming at once,
one gets the row back and the other nothing. A process that dies stops renewing, and
its leases are free once they expire. ``bot.leases`` is the process's side (holder id,
renewal while work runs, release).

Expiry is measured on one clock for every replica: the database's (``lease_now``), so
a replica whose own clock runs ahead cannot take a live lease. A test's clock,
injected at the store, drives it instead.
"""

from __future__ import annotations

from bot.store.connection import StoreConnection
from bot.store.postgres_backend import POSTGRESQL

# The database's own time, in epoch seconds.
_NOW_SQL = {
    POSTGRESQL: "SELECT EXTRACT(EPOCH FROM clock_timestamp())",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


class LeaseStore(StoreConnection):
    """The lease methods of :class:`bot.store.Store` (mixed in)."""

    def lease_now(self) -> float:
        """Now, for leases: the database's clock (the store's injected clock in tests)."""
        if not self.database_time:
            return self.clock()
        return float(self.db.execute(_NOW_SQL.get(self.kind, _NOW_SQL["sqlite"])).fetchone()[0])

    def claim_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take (or extend) the lease ``name`` for ``seconds`` if it is free, expired
        or already ``holder``'s. True when ``holder`` has it now."""
        now = self.lease_now()
        # One statement, committed on its own (both databases' connections autocommit):
        # on SQLite the write lock is taken, used and let go inside one call, without
        # waiting for this process's GIL in between (a worker busy with preflights
        # would otherwise hold up every other process's writes, the front's acks too).
        changed = self.db.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
            [name, holder, now + seconds, now],
        ).rowcount
        return changed == 1

    def renew_leases(self, names: list[str], holder: str, seconds: float) -> set[str]:
        """Extend those of ``names`` that ``holder`` still has; returns them (a lease
        another process took after it expired is not among them)."""
        if not names:
            return set()
        marks = ",".join("?" * len(names))
        with self.transaction() as db:
            rows = db.execute(
                f"UPDATE leases SET expires_at = ? WHERE holder = ? AND name IN ({marks}) RETURNING name",
                [self.lease_now() + seconds, holder, *names],
            ).fetchall()
        return {r[0] for r in rows}

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` still has it): one statement."""
        self.db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [name, holder])

    def release_leases(self, holder: str) -> int:
        """Give back every lease of ``holder`` (a clean shutdown): the next process
        takes the work at once instead of after the expiry."""
        with self.transaction() as db:
            return db.execute("DELETE FROM leases WHERE holder = ?", [holder]).rowcount

    def lease_holders(self) -> set[str]:
        """Every holder with a lease row, live or expired."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT holder FROM leases").fetchall()}

    def live_lease_expiry(self, prefix: str = "") -> dict[str, float]:
        """Unexpired leases whose name starts with ``prefix``: name → expiry."""
        rows = self.db.execute(
            "SELECT name, expires_at FROM leases WHERE expires_at > ? AND name LIKE ?",
            [self.lease_now(), prefix.replace("%", "") + "%"],
        ).fetchall()
        return {r[0]: float(r[1]) for r in rows}

    def live_leases(self, prefix: str = "") -> dict[str, str]:
        """Unexpired leases whose name starts with ``prefix``: name → holder."""
        rows = self.db.execute(
            "SELECT name, holder FROM leases WHERE expires_at > ? AND name LIKE ?",
            [self.lease_now(), prefix.replace("%", "") + "%"],
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def lease_counts(self) -> dict[str, int]:
        """How many leases are held (unexpired) and how many expired unreleased (a
        process died or stalled holding them)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(CASE WHEN expires_at > ? THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN expires_at <= ? THEN 1 ELSE 0 END), 0) FROM leases",
            [self.lease_now(), self.lease_now()],
        ).fetchone()
        return {"held": int(row[0]), "expired": int(row[1])}
