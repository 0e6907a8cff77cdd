"""The store: SQLite through sqlite-utils. It is the truth; the scheduler is only a clock.

- WAL mode and a busy timeout, one connection per thread: concurrent clicks and the
  worker never see "database is locked".
- Every state change is a compare-and-set (``UPDATE … WHERE id=? AND state=?``) in a
  ``BEGIN IMMEDIATE`` transaction with its audit row, so a double click, two approvers
  at once or a retried delivery has exactly one effect.
- Messages to Slack go through the ``outbox`` table (see ``bot.notifier``), so none is
  lost across a crash and none is sent twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import sqlite_utils

from bot.errors import RequestNotFoundError
from bot.requests import (
    STEP_PENDING,
    PlannedStep,
    Request,
    Step,
    can_transition,
)

Clock = Callable[[], float]

# Migrations run in order; PRAGMA user_version records how many have run.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        requester TEXT NOT NULL,
        channel TEXT NOT NULL,
        command_text TEXT NOT NULL,
        params TEXT NOT NULL,
        facts TEXT NOT NULL,
        approver_accounts TEXT NOT NULL,
        root_ts TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        active_until REAL,
        reminded INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX requests_state ON requests(state);
    CREATE TABLE steps (
        request_id INTEGER NOT NULL REFERENCES requests(id),
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        account_alias TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        params TEXT NOT NULL,
        description TEXT NOT NULL,
        phase TEXT NOT NULL DEFAULT 'run',
        state TEXT NOT NULL,
        result TEXT,
        error TEXT,
        started_at REAL,
        finished_at REAL,
        PRIMARY KEY (request_id, seq)
    );
    CREATE TABLE approvals (
        request_id INTEGER NOT NULL REFERENCES requests(id),
        account_alias TEXT NOT NULL,
        approver TEXT NOT NULL,
        decided_at REAL NOT NULL,
        PRIMARY KEY (request_id, account_alias)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER,
        from_state TEXT,
        to_state TEXT,
        actor TEXT NOT NULL,
        at REAL NOT NULL,
        detail TEXT
    );
    CREATE INDEX audit_request ON audit(request_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        dedupe_key TEXT UNIQUE,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        sent_at REAL,
        error TEXT
    );
    CREATE INDEX outbox_pending ON outbox(state, id);
    """,
    # A waiting step (a copy in flight) is run again at wake_at; progress is shown on
    # the root message, edited at most once a minute (progress_shown_at).
    """
    ALTER TABLE requests ADD COLUMN wake_at REAL;
    ALTER TABLE requests ADD COLUMN progress TEXT;
    ALTER TABLE requests ADD COLUMN progress_shown_at REAL;
    """,
    # Drift: differences between what amibot granted and AWS, reported once each
    # (reported_at), listed by `/ami audit --drift` while open (resolved_at NULL);
    # drift_checks records when the scheduled check last ran.
    """
    CREATE TABLE drift_findings (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        image_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        fix TEXT NOT NULL,
        request TEXT,
        found_at REAL NOT NULL,
        reported_at REAL,
        resolved_at REAL
    );
    CREATE TABLE drift_checks (
        name TEXT PRIMARY KEY,
        checked_at REAL NOT NULL
    );
    """,
]


