"""Jobs in the store: work the HTTP front hands to the worker processes (issue 20).

A job is a row ``(id, kind, payload, created_at)`` in the ``jobs`` table of the
database the front writes: on SQLite the front's own file (``bot.store.inbox``),
which no worker writes, so an ack never waits for the workers' write lock; on
PostgreSQL the one database. Which worker does it is decided by a lease, ``job:<id>``
(``bot.store.leases``): a worker that dies stops renewing, and another claims the job
once the lease expires. Its tries and its end are recorded in the store the workers
write, ``job_marks`` (``claims``, ``done_at``), so a job that kills every worker
that takes it is dropped, not retried for ever (``bot.jobs``); the front forgets
the jobs marked done (``forget_jobs``).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from bot.store.connection import StoreConnection


class JobStore(StoreConnection):
    """The job methods of :class:`bot.store.Store` (mixed in). ``add_job``,
    ``waiting_jobs``, ``has_job`` and ``forget_jobs`` are asked of the database the
    front writes (the inbox); the marks of the store the workers write."""

    # -- the jobs (the front's database) ------------------------------------------------

    def add_job(self, kind: str, payload: dict[str, Any]) -> int:
        """Record a job, committed before this returns (the ack follows); its id."""
        rows = self.db.execute("INSERT INTO jobs (kind, payload, created_at) VALUES (?,?,?) RETURNING id",  # one statement
                               [kind, json.dumps(payload), self.clock()]).fetchall()
        return int(rows[0][0])

    def waiting_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Jobs recorded and not yet forgotten, oldest first (some may be running, or
        done and not yet forgotten: see the marks)."""
        rows = self.db.execute("SELECT id, kind, payload, created_at FROM jobs ORDER BY id LIMIT ?", [limit]).fetchall()
        return [{"id": r[0], "kind": r[1], "payload": json.loads(r[2]), "created_at": r[3]} for r in rows]

    def has_job(self, job_id: int) -> bool:
        """Whether a job is still recorded (not forgotten after it was done)."""
        return self.db.execute("SELECT 1 FROM jobs WHERE id = ?", [job_id]).fetchone() is not None

    def forget_jobs(self, job_ids: Iterable[int]) -> None:
        """Delete jobs (done ones): one statement."""
        ids = [int(i) for i in job_ids]
        if ids:
            self.db.execute(f"DELETE FROM jobs WHERE id IN ({','.join('?' * len(ids))})", ids)

    def job_times(self) -> list[tuple[int, float]]:
        """(id, created_at) of every job recorded, oldest first."""
        return [(int(r[0]), r[1]) for r in self.db.execute("SELECT id, created_at FROM jobs ORDER BY id").fetchall()]

    def last_job_id(self) -> int:
        """The largest job id given so far (0 for none)."""
        row = self.db.execute("SELECT MAX(id) FROM jobs").fetchone()
        return int(row[0] or 0)

    # -- the marks (the store the workers write) ----------------------------------------

    def count_job_claim(self, job_id: int) -> int | None:
        """Count one more try of a job; its tries so far, or None if it is marked done.
        One statement, committed on its own (see ``claim_lease``): only the holder of
        the job's lease counts."""
        row = self.db.execute(
            "INSERT INTO job_marks (job_id, claims) VALUES (?, 1)"
            " ON CONFLICT (job_id) DO UPDATE SET claims = job_marks.claims + 1 RETURNING claims, done_at", [job_id]).fetchone()
        return None if row[1] is not None else int(row[0])

    def finish_job(self, job_id: int) -> None:
        """Mark a job done (or given up): one statement."""
        self.db.execute("INSERT INTO job_marks (job_id, done_at) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET done_at = excluded.done_at",
                        [job_id, self.clock()])

    def done_jobs(self, job_ids: Iterable[int]) -> set[int]:
        """Which of these jobs are marked done (a read)."""
        ids = [int(i) for i in job_ids]
        if not ids:
            return set()
        rows = self.db.execute(f"SELECT job_id FROM job_marks WHERE done_at IS NOT NULL AND job_id IN ({','.join('?' * len(ids))})", ids).fetchall()
        return {int(r[0]) for r in rows}

    def forget_job_marks(self, job_ids: Iterable[int]) -> None:
        """Delete the marks of jobs already forgotten by the front (one statement)."""
        ids = [int(i) for i in job_ids]
        if ids:
            self.db.execute(f"DELETE FROM job_marks WHERE job_id IN ({','.join('?' * len(ids))})", ids)

    def last_marked_job(self) -> int:
        """The largest job id with a mark (0 for none): a new inbox starts after it."""
        row = self.db.execute("SELECT MAX(job_id) FROM job_marks").fetchone()
        return int(row[0] or 0)

    def request_id_for_uid(self, uid: str) -> int | None:
        """The request a preflight job stored (by the uid the job carries), if any: a
        job tried again after its worker died does not store the request twice."""
        row = self.db.execute("SELECT id FROM requests WHERE uid = ?", [uid]).fetchone()
        return None if row is None else int(row[0])
