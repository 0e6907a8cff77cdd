"""The store's one connection (per thread) and its schema.

The SQL is written once; ``bot.store.backends`` supplies the connection per thread,
the transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``BEGIN``) and the few words
that differ. Nothing above the store knows which database runs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from bot.store.backends import backend_for
from bot.store.schema import SCHEMA_CHANGES

Clock = Callable[[], float]


class StoreConnection:
    """What every part of the store shares: the database (``target``: a file path, or
    nothing for ``amibot.db``; or a ``postgresql://…`` URL), its clock, and the schema
    brought up to date when it opens. Thread-safe: one connection per thread."""

    def __init__(self, target: str | None = None, clock: Clock = time.time, *, database_time: bool | None = None):
        self.backend = backend_for(target)
        self.kind = self.backend.kind
        self.shared = self.backend.shared  # several processes may use it (PostgreSQL)
        self.path = target
        self.clock = clock
        # Lease expiry is decided on the database's clock, one clock for every replica
        # (bot.store.leases); a test's injected clock drives it instead, unless told.
        self.database_time = (clock is time.time) if database_time is None else database_time
        self._apply_schema_changes()

    @property
    def db(self) -> Any:
        """This thread's connection (``execute(sql, params)`` with ``?`` placeholders)."""
        return self.backend.connection()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction; see ``bot.store.backends`` for how each database takes it."""
        with self.backend.transaction() as db:
            yield db

    def _apply_schema_changes(self) -> None:
        """Run the schema changes this database has not run, once, even when several
        processes open it at the same moment (the others wait for the lock)."""
        self.backend.prepare()
        with self.transaction() as db:
            self.backend.lock_schema(db)
            version = self.backend.schema_version(db)
            for number, script in enumerate(SCHEMA_CHANGES[version:], start=version + 1):
                for statement in self.backend.statements(script):
                    db.execute(statement)
                self.backend.set_schema_version(db, number)

    def schema_version(self) -> int:
        """How many schema changes this database has run."""
        return self.backend.schema_version(self.db)

    def healthy(self) -> bool:
        """Whether the database answers a query."""
        try:
            self.db.execute("SELECT 1").fetchone()
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close this thread's connection."""
        self.backend.close()
