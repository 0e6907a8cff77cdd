"""``amibot backup PATH``: a consistent copy of the live store.

The store alone holds the grant ids and permissions unsharing needs, so it must be
backed up. SQLite: the online backup API (``sqlite3.Connection.backup``) copies a
database that other processes keep writing to, page by page, into a file created
``0600`` (sqlite-utils has no backup; the standard library's is the one). The copy is
then opened, checked and the rows of each of its tables counted. PostgreSQL: ``pg_dump`` is
the tool; the command is printed instead.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

import sqlite_utils


class BackupError(Exception):
    """The backup could not be made or verified; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    """What was copied, for the operator."""

    path: str
    rows: dict[str, int]


def is_postgres(db: str) -> bool:
    """Whether AMIBOT_DB names a PostgreSQL database."""
    return db.lower().startswith(("postgresql://", "postgres://"))


def pg_dump_advice(url: str, path: str) -> str:
    """The pg_dump command for a PostgreSQL store (the password stays out of it)."""
    return (
        "amibot backup copies SQLite stores only; this store is PostgreSQL. Back it up with pg_dump, e.g.\n"
        f"  PGPASSWORD=… pg_dump --format=custom --no-owner --file {path} '{_without_password(url)}'\n"
        "and restore with pg_restore --clean --dbname <url> " + path
    )


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def backup_sqlite(source: str, destination: str) -> BackupReport:
    """Copy the live SQLite database ``source`` to ``destination`` (new file, 0600)
    with the online backup API, then open the copy and count its rows."""
    if not os.path.exists(source):
        raise BackupError(f"{source} does not exist: check AMIBOT_DB.")
    if os.path.exists(destination):
        raise BackupError(f"{destination} already exists: choose a new file (a backup never overwrites one).")
    # Created 0600 before SQLite writes to it: grant ids are not for every local user.
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        live = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        copy = sqlite3.connect(destination)
        try:
            live.backup(copy)
        finally:
            copy.close()
            live.close()
        return BackupReport(destination, verify(destination))
    except (sqlite3.Error, BackupError) as error:
        os.unlink(destination)
        raise BackupError(f"backup of {source} failed: {error}") from error


def verify(path: str) -> dict[str, int]:
    """Open a backup read-only, check its integrity and count the rows of every table
    it holds (sqlite-utils lists them, in the order they were created)."""
    db = sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    try:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path} failed SQLite's integrity check: {check}")
        return {table: db[table].count for table in db.table_names() if not table.startswith("sqlite_")}
    finally:
        db.close()
