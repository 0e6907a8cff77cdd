"""SQLite under the store, through sqlite-utils: WAL, a busy timeout, one connection
per thread; write transactions take the write lock at once (``BEGIN IMMEDIATE``), so
two writers queue on the busy timeout instead of failing on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import sqlite_utils

from bot.store.schema import split_statements

SQLITE = "sqlite"
DEFAULT_SQLITE_PATH = "amibot.db"
# Seconds a SQLite connection waits for another process's lock before failing.
BUSY_TIMEOUT = 30.0


class SqliteBackend:
    """SQLite through sqlite-utils: WAL, a busy timeout, one connection per thread."""

    kind = SQLITE
    # Waits between two tries of the WAL switch (see ``prepare``); a test replaces it
    # to release the lock it holds instead of sleeping.
    pause = staticmethod(time.sleep)
    # Several processes of one host share a SQLite file (``amibot serve --workers N``:
    # the HTTP front and its workers): WAL lets readers run beside the one writer, the
    # busy timeout queues writers, and leases decide who does what. A starting
    # process frees only the leases of processes that are not running
    # (``bot.leases.Leases.take_over_dead``).
    shared = True

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        # The HTTP front waits for the write lock in short steps of its own instead of
        # SQLite's busy handler, which sleeps up to 100 ms between tries (and another
        # process may take the lock again meanwhile): see ``prefer_quick_locks``.
        self.quick_locks = False

    def describe(self) -> str:
        """The database as logs and /healthz name it."""
        return f"sqlite:{self.path}"

    def connection(self) -> sqlite_utils.Database:
        """This thread's connection (opened, and the file created 0600, on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            _create_private(self.path)  # on first use, not when merely named (migrate-store checks existence)
            # The busy timeout is set by connect, before the first statement.
            conn = sqlite3.connect(self.path, timeout=0 if self.quick_locks else BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            db = _QuickLockDatabase(conn) if self.quick_locks else sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``), so two writers
        queue on the busy timeout instead of failing on lock upgrade."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prepare(self) -> None:
        """Switch the database to WAL (once per file: the mode is persistent), waiting
        for other starting processes instead of failing.

        The switch reads the file header under a shared lock, then upgrades to a write
        lock to rewrite it. While another connection holds the write lock (a second
        process switching the same new file, or changing its schema), SQLite refuses
        that upgrade at once with "database is locked" — without the busy timeout,
        since two readers waiting to upgrade would wait for each other for ever. The refused statement
        has let its shared lock go, so trying again (the header may already say WAL)
        is safe; it is retried for as long as the busy timeout would have waited."""
        db = self.connection()
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = 0.001
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            self.pause(delay)
            delay = min(delay * 2, 0.1)
        db.execute("PRAGMA synchronous = NORMAL")

    def prefer_quick_locks(self) -> None:
        """From now on, this process's new connections wait for a busy database in
        steps of a millisecond or two (the front's acks), not SQLite's backoff."""
        self.quick_locks = True
        self.close()  # this thread's connection is opened again, the quick way

    def lock_schema(self, db: Any) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already excludes every other writer."""

    def schema_version(self, db: Any) -> int:
        """How many schema changes have run (``PRAGMA user_version``)."""
        return db.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, db: Any, version: int) -> None:
        """Record how many schema changes have run."""
        db.execute(f"PRAGMA user_version = {int(version)}")

    def statements(self, script: str) -> list[str]:
        """A schema change's statements, as SQLite reads them."""
        return split_statements(script)

    def tables(self, db: sqlite_utils.Database) -> list[str]:
        """The store's tables, in the order they were created (parents first)."""
        return [name for name in db.table_names() if not name.startswith("sqlite_")]

    def columns(self, db: sqlite_utils.Database, table: str) -> list[str]:
        """A table's column names, in order."""
        return [column.name for column in db[table].columns]

    def reset_sequence(self, db: Any, table: str) -> None:
        """Nothing to do: AUTOINCREMENT continues after the largest id present."""

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


class _QuickLockDatabase(sqlite_utils.Database):
    """A connection without SQLite's busy handler: a statement refused because another
    process holds the lock is tried again after 0.5–2 ms, for up to ``BUSY_TIMEOUT``.
    Nothing of a refused statement has run, so trying it again is safe."""

    def execute(self, sql: str, parameters: Any = None) -> sqlite3.Cursor:  # noqa: D102 (sqlite_utils' own)
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = 0.0005
        while True:
            try:
                return super().execute(sql, parameters) if parameters is not None else super().execute(sql)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def tighten_private(path: str) -> list[str]:
    """An existing database file (and its -wal/-shm) readable by others is made 0600
    (issue 17): the umask of an earlier run, or a copy, may have left it 0644. Returns
    one line per file changed, for the log."""
    changed = []
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(name, follow_symlinks=False).st_mode & 0o777
        except OSError:
            continue
        if mode & 0o077:
            os.chmod(name, 0o600, follow_symlinks=False)
            changed.append(f"{name} was {mode:04o}, now 0600")
    return changed


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600) if it does not exist:
    it holds who asked for what and the grant ids. SQLite gives its -wal and -shm files
    the database file's permissions."""
    if path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask
