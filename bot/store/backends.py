"""The two databases under the store, and the little that differs between them.

The store's SQL is written once, with ``?`` placeholders and portable statements
(``INSERT … ON CONFLICT … DO NOTHING``, ``RETURNING id``); a backend
(``sqlite_backend``, ``postgres_backend``) supplies:

- a connection per thread whose ``execute(sql, params)`` takes that SQL and returns
  rows readable by name and by position, and ``db["table"].insert_all(rows)``;
- ``transaction()``: SQLite takes the write lock at once (``BEGIN IMMEDIATE``);
  PostgreSQL runs a ``READ COMMITTED`` transaction;
- ``prepare()``, ``lock_schema()``, ``schema_version()``, ``set_schema_version()`` and
  ``statements()``: how the schema changes run once, even with several processes
  starting together;
- ``tables()``, ``columns()``, ``reset_sequence()``: what ``amibot migrate-store`` needs.
"""

from __future__ import annotations

from bot.store.postgres_backend import POSTGRESQL, PostgresBackend
from bot.store.sqlite_backend import DEFAULT_SQLITE_PATH, SQLITE, SqliteBackend

__all__ = ["POSTGRESQL", "SQLITE", "PostgresBackend", "SqliteBackend", "backend_for", "is_postgres_url"]

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
