"""The schema of the store: one list of changes, run in order on both databases.

A new table or column is a new entry appended to ``SCHEMA_CHANGES``; an entry that has
run is never edited. ``bot.store.connection`` applies the ones a database has not run
yet, under a lock, when a store opens.
"""

from __future__ import annotations


def split_statements(script: str) -> list[str]:
    """A schema change's statements (they hold no ``;`` inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


# Schema changes run in order, the same texts on both databases (portable SQL: TEXT,
# INTEGER, REAL, BIGINT; PostgreSQL reads ``INTEGER PRIMARY KEY [AUTOINCREMENT]`` as an
# identity column and REAL as DOUBLE PRECISION). SQLite records how many have run in
# PRAGMA user_version, PostgreSQL in the amibot_schema table. Append; never edit.
SCHEMA_CHANGES: list[str] = [
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
    # which process recorded each step (with several replicas, for the request log).
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
    # Approval policy (issue 19): each approver's vote per account, so a two-owner rule
    # counts distinct people (the approvals row is written when the last vote needed lands).
    """
    CREATE TABLE approval_votes (
        request_id INTEGER NOT NULL,
        account_alias TEXT NOT NULL,
        approver TEXT NOT NULL,
        decided_at REAL NOT NULL,
        PRIMARY KEY (request_id, account_alias, approver)
    );
    """,
    # Per-user rate limits on commands that call AWS (`bot.aws_commands_per_minute`):
    # one row per user and window, pruned when a newer window is counted (issue 17).
    """
    CREATE TABLE rate_counts (
        user_id TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        uses INTEGER NOT NULL,
        PRIMARY KEY (user_id, window_start)
    );
    """,
    # Drift ledger prune (issue 15 §1): an AMI AWS says no longer exists (past the
    # consistency window) is not asked about again by later drift runs.
    """
    CREATE TABLE drift_gone (
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        image_id TEXT NOT NULL,
        gone_at REAL NOT NULL,
        PRIMARY KEY (account_id, region, image_id)
    );
    """,
    # Work handed from the HTTP front to the worker processes (issue 20): a command to
    # preflight, an approved request to run, a cancellation to clean up. A worker
    # claims a job under the lease ``job:<id>`` and deletes the row when it is done; a
    # job whose worker died is claimed again when that lease expires.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        claims INTEGER NOT NULL DEFAULT 0
    );
    """,
    # Job claims and done marks in the store the workers write (issue 20): on SQLite
    # the front keeps its jobs in a database of its own (``bot.store.inbox``, no worker
    # writes it), so the tries of a job and its end are recorded here, by job id.
    """
    CREATE TABLE job_marks (
        job_id BIGINT PRIMARY KEY,
        claims INTEGER NOT NULL DEFAULT 0,
        done_at REAL
    );
    """,
]
