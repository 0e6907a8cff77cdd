"""The HTTP front's own database on SQLite, its *inbox* (issue 20): what the front
writes on the ack path — jobs, rate counts, replay signatures — goes to a file of
its own beside the store, ``<db>-front``, which no worker writes.

SQLite has one write lock per file. The workers' transactions (outbox, steps, a new
request) hold the store's for a while, in niced processes; a front writing the same
file waited for it on the ack path (100–370 ms). The front alone writes its inbox, in
single statements committed before the ack (WAL, as the store: a job acked survives
the front's crash). Workers read it through a read-only connection
(:class:`InboxReader`: a write is refused by SQLite) and record claims and done
marks in the store (``job_marks``); the front forgets the jobs marked done, off the
ack path (``bot.jobs.InboxPruner``). The inbox is made by the same schema changes as
the store (``SCHEMA_CHANGES``; it uses three of its tables). PostgreSQL has no single
write lock: there the front writes the one database (no inbox).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any
from urllib.parse import quote

from bot.store.connection import Clock, StoreConnection
from bot.store.jobs import JobStore
from bot.store.rates import RateStore
from bot.store.replays import ReplayStore
from bot.store.sqlite_backend import BUSY_TIMEOUT

INBOX_SUFFIX = "-front"


def inbox_path(store: Any) -> str | None:
    """Where the front's inbox of this store is (``<db>-front``), or None where the
    front writes the store itself (PostgreSQL, an in-memory SQLite)."""
    path = getattr(store.backend, "path", None)
    if store.kind != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path + INBOX_SUFFIX


class Inbox(JobStore, RateStore, ReplayStore):
    """The front's inbox, written by the front alone. ``after_job``: the largest job id
    the store has marks for; new jobs are numbered after it (an inbox deleted by hand
    does not give a done job's id again)."""

    def __init__(self, path: str, clock: Clock = time.time, *, after_job: int = 0):
        super().__init__(path, clock)
        if after_job > self.last_job_id():
            with self.transaction() as db:
                if db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'jobs'", [after_job]).rowcount == 0:
                    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ?)", [after_job])


    def adopt_jobs(self, store: Any) -> int:
        """Move the jobs an earlier version left in ``store`` (its ``jobs`` table) here,
        where the workers look; how many. Each is recorded here before it is deleted
        there (a crash between the two repeats it: every job is safe to repeat)."""
        moved = store.waiting_jobs(limit=10 ** 6)
        for job in moved:
            self.add_job(job["kind"], job["payload"])
        store.forget_jobs(job["id"] for job in moved)
        return len(moved)


class _ReadOnlyBackend:
    """A SQLite file opened read-only (``mode=ro``), one connection per thread."""

    kind = "sqlite"
    shared = True

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (OperationalError while the file is missing)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, timeout=BUSY_TIMEOUT,
                                   isolation_level=None, check_same_thread=False)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class InboxReader(JobStore):
    """A worker's view of the front's inbox: reads only (SQLite refuses a write on this
    connection). Before the front has made the file, it holds no jobs."""

    def __init__(self, path: str, clock: Clock = time.time):  # no schema changes: they are the front's
        self.backend = _ReadOnlyBackend(path)
        self.kind, self.shared, self.path, self.clock = "sqlite", True, path, clock

    def waiting_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The inbox's jobs, oldest first; none while the front has not made it."""
        try:
            return super().waiting_jobs(limit)
        except sqlite3.OperationalError:
            self.backend.close()  # opened again next time
            return []

    def has_job(self, job_id: int) -> bool:
        """Whether the inbox still holds a job."""
        try:
            return super().has_job(job_id)
        except sqlite3.OperationalError:
            self.backend.close()
            return False

    def job_times(self) -> list[tuple[int, float]]:
        """(id, created_at) of the inbox's jobs; none while the front has not made it."""
        try:
            return super().job_times()
        except sqlite3.OperationalError:
            self.backend.close()
            return []
