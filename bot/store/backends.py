"""The two databases under the store, and the little that differs between them.

The store's SQL is written once, with ``?`` placeholders and portable statements
(``INSERT … ON CONFLICT … DO NOTHING``, ``RETURNING id``); a backend supplies:

- a connection per thread whose ``execute(sql, params)`` takes that SQL (PostgreSQL's
  wrapper turns ``?`` into psycopg's ``%s``) and returns rows readable by name and by
  position, like ``sqlite3.Row``;
- ``transaction()``: SQLite takes the write lock at once (``BEGIN IMMEDIATE``), so two
  writers queue on the busy timeout; PostgreSQL runs a ``READ COMMITTED`` transaction,
  where a compare-and-set ``UPDATE … WHERE state = ?`` waits for a concurrent writer's
  row lock and re-checks its condition, so it has one winner too;
- how the schema version is recorded (SQLite: ``PRAGMA user_version``; PostgreSQL: the
  ``amibot_schema`` table, changed under an advisory lock so two starting replicas
  do not both change it) and the translation of a schema change's text (see
  :func:`postgres_statements`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterable, Iterator

import sqlite_utils


SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DEFAULT_SQLITE_PATH = "amibot.db"
# Seconds a SQLite connection waits for another process's lock before failing.
BUSY_TIMEOUT = 30.0
_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | None) -> bool:
    """Whether ``target`` (``AMIBOT_DB``) names a PostgreSQL database."""
    return bool(target) and target.startswith(_PG_SCHEMES)


def backend_for(target: str | None) -> "SqliteBackend | PostgresBackend":
    """A ``postgresql://…`` URL is PostgreSQL; a file path (``sqlite:PATH`` also
    accepted), or nothing, is SQLite (``amibot.db``)."""
    if is_postgres_url(target):
        return PostgresBackend(target)
    path = target or DEFAULT_SQLITE_PATH
    if path.startswith("sqlite:"):
        path = path[len("sqlite:"):]
    return SqliteBackend(path)


def split_statements(script: str) -> list[str]:
    """A schema change's statements (they hold no ``;`` inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


# -- SQLite ------------------------------------------------------------------------------


class SqliteBackend:
    """SQLite through sqlite-utils: WAL, a busy timeout, one connection per thread."""

    kind = SQLITE
    # How long to wait between two tries of the WAL switch (see ``prepare``); a test
    # replaces it to release the lock it holds instead of sleeping.
    pause = staticmethod(time.sleep)
    # One process owns a SQLite database (the documented single-process deployment):
    # a starting process takes over every lease a dead predecessor left.
    shared = False

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def connection(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            _create_private(self.path)  # on first use, not when merely named (migrate-store checks existence)
            # The busy timeout is set by connect, before the first statement.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            db = sqlite_utils.Database(conn)
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
        process switching or bringing the schema of the same new file up to date), SQLite refuses that upgrade
        at once with "database is locked" — without the busy timeout, since two readers
        waiting to upgrade would wait for each other for ever. The refused statement
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

    def lock_schema(self, db: Any) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already excludes every other writer."""

    def schema_version(self, db: Any) -> int:
        return db.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, db: Any, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def statements(self, script: str) -> list[str]:
        return split_statements(script)

    def tables(self, db: sqlite_utils.Database) -> list[str]:
        """The store's tables, in the order they were created (parents first)."""
        return [name for name in db.table_names() if not name.startswith("sqlite_")]

    def columns(self, db: sqlite_utils.Database, table: str) -> list[str]:
        """A table's column names, in order."""
        return [column.name for column in db[table].columns]

    def reset_sequence(self, db: Any, table: str) -> None:
        pass  # AUTOINCREMENT continues after the largest id present

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


# -- PostgreSQL ---------------------------------------------------------------------------

# What SQLite-flavoured schema text becomes on PostgreSQL. Schema changes stay portable
# (TEXT / INTEGER / REAL / BIGINT); only these two idioms need a word changed.
_PG_TRANSLATIONS = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
]
# pg_advisory_xact_lock key: "amibot" in ASCII (any constant the cluster does not use;
# kept as it was, so an older and a newer amibot starting together still exclude each other).
_SCHEMA_LOCK = 0x616D69626F74


def postgres_statements(script: str) -> list[str]:
    """The statements of a schema change, as PostgreSQL spells them."""
    statements = []
    for statement in split_statements(script):
        for pattern, replacement in _PG_TRANSLATIONS:
            statement = pattern.sub(replacement, statement)
        statements.append(statement)
    return statements


@lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class Row:
    """A result row as ``sqlite3.Row`` is: readable by column name and by position,
    iterating over its values, ``dict(row)`` giving name → value."""

    __slots__ = ("_names", "_values", "_index")

    def __init__(self, names: list[str], index: dict[str, int], values: tuple):
        self._names, self._index, self._values = names, index, tuple(values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Row) and self._names == other._names and self._values == other._values

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values))!r})"


def _row_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(names, index, values)


class _Table:
    """``db["table"].insert_all(records)``: the sqlite-utils idiom the store uses for
    inserting rows, spoken to PostgreSQL (one prepared statement, executed per row)."""

    def __init__(self, connection: "PgConnection", name: str):
        self.connection, self.name = connection, name

    def insert(self, record: dict[str, Any]) -> None:
        """Insert one row."""
        self.insert_all([record])

    def insert_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Insert rows that all have the keys of the first."""
        rows = iter(records)
        first = next(rows, None)
        if first is None:
            return
        names = list(first)
        sql = f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        with self.connection.raw.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), [[first[n] for n in names], *([row[n] for n in names] for row in rows)])


class PgConnection:
    """A psycopg connection speaking the store's SQL."""

    def __init__(self, raw: Any):
        self.raw = raw

    def execute(self, sql: str, params: Any = ()) -> Any:
        cursor = self.raw.cursor(row_factory=_row_factory)
        params = list(params)
        if params:
            cursor.execute(_pg_sql(sql), params)
        else:
            cursor.execute(sql)
        return cursor

    def __getitem__(self, table: str) -> _Table:
        return _Table(self, table)


class PostgresBackend:
    """PostgreSQL through psycopg 3: one connection per thread, autocommit for single
    reads, explicit transactions (``BEGIN … COMMIT``) for every write."""

    kind = POSTGRESQL
    shared = True  # any number of processes: leases decide who does what

    def __init__(self, url: str):
        import psycopg  # imported here: a SQLite deployment never loads it

        self._psycopg = psycopg
        self.url = url
        self._local = threading.local()

    def describe(self) -> str:
        """The database without its credentials (for logs and /healthz)."""
        info = self._psycopg.conninfo.conninfo_to_dict(self.url)
        host = info.get("host") or "localhost"
        port = f":{info['port']}" if info.get("port") else ""
        return f"postgresql://{host}{port}/{info.get('dbname') or ''}"

    def connection(self) -> PgConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed or conn.raw.broken:
            raw = self._psycopg.connect(self.url, autocommit=True, application_name="amibot", connect_timeout=10)
            conn = PgConnection(raw)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        conn = self.connection()
        with conn.raw.transaction():
            yield conn

    def prepare(self) -> None:
        pass

    def lock_schema(self, db: PgConnection) -> None:
        db.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        db.execute("CREATE TABLE IF NOT EXISTS amibot_schema (version INTEGER NOT NULL)")

    def schema_version(self, db: PgConnection) -> int:
        row = db.execute("SELECT max(version) FROM amibot_schema").fetchone()
        return row[0] or 0

    def set_schema_version(self, db: PgConnection, version: int) -> None:
        db.execute("DELETE FROM amibot_schema")
        db.execute("INSERT INTO amibot_schema (version) VALUES (?)", [version])

    def statements(self, script: str) -> list[str]:
        return postgres_statements(script)

    def tables(self, db: PgConnection) -> list[str]:
        """The store's tables, in the order they were created (parents first, as a
        transfer inserts them: a SQLite target checks its foreign keys)."""
        rows = db.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'amibot_schema' ORDER BY c.oid"
        ).fetchall()
        return [r[0] for r in rows]

    def columns(self, db: PgConnection, table: str) -> list[str]:
        """A table's column names, in order."""
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [r[0] for r in rows]

    def reset_sequence(self, db: PgConnection, table: str) -> None:
        """After rows were copied with their ids: the identity continues after them."""
        sequence = db.execute("SELECT pg_get_serial_sequence(?, 'id')", [table]).fetchone()[0]
        if sequence:
            db.execute(f"SELECT setval(?, (SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)", [sequence])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.raw.close()
            self._local.conn = None


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600) if it does not exist:
    it holds who asked for what and the grant ids. SQLite gives its -wal and -shm files
    the database file's permissions."""
    if path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask
