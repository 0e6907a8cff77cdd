"""Requests, their plans (steps) and their approvals.

Every state change is a compare-and-set (``UPDATE … WHERE id=? AND state=?``) in a
transaction with its event row, so a double click, two approvers at once, a retried
delivery or two replicas at once have exactly one effect.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import RequestNotFoundError
from bot.requests import STEP_PENDING, PlannedStep, Request, Step, can_transition
from bot.store.events import EventStore


def awaiting_approval(db: Any, request_id: int, now: float) -> bool:
    """Whether the request still waits for approval and has not expired (the tick that
    marks it expired may not have run yet): only then may a decision be recorded."""
    return db.execute(
        "SELECT 1 FROM requests WHERE id = ? AND state = 'pending_approval' AND expires_at > ?", [request_id, now]
    ).fetchone() is not None


class RequestStore(EventStore):
    """The requests and steps of :class:`bot.store.Store` (mixed in)."""

    def create_request(
        self,
        *,
        kind: str,
        uid: str,
        requester: str,
        channel: str,
        command_text: str,
        params: dict[str, Any],
        facts: dict[str, Any],
        approver_accounts: list[str],
        steps: list[PlannedStep],
        ttl_seconds: float,
        state: str,
    ) -> Request:
        """Persist a new request and its plan in one transaction."""
        now = self.clock()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO requests (uid, kind, state, requester, channel, command_text, params, facts,"
                " approver_accounts, created_at, updated_at, expires_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                [
                    uid,
                    kind,
                    state,
                    requester,
                    channel,
                    command_text,
                    json.dumps(params),
                    json.dumps(facts),
                    json.dumps(approver_accounts),
                    now,
                    now,
                    now + ttl_seconds,
                ],
            )
            request_id = cursor.fetchone()[0]
            db["steps"].insert_all(
                {
                    "request_id": request_id,
                    "seq": seq,
                    "action": step.action,
                    "account_alias": step.account_alias,
                    "account_id": step.account_id,
                    "region": step.region,
                    "params": json.dumps(step.params),
                    "description": step.description,
                    "phase": "run",  # a column no step varies any more; kept so older databases and backups stay readable
                    "state": STEP_PENDING,
                }
                for seq, step in enumerate(steps, start=1)
            )
            self._record_event(db, request_id, None, state, requester, "created")
        return self.get(request_id)

    def get(self, request_id: int) -> Request:
        """The request with its steps and approvals; raises RequestNotFoundError."""
        row = self.db.execute("SELECT * FROM requests WHERE id = ?", [request_id]).fetchone()
        if row is None:
            raise RequestNotFoundError(f"There is no request R-{request_id}.", fix="`/ami list all` shows the requests.")
        request = Request.from_row(dict(row))
        request.steps = self.steps(request_id)
        request.approvals = {
            r["account_alias"]: r["approver"]
            for r in self.db.execute("SELECT * FROM approvals WHERE request_id = ?", [request_id]).fetchall()
        }
        request.votes = self.votes(request_id)
        return request

    def steps(self, request_id: int) -> list[Step]:
        """A request's steps, in plan order."""
        rows = self.db.execute("SELECT * FROM steps WHERE request_id = ? ORDER BY seq", [request_id]).fetchall()
        return [Step.from_row(dict(r)) for r in rows]

    def find(self, *, states: tuple[str, ...] | None = None, requester: str | None = None, limit: int = 50,
             updated_since: float | None = None) -> list[Request]:
        """Requests, newest first, optionally filtered by state, requester and last change."""
        where, args = self._where(states, requester, updated_since)
        sql = "SELECT * FROM requests" + where + " ORDER BY id DESC LIMIT ?"
        return self._with_plans([Request.from_row(dict(r)) for r in self.db.execute(sql, [*args, limit]).fetchall()])

    def _with_plans(self, requests: list[Request]) -> list[Request]:
        """Fill in the steps, approvals and votes of many requests with one query each
        (the scheduler's tick reads every request in flight: four queries, not four per
        request)."""
        if not requests:
            return requests
        by_id = {r.id: r for r in requests}
        # In chunks: SQLite allows a few hundred placeholders per statement (999 before 3.32).
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT * FROM steps WHERE request_id IN ({marks}) ORDER BY request_id, seq", chunk).fetchall():
                by_id[row["request_id"]].steps.append(Step.from_row(dict(row)))
            for row in self.db.execute(f"SELECT request_id, account_alias, approver FROM approvals WHERE request_id IN ({marks})", chunk).fetchall():
                by_id[row["request_id"]].approvals[row["account_alias"]] = row["approver"]
            for row in self.db.execute(f"SELECT request_id, account_alias, approver FROM approval_votes WHERE request_id IN ({marks})"
                                       " ORDER BY decided_at, approver", chunk).fetchall():
                by_id[row["request_id"]].votes.setdefault(row["account_alias"], []).append(row["approver"])
        return requests

    def count(self, *, states: tuple[str, ...] | None = None, requester: str | None = None) -> int:
        """How many requests ``find`` would return without its limit."""
        sql, args = self._where(states, requester)
        return self.db.execute("SELECT COUNT(*) FROM requests" + sql, args).fetchone()[0]

    def history_ids(self, *, before: int | None = None, since: float | None = None, requester: str | None = None,
                    number: int | None = None, uid: str | None = None, limit: int = 200) -> list[int]:
        """Request numbers for ``/ami history`` (``bot.history``), newest first: older than
        ``before``, created at or after ``since``, asked by ``requester``, the request
        ``number`` and/or ``uid``. The finer filters (account, AMI, who may see) are the caller's."""
        sql, args = "SELECT id FROM requests WHERE 1=1", []  # type: ignore[var-annotated]
        for clause, value in (("id < ?", before), ("created_at >= ?", since), ("requester = ?", requester), ("id = ?", number), ("uid = ?", uid)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        return [r["id"] for r in self.db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()]

    @staticmethod
    def _where(states: tuple[str, ...] | None, requester: str | None, updated_since: float | None = None) -> tuple[str, list[Any]]:
        sql = " WHERE 1=1"
        args: list[Any] = []
        if updated_since is not None:
            sql += " AND updated_at >= ?"
            args.append(updated_since)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        if requester:
            sql += " AND requester = ?"
            args.append(requester)
        return sql, args

    def transition(self, request_id: int, from_state: str, to_state: str, actor: str, detail: str = "", *,
                   unexpired: bool = False, **fields: Any) -> bool:
        """Compare-and-set the state; True only for the caller that made the change.

        With ``unexpired``, the change happens only before the request's approval
        expiry (an approval must not land after it, even if the expiry tick is late).
        Extra ``fields`` (e.g. ``error``) are written in the same statement."""
        if not can_transition(from_state, to_state):
            raise ValueError(f"transition {from_state} → {to_state} is not allowed")
        sets = ", ".join(f"{name} = ?" for name in fields)
        now = self.clock()
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE requests SET state = ?, updated_at = ?{', ' + sets if sets else ''} WHERE id = ? AND state = ?"
                + (" AND expires_at > ?" if unexpired else ""),
                [to_state, now, *fields.values(), request_id, from_state, *([now] if unexpired else [])],
            )
            if cursor.rowcount != 1:
                return False
            self._record_event(db, request_id, from_state, to_state, actor, detail)
        return True

    def set_fields(self, request_id: int, **fields: Any) -> None:
        """Update non-state columns (root_ts, reminded, …)."""
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE requests SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), self.clock(), request_id])

    def set_params(self, request_id: int, params: dict[str, Any]) -> None:
        """Replace a request's parameters (e.g. where its root message was re-routed from)."""
        self.set_fields(request_id, params=json.dumps(params))

    def record_approvals(self, request_id: int, accounts: list[str], approver: str) -> list[str]:
        """Record ``approver`` for each account not yet approved; returns the accounts
        this call recorded (a concurrent approver may have taken some)."""
        recorded: list[str] = []
        now = self.clock()
        with self.transaction() as db:
            # Only while the request waits for approval and has not expired (the tick
            # that marks it expired may not have run yet).
            if not awaiting_approval(db, request_id, now):
                return recorded
            for alias in accounts:
                cursor = db.execute(
                    "INSERT INTO approvals (request_id, account_alias, approver, decided_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                    [request_id, alias, approver, now],
                )
                if cursor.rowcount == 1:
                    recorded.append(alias)
            if recorded:
                self._record_event(db, request_id, None, None, approver, "approved for " + ", ".join(recorded))
        return recorded

    def mark_step(self, request_id: int, seq: int, state: str, *, result: dict[str, Any] | None = None, error: str | None = None,
                  by: str | None = None) -> None:
        """Record a step's outcome (with what it created, for undo and resume) and
        which process (lease holder) recorded it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE steps SET state = ?, result = COALESCE(?, result), error = ?, finished_at = ?, done_by = COALESCE(?, done_by)"
                " WHERE request_id = ? AND seq = ?",
                [state, json.dumps(result) if result is not None else None, error, self.clock(), by, request_id, seq],
            )

    def save_step_progress(self, request_id: int, seq: int, result: dict[str, Any]) -> None:
        """Checkpoint part of a step's result before the step is done (e.g. a copy's
        image id), so a restart continues the same copy."""
        with self.transaction() as db:
            db.execute(
                "UPDATE steps SET result = ?, started_at = COALESCE(started_at, ?) WHERE request_id = ? AND seq = ?",
                [json.dumps(result), self.clock(), request_id, seq],
            )
