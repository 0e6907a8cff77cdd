"""The store: SQLite (sqlite-utils) or PostgreSQL (psycopg). It is the truth; the
scheduler is only a clock.

- The SQL is written once; ``bot.store.backends`` supplies the connection per thread,
  the transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``BEGIN``) and the few words
  that differ. Nothing above the store knows which database runs.
- Every state change is a compare-and-set (``UPDATE … WHERE id=? AND state=?``) in a
  transaction with its audit row, so a double click, two approvers at once, a retried
  delivery or two replicas at once have exactly one effect.
- Messages to Slack go through the ``outbox`` table (see ``bot.notifier``), so none is
  lost across a crash and none is sent twice.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from bot.errors import RequestNotFoundError
from bot.store.backends import backend_for
from bot.store.leases import LeaseStore
from bot.requests import (
    STEP_PENDING,
    PlannedStep,
    Request,
    Step,
    can_transition,
)

Clock = Callable[[], float]

# Migrations run in order, the same texts on both databases (portable SQL: TEXT,
# INTEGER, REAL, BIGINT; PostgreSQL reads ``INTEGER PRIMARY KEY [AUTOINCREMENT]`` as an
# identity column and REAL as DOUBLE PRECISION). SQLite records how many have run in
# PRAGMA user_version, PostgreSQL in the amibot_schema table. Append; never edit.
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
    # Holdings: which request relies on which piece of AWS access (a launch
    # permission, a snapshot permission, a key-policy statement), so removing it for
    # one request keeps it for another (aws.actions.holdings). ``managed``: amibot
    # added it (or an unshare asked for its removal), so the last holder removes it.
    # A time-boxed share whose removal failed is retried: revoke_attempts counts.
    """
    CREATE TABLE holdings (
        resource TEXT NOT NULL,
        request_id INTEGER NOT NULL,
        created INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (resource, request_id)
    );
    CREATE TABLE held_resources (
        resource TEXT PRIMARY KEY,
        managed INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE requests ADD COLUMN revoke_attempts INTEGER NOT NULL DEFAULT 0;
    """,
    # Slack surfaces: the root message's permalink (chat.getPermalink, asked once);
    # Events API deliveries already handled (a retry with X-Slack-Retry-Num has no
    # second effect); who has opened the App Home (only their tabs are republished).
    """
    ALTER TABLE requests ADD COLUMN permalink TEXT;
    CREATE TABLE slack_events (
        event_id TEXT PRIMARY KEY,
        received_at REAL NOT NULL
    );
    CREATE TABLE home_viewers (
        user_id TEXT PRIMARY KEY,
        opened_at REAL NOT NULL
    );
    """,
    # Leases: which process does a piece of work (a request's steps, a poll of an
    # account-region, a stream of outbox messages, a scheduled duty), until when; and
    # which process recorded each step (with several replicas, for the audit).
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    ALTER TABLE steps ADD COLUMN done_by TEXT;
    """,
    # Every message of a request besides its root that is later edited: the approval
    # copies (approval channels, owners' DMs, reminders) and the one progress reply.
    """
    CREATE TABLE slack_messages (
        request_id INTEGER NOT NULL,
        role TEXT NOT NULL,
        target TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        posted_at REAL NOT NULL,
        PRIMARY KEY (request_id, role, target)
    );
    """,
    # Signatures of the Slack requests accepted in the last minutes: a replayed request
    # (same signature and timestamp, inside Slack's five-minute window) is refused, in
    # every process sharing the store. Pruned by request timestamp.
    """
    CREATE TABLE seen_signatures (
        signature TEXT PRIMARY KEY,
        request_ts BIGINT NOT NULL
    );
    CREATE INDEX seen_signatures_ts ON seen_signatures(request_ts);
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

# Requests whose holdings count: in flight, in force (time-boxed), or settled
# permanent (a succeeded share keeps its access until an unshare ends it).
LIVE_HOLDER_STATES = ("approved", "running", "active", "succeeded")
# What an unshare (an approved, explicit removal) ends: shares in force, permanent
# or time-boxed (bot.operations.unshare settles them). What it cannot end: work in
# flight, e.g. a copy whose temporary share is needed until the copy is done.
SETTLED_HOLDER_STATES = ("active", "succeeded")
IN_FLIGHT_HOLDER_STATES = ("approved", "running")


class Store(LeaseStore):
    """All persistence of amibot, on SQLite or PostgreSQL (``target``: a file path, or
    nothing for ``amibot.db``; or a ``postgresql://…`` URL). Thread-safe: one
    connection per thread."""

    def __init__(self, target: str | None = None, clock: Clock = time.time):
        self.backend = backend_for(target)
        self.kind = self.backend.kind
        self.shared = self.backend.shared  # several processes may use it (PostgreSQL)
        self.path = target
        self.clock = clock
        self._migrate()

    # -- connections -------------------------------------------------------------

    @property
    def db(self) -> Any:
        """This thread's connection (``execute(sql, params)`` with ``?`` placeholders)."""
        return self.backend.connection()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction; see ``bot.store.backends`` for how each database takes it."""
        with self.backend.transaction() as db:
            yield db

    def _migrate(self) -> None:
        self.backend.prepare()
        with self.transaction() as db:
            self.backend.lock_for_migration(db)
            version = self.backend.schema_version(db)
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in self.backend.statements(script):
                    db.execute(statement)
                self.backend.set_schema_version(db, number)

    def schema_version(self) -> int:
        """How many migrations this database has run."""
        return self.backend.schema_version(self.db)

    def healthy(self) -> bool:
        """Whether the database answers a query."""
        try:
            self.db.execute("SELECT 1").fetchone()
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.backend.close()

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

    def find(self, *, states: tuple[str, ...] | None = None, requester: str | None = None, limit: int = 50,
             updated_since: float | None = None) -> list[Request]:
        """Requests, newest first, optionally filtered by state, requester and last change."""
        where, args = self._where(states, requester, updated_since)
        sql = "SELECT id FROM requests" + where + " ORDER BY id DESC LIMIT ?"
        return [self.get(r["id"]) for r in self.db.execute(sql, [*args, limit]).fetchall()]

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
            self._audit(db, request_id, from_state, to_state, actor, detail)
        return True

    def set_fields(self, request_id: int, **fields: Any) -> None:
        """Update non-state columns (root_ts, reminded, …)."""
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE requests SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), self.clock(), request_id])

    def set_params(self, request_id: int, params: dict[str, Any]) -> None:
        """Replace a request's parameters (e.g. where its root message was re-routed from)."""
        self.set_fields(request_id, params=json.dumps(params))

    def note(self, request_id: int, actor: str, detail: str) -> None:
        """An audit row that changes no state (e.g. the request's reason)."""
        with self.transaction() as db:
            self._audit(db, request_id, None, None, actor, detail)

    def record_approvals(self, request_id: int, accounts: list[str], approver: str) -> list[str]:
        """Record ``approver`` for each account not yet approved; returns the accounts
        this call recorded (a concurrent approver may have taken some)."""
        recorded: list[str] = []
        now = self.clock()
        with self.transaction() as db:
            # Only while the request waits for approval and has not expired (the tick
            # that marks it expired may not have run yet).
            open_ = db.execute(
                "SELECT 1 FROM requests WHERE id = ? AND state = 'pending_approval' AND expires_at > ?", [request_id, now]
            ).fetchone()
            if open_ is None:
                return recorded
            for alias in accounts:
                cursor = db.execute(
                    "INSERT INTO approvals (request_id, account_alias, approver, decided_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                    [request_id, alias, approver, now],
                )
                if cursor.rowcount == 1:
                    recorded.append(alias)
            if recorded:
                self._audit(db, request_id, None, None, approver, "approved for " + ", ".join(recorded))
        return recorded

    # -- steps -----------------------------------------------------------------------

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

    # -- audit -----------------------------------------------------------------------

    def _audit(self, db: Any, request_id: int | None, from_state: str | None, to_state: str | None, actor: str, detail: str) -> None:
        db.execute(
            "INSERT INTO audit (request_id, from_state, to_state, actor, at, detail) VALUES (?,?,?,?,?,?)",
            [request_id, from_state, to_state, actor, self.clock(), detail],
        )

    def audit(self, request_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM audit WHERE request_id = ? ORDER BY id", [request_id]).fetchall()]

    # -- replay protection ---------------------------------------------------------

    def remember_signature(self, signature: str, request_ts: int, keep_seconds: float = 600.0) -> bool:
        """Record a Slack request signature; False if it was recorded before (a replay).

        Signatures whose request timestamp is older than ``keep_seconds`` are pruned:
        Slack's window is five minutes either way, so they could no longer be accepted."""
        with self.transaction() as db:
            db.execute("DELETE FROM seen_signatures WHERE request_ts < ?", [int(time.time() - keep_seconds)])
            cursor = db.execute(
                "INSERT INTO seen_signatures (signature, request_ts) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING",
                [signature, request_ts],
            )
            return cursor.rowcount == 1

    # -- counts for metrics -------------------------------------------------------------

    def request_counts(self) -> list[tuple[str, str, int]]:
        """(kind, state, how many) for every kind and state present."""
        rows = self.db.execute("SELECT kind, state, COUNT(*) AS n FROM requests GROUP BY kind, state").fetchall()
        return [(r["kind"], r["state"], r["n"]) for r in rows]

    def outbox_depth(self) -> int:
        """Messages not yet sent to Slack."""
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]

    def copies_in_flight(self) -> int:
        """Image copies started (a checkpointed result) and not finished, of running requests."""
        return self.db.execute(
            "SELECT COUNT(*) FROM steps JOIN requests ON requests.id = steps.request_id"
            " WHERE steps.action = 'ec2.copy_image' AND steps.state = ? AND steps.result IS NOT NULL AND requests.state = 'running'",
            [STEP_PENDING],
        ).fetchone()[0]

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

    def audit_trail(self, since: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """Read-only, for ``amibot audit``: the requests, decisions (approvals), state
        changes and steps at or after ``since`` (epoch seconds), oldest first."""
        start = since if since is not None else 0.0
        queries = {
            "requests": "SELECT * FROM requests WHERE created_at >= ? ORDER BY created_at, id",
            "approvals": "SELECT * FROM approvals WHERE decided_at >= ? ORDER BY decided_at",
            "audit": "SELECT * FROM audit WHERE at >= ? ORDER BY at, id",
            "steps": "SELECT * FROM steps WHERE COALESCE(finished_at, started_at) >= ? ORDER BY COALESCE(finished_at, started_at), request_id, seq",
        }
        return {name: [dict(r) for r in self.db.execute(sql, [start]).fetchall()] for name, sql in queries.items()}

    # -- outbox ------------------------------------------------------------------------

    def enqueue(self, kind: str, payload: dict[str, Any], *, request_id: int | None = None, dedupe_key: str | None = None) -> int | None:
        """Add a message to the outbox; a repeated ``dedupe_key`` is ignored (returns None)."""
        with self.transaction() as db:
            row = db.execute(
                "INSERT INTO outbox (request_id, kind, payload, dedupe_key, created_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                [request_id, kind, json.dumps(payload), dedupe_key, self.clock()],
            ).fetchone()
            return row[0] if row else None

    def pending_outbox(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE state IN ('pending', 'sending') AND not_before <= ? ORDER BY id LIMIT ?",
            [self.clock(), limit],
        ).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def pending_outbox_for(self, request_id: int | None, limit: int = 100) -> list[dict[str, Any]]:
        """One request's sendable messages (or those of no request), oldest first."""
        where = "request_id IS NULL" if request_id is None else "request_id = ?"
        args = [] if request_id is None else [request_id]
        rows = self.db.execute(
            f"SELECT * FROM outbox WHERE {where} AND state IN ('pending', 'sending') AND not_before <= ? ORDER BY id LIMIT ?",
            [*args, self.clock(), limit],
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

    # -- Slack surfaces ------------------------------------------------------------------

    def first_delivery(self, event_id: str) -> bool:
        """Record an Events API delivery; False if this event id was handled before
        (Slack retries a delivery up to 3 times, with ``X-Slack-Retry-Num``)."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO slack_events (event_id, received_at) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
                [event_id, self.clock()],
            )
            return cursor.rowcount == 1

    def forget_events_before(self, cutoff: float) -> None:
        """Drop delivery records older than ``cutoff`` (retries come within minutes)."""
        with self.transaction() as db:
            db.execute("DELETE FROM slack_events WHERE received_at < ?", [cutoff])

    def record_home_viewer(self, user: str) -> None:
        """Remember that ``user`` opened the App Home (their tab is kept current)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
                [user, self.clock()],
            )

    def home_viewers(self, users: list[str]) -> list[str]:
        """Those of ``users`` who have opened the App Home."""
        if not users:
            return []
        rows = self.db.execute(
            f"SELECT user_id FROM home_viewers WHERE user_id IN ({','.join('?' * len(users))}) ORDER BY user_id", list(users)
        ).fetchall()
        return [r["user_id"] for r in rows]

    def count(self, *, states: tuple[str, ...] | None = None, requester: str | None = None) -> int:
        """How many requests ``find`` would return without its limit."""
        sql, args = self._where(states, requester)
        return self.db.execute("SELECT COUNT(*) FROM requests" + sql, args).fetchone()[0]

    def outbox(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows (all, or one request's), oldest first: for status and tests."""
        if request_id is None:
            rows = self.db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM outbox WHERE request_id = ? ORDER BY id", [request_id]).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    # -- holdings (aws.actions.holdings) ---------------------------------------------

    def hold(self, resource: str, request_id: int, created: bool) -> None:
        """Record that ``request_id`` relies on ``resource`` (created: it added it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO holdings (resource, request_id, created) VALUES (?,?,?)"
                " ON CONFLICT (resource, request_id) DO UPDATE SET created = CASE WHEN excluded.created > holdings.created THEN excluded.created ELSE holdings.created END",
                [resource, request_id, int(created)],
            )
            db.execute(
                "INSERT INTO held_resources (resource, managed) VALUES (?,?)"
                " ON CONFLICT (resource) DO UPDATE SET managed = CASE WHEN excluded.managed > held_resources.managed THEN excluded.managed ELSE held_resources.managed END",
                [resource, int(created)],
            )

    def _live_holders(self, db: Any, resource: str, states: tuple[str, ...], besides: int | None) -> list[int]:
        rows = db.execute(
            f"SELECT h.request_id FROM holdings h JOIN requests r ON r.id = h.request_id"
            f" WHERE h.resource = ? AND h.request_id != ? AND r.state IN ({','.join('?' * len(states))}) ORDER BY h.request_id",
            [resource, besides if besides is not None else -1, *states],
        ).fetchall()
        return [row[0] for row in rows]

    def release(self, resource: str, request_id: int, created: bool) -> tuple[bool, list[int]]:
        """``request_id`` lets ``resource`` go. Returns (remove, still held by):
        remove only when amibot manages it and no other live request holds it."""
        with self.transaction() as db:
            db.execute("DELETE FROM holdings WHERE resource = ? AND request_id = ?", [resource, request_id])
            row = db.execute("SELECT managed FROM held_resources WHERE resource = ?", [resource]).fetchone()
            managed = bool(row and row[0]) or created
            others = self._live_holders(db, resource, LIVE_HOLDER_STATES, request_id)
        return managed and not others, others

    def end_holding(self, resource: str, request_id: int) -> list[int]:
        """An explicit removal by ``request_id`` (an unshare): shares in force let go,
        the resource becomes amibot's to remove; returns the in-flight requests that
        still need it (the last of them removes it when it lets go)."""
        with self.transaction() as db:
            for settled in self._live_holders(db, resource, SETTLED_HOLDER_STATES, request_id):
                db.execute("DELETE FROM holdings WHERE resource = ? AND request_id = ?", [resource, settled])
                self._audit(db, settled, None, None, "amibot", f"access {resource} ended by R-{request_id}")
            db.execute(
                "INSERT INTO held_resources (resource, managed) VALUES (?, 1) ON CONFLICT (resource) DO UPDATE SET managed = 1",
                [resource],
            )
            return self._live_holders(db, resource, IN_FLIGHT_HOLDER_STATES, request_id)

    def holders(self, resource: str) -> list[int]:
        """Every request that holds ``resource`` now, whatever its state."""
        return [r[0] for r in self.db.execute("SELECT request_id FROM holdings WHERE resource = ? ORDER BY request_id", [resource]).fetchall()]

    # -- messages posted besides the root ------------------------------------------------

    def record_message(self, request_id: int, role: str, target: str, channel: str, ts: str) -> None:
        """Remember a posted approval copy or progress reply (to edit it later)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO slack_messages (request_id, role, target, channel, ts, posted_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (request_id, role, target) DO NOTHING",
                [request_id, role, target, channel, ts, self.clock()],
            )

    def posted_messages(self, request_id: int, role: str | None = None) -> list[dict[str, Any]]:
        """The messages recorded for a request (oldest first), optionally of one role."""
        sql = "SELECT * FROM slack_messages WHERE request_id = ?"
        args: list[Any] = [request_id]
        if role is not None:
            sql += " AND role = ?"
            args.append(role)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY posted_at, target", args).fetchall()]

    def has_outbox(self, dedupe_key: str) -> bool:
        """Whether a message with this dedupe key was ever enqueued."""
        return self.db.execute("SELECT 1 FROM outbox WHERE dedupe_key = ?", [dedupe_key]).fetchone() is not None