class Store:
    """All persistence of amibot. Thread-safe: one SQLite connection per thread."""

    def __init__(self, path: str, clock: Clock = time.time):
        self.path = path
        self.clock = clock
        self._local = threading.local()
        self._migrate()

    # -- connections -------------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA foreign_keys = ON")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``), so two writers
        queue on the busy timeout instead of failing on lock upgrade."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        db = self.db
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        with self.transaction():
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def healthy(self) -> bool:
        """Whether the database answers a query."""
        try:
            self.db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    # -- requests ------------------------------------------------------------------

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
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
            request_id = cursor.lastrowid
            for seq, step in enumerate(steps, start=1):
                db["steps"].insert(
                    {
                        "request_id": request_id,
                        "seq": seq,
                        "action": step.action,
                        "account_alias": step.account_alias,
                        "account_id": step.account_id,
                        "region": step.region,
                        "params": json.dumps(step.params),
                        "description": step.description,
                        "phase": step.phase,
                        "state": STEP_PENDING,
                    }
                )
            self._audit(db, request_id, None, state, requester, "created")
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
        return request

    def steps(self, request_id: int) -> list[Step]:
        rows = self.db.execute("SELECT * FROM steps WHERE request_id = ? ORDER BY seq", [request_id]).fetchall()
        return [Step.from_row(dict(r)) for r in rows]

    def waiting_steps(self, action: str) -> list[tuple[Request, Step]]:
        """Running requests whose first unfinished step is ``action`` (batched polling)."""
        found = []
        for request in self.find(states=("running",), limit=10_000):
            step = next((s for s in request.steps if s.state == STEP_PENDING), None)
            if step is not None and step.action == action:
                found.append((request, step))
        return found

    def find(self, *, states: tuple[str, ...] | None = None, requester: str | None = None, limit: int = 50) -> list[Request]:
        """Requests, newest first, optionally filtered by state and requester."""
        sql = "SELECT id FROM requests WHERE 1=1"
        args: list[Any] = []
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        if requester:
            sql += " AND requester = ?"
            args.append(requester)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [self.get(r["id"]) for r in self.db.execute(sql, args).fetchall()]

    def transition(self, request_id: int, from_state: str, to_state: str, actor: str, detail: str = "", **fields: Any) -> bool:
        """Compare-and-set the state; True only for the caller that made the change.

        Extra ``fields`` (e.g. ``error``) are written in the same statement."""
        if not can_transition(from_state, to_state):
            raise ValueError(f"transition {from_state} → {to_state} is not allowed")
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE requests SET state = ?, updated_at = ?{', ' + sets if sets else ''} WHERE id = ? AND state = ?",
                [to_state, self.clock(), *fields.values(), request_id, from_state],
            )
            if cursor.rowcount != 1:
                return False
            self._audit(db, request_id, from_state, to_state, actor, detail)
        return True

    def set_fields(self, request_id: int, **fields: Any) -> None:
        """Update non-state columns (root_ts, reminded, …)."""
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE requests SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), self.clock(), request_id])

    def record_approvals(self, request_id: int, accounts: list[str], approver: str) -> list[str]:
        """Record ``approver`` for each account not yet approved; returns the accounts
        this call recorded (a concurrent approver may have taken some)."""
        recorded = []
        with self.transaction() as db:
            for alias in accounts:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO approvals (request_id, account_alias, approver, decided_at) VALUES (?,?,?,?)",
                    [request_id, alias, approver, self.clock()],
                )
                if cursor.rowcount == 1:
                    recorded.append(alias)
            if recorded:
                self._audit(db, request_id, None, None, approver, "approved for " + ", ".join(recorded))
        return recorded

    # -- steps -----------------------------------------------------------------------

    def mark_step(self, request_id: int, seq: int, state: str, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Record a step's outcome (with what it created, for undo and resume)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE steps SET state = ?, result = COALESCE(?, result), error = ?, finished_at = ? WHERE request_id = ? AND seq = ?",
                [state, json.dumps(result) if result is not None else None, error, self.clock(), request_id, seq],
            )

    def save_step_progress(self, request_id: int, seq: int, result: dict[str, Any]) -> None:
        """Checkpoint part of a step's result before the step is done (e.g. a copy's
        image id), so a restart continues the same copy."""
        with self.transaction() as db:
            db.execute(
                "UPDATE steps SET result = ?, started_at = COALESCE(started_at, ?) WHERE request_id = ? AND seq = ?",
                [json.dumps(result), self.clock(), request_id, seq],
            )

    # -- audit -----------------------------------------------------------------------

    def _audit(self, db: sqlite_utils.Database, request_id: int | None, from_state: str | None, to_state: str | None, actor: str, detail: str) -> None:
        db.execute(
            "INSERT INTO audit (request_id, from_state, to_state, actor, at, detail) VALUES (?,?,?,?,?,?)",
            [request_id, from_state, to_state, actor, self.clock(), detail],
        )

    def audit(self, request_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM audit WHERE request_id = ? ORDER BY id", [request_id]).fetchall()]

    # -- drift -------------------------------------------------------------------------

    def last_drift_check(self) -> float | None:
        """When the drift check last ran (None: never)."""
        row = self.db.execute("SELECT checked_at FROM drift_checks WHERE name = 'drift'").fetchone()
        return row["checked_at"] if row else None

    def set_drift_checked(self, at: float) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM drift_checks WHERE name = 'drift'")
            db.execute("INSERT INTO drift_checks (name, checked_at) VALUES ('drift', ?)", [at])

    def record_drift(self, findings: list[Any], at: float) -> None:
        """Store this check's findings: new ones open (unreported); a finding seen
        again stays as it is (reported once); open ones not seen any more are resolved.
        A resolved finding that comes back is open and unreported again."""
        with self.transaction() as db:
            seen = []
            for f in findings:
                seen.append(f.id)
                row = db.execute("SELECT resolved_at FROM drift_findings WHERE id = ?", [f.id]).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO drift_findings (id, account_id, region, image_id, kind, subject, detail, fix, request, found_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?)",
                        [f.id, f.account_id, f.region, f.image_id, f.kind, f.subject, f.detail, f.fix, f.request, at],
                    )
                elif row["resolved_at"] is not None:
                    db.execute("UPDATE drift_findings SET resolved_at = NULL, reported_at = NULL, found_at = ? WHERE id = ?", [at, f.id])
            open_ids = [r["id"] for r in db.execute("SELECT id FROM drift_findings WHERE resolved_at IS NULL").fetchall()]
            for finding_id in open_ids:
                if finding_id not in seen:
                    db.execute("UPDATE drift_findings SET resolved_at = ? WHERE id = ?", [at, finding_id])

    def drift_findings(self, *, unreported_only: bool = False) -> list[dict[str, Any]]:
        """Open drift findings, oldest first."""
        sql = "SELECT * FROM drift_findings WHERE resolved_at IS NULL"
        if unreported_only:
            sql += " AND reported_at IS NULL"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY found_at, id").fetchall()]

    def mark_drift_reported(self, finding_id: str, at: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE drift_findings SET reported_at = ? WHERE id = ?", [at, finding_id])

    # -- outbox ------------------------------------------------------------------------

    def enqueue(self, kind: str, payload: dict[str, Any], *, request_id: int | None = None, dedupe_key: str | None = None) -> int | None:
        """Add a message to the outbox; a repeated ``dedupe_key`` is ignored (returns None)."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (request_id, kind, payload, dedupe_key, created_at) VALUES (?,?,?,?,?)",
                [request_id, kind, json.dumps(payload), dedupe_key, self.clock()],
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def pending_outbox(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE state IN ('pending', 'sending') AND not_before <= ? ORDER BY id LIMIT ?",
            [self.clock(), limit],
        ).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def finish_outbox(self, message_id: int, state: str, error: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = ?, sent_at = ?, error = ?, attempts = attempts + 1 WHERE id = ?",
                [state, self.clock(), error, message_id],
            )

    def mark_outbox_sending(self, message_id: int) -> None:
        """Record that a message is being sent: a row still ``sending`` after a crash
        may or may not have reached Slack, and is checked there before resending."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state = 'sending' WHERE id = ?", [message_id])

    def retry_outbox_later(self, message_id: int, delay: float, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', attempts = attempts + 1, not_before = ?, error = ? WHERE id = ?",
                [self.clock() + delay, error, message_id],
            )

    def outbox(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows (all, or one request's), oldest first: for status and tests."""
        if request_id is None:
            rows = self.db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM outbox WHERE request_id = ? ORDER BY id", [request_id]).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]
