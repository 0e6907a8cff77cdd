"""The store verbs of the command line (wiring): ``amibot audit`` and ``amibot backup``.

Both read AMIBOT_DB (the store the bot uses; the config file is not needed) and
change nothing in it.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from typing import Callable

from bot.config import DEFAULT_DB_PATH


def add_store_verbs(sub: argparse._SubParsersAction) -> None:
    """Add ``audit`` and ``backup`` to the ``amibot`` parser."""
    audit = sub.add_parser("audit", help="export requests, decisions, state changes and steps with actor and time (read-only)")
    audit.add_argument("--since", help="an ISO date/time (2026-11-01, 2026-11-01T12:00Z) or a duration back from now (36h, 7d)")
    audit.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    audit.add_argument("--out", help="write to this file instead of standard output")
    backup = sub.add_parser("backup", help="copy the live database safely to PATH (SQLite online backup, file mode 0600)")
    backup.add_argument("path")


def _db() -> str:
    return os.environ.get("AMIBOT_DB") or DEFAULT_DB_PATH


def _export_request_log(args: argparse.Namespace) -> int:
    """``amibot audit``: the request log since ``--since``, as JSON lines or CSV."""
    from bot.request_log import SinceError, events, parse_since, render
    from bot.backup import is_postgres

    db = _db()
    if not is_postgres(db) and not os.path.exists(db):
        print(f"amibot: the store {db} does not exist: set AMIBOT_DB to the bot's database.", file=sys.stderr)
        return 2
    try:
        since = parse_since(args.since, datetime.now(timezone.utc)) if args.since else None
    except SinceError as error:
        print(f"amibot: {error}", file=sys.stderr)
        return 2
    from bot.store import open_store

    store = open_store(db)  # SQLite or PostgreSQL, as AMIBOT_DB says
    try:
        text = render(events(store.request_log(since)), args.format)
    finally:
        store.close()
    if args.out:
        # 0600, a new file only, never through a symlink (issue 17, finding 7): the log
        # names people, accounts and AMIs.
        try:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            print(f"amibot: {args.out} exists (or is a symlink): the export writes a new file only. Name a new path.", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"amibot: cannot create {args.out}: {error.strerror}", file=sys.stderr)
            return 2
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _backup(args: argparse.Namespace) -> int:
    """``amibot backup PATH``: a verified copy of a SQLite store; advice for PostgreSQL."""
    from bot.backup import BackupError, backup_sqlite, is_postgres, pg_dump_advice

    db = _db()
    if is_postgres(db):
        print(f"amibot: {pg_dump_advice(db, args.path)}", file=sys.stderr)
        return 2
    try:
        report = backup_sqlite(db, args.path)
    except BackupError as error:
        print(f"amibot: {error}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {table}" for table, n in report.rows.items())
    print(f"backup of {db} written to {report.path} (mode 0600), verified: {counts}")
    return 0


STORE_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {"audit": _export_request_log, "backup": _backup}
