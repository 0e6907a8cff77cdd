"""Jobs in the store: work the HTTP front hands to the worker processes (issue 20).

A job is a row ``(id, kind, payload, created_at, claims)``, written by the front in
the request that asked for it and deleted by the worker that did it. Which worker
does it is decided by a lease, ``job:<id>`` (``bot.store.leases``): a worker that dies
stops renewing, and another claims the job once the lease expires. ``claims`` counts
the tries, so a job that kills every worker that takes it is dropped, not retried
for ever (``bot.jobs``).
"""

from __future__ import annotations

import json
from typing import Any

from bot.store.connection import StoreConnection


class JobStore(StoreConnection):
    """The job methods of :class:`bot.store.Store` (mixed in)."""

    def add_job(self, kind: str, payload: dict[str, Any]) -> int:
        """Record a job; returns its id."""
        rows = self.db.execute("INSERT INTO jobs (kind, payload, created_at) VALUES (?,?,?) RETURNING id",  # one statement
                               [kind, json.dumps(payload), self.clock()]).fetchall()
        return int(rows[0][0])

    def waiting_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Jobs not yet done, oldest first (some may be running under a live lease)."""
        rows = self.db.execute("SELECT id, kind, payload, created_at, claims FROM jobs ORDER BY id LIMIT ?", [limit]).fetchall()
        return [{"id": r[0], "kind": r[1], "payload": json.loads(r[2]), "created_at": r[3], "claims": r[4]} for r in rows]

    def count_job_claim(self, job_id: int) -> int | None:
        """Count one more try of a job; its tries so far, or None if it is gone (done).
        Single statements, each committed on its own (see ``claim_lease``): only the
        holder of the job's lease counts."""
        if self.db.execute("UPDATE jobs SET claims = claims + 1 WHERE id = ?", [job_id]).rowcount != 1:
            return None
        row = self.db.execute("SELECT claims FROM jobs WHERE id = ?", [job_id]).fetchone()
        return None if row is None else int(row[0])

    def finish_job(self, job_id: int) -> None:
        """The job is done (or given up): forget it (one statement)."""
        self.db.execute("DELETE FROM jobs WHERE id = ?", [job_id])

    def job_counts(self) -> dict[str, Any]:
        """How many jobs wait and the creation time of the oldest (for /healthz)."""
        row = self.db.execute("SELECT COUNT(*), MIN(created_at) FROM jobs").fetchone()
        return {"waiting": int(row[0]), "oldest_created_at": row[1]}

    def request_id_for_uid(self, uid: str) -> int | None:
        """The request a preflight job stored (by the uid the job carries), if any: a
        job tried again after its worker died does not store the request twice."""
        row = self.db.execute("SELECT id FROM requests WHERE uid = ?", [uid]).fetchone()
        return None if row is None else int(row[0])
