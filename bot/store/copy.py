"""``amibot migrate-store``: move an installation from one database to another (SQLite
to PostgreSQL, typically) without losing a request, approval, step result, audit
entry or outbox message.

Every table is copied with its ids (the identity sequences continue after them), in
one transaction on the target, and the row counts are compared afterwards. Leases are
not copied: they belong to processes, and the bot must be stopped while it moves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bot.errors import AmibotError
from bot.store.backends import SQLITE, backend_for, columns, is_postgres_url
from bot.store.core import Store

# Not copied: who holds what belongs to the processes of the old installation.
NOT_COPIED = frozenset({"leases"})


class StoreCopyError(AmibotError):
    """The store could not be copied; nothing was changed in the target."""


@dataclass
class TableCopy:
    table: str
    source_rows: int
    target_rows: int

    @property
    def verified(self) -> bool:
        return self.source_rows == self.target_rows


def open_source(target: str) -> Store:
    """The database to copy from; an existing SQLite file or a PostgreSQL URL."""
    check_target(target)
    backend = backend_for(target)
    if backend.kind == SQLITE and not os.path.exists(backend.path):
        raise StoreCopyError(f"There is no SQLite database at `{backend.path}`.", fix="Give the path of the bot's current database, e.g. --from sqlite:/var/lib/amibot/amibot.db.")
    return Store(target)


def check_target(target: str) -> None:
    """``sqlite:PATH``, a path, or ``postgresql://…``; anything else is refused."""
    if not is_postgres_url(target) and "://" in target:
        raise StoreCopyError(f"`{target.split('://', 1)[0]}://` is not a database amibot can use.", fix="Use sqlite:PATH or postgresql://USER:PASSWORD@HOST:5432/DBNAME.")


def copy_store(source: Store, target: Store, *, overwrite: bool = False) -> list[TableCopy]:
    """Copy every table of ``source`` into ``target`` (both migrated to the current
    schema), preserving ids; refuses a target holding data unless ``overwrite``."""
    tables = [t for t in source.backend.tables(source.db) if t not in NOT_COPIED]
    present = set(target.backend.tables(target.db))
    missing = [t for t in tables if t not in present]
    if missing:
        raise StoreCopyError(f"The target has no table {', '.join(missing)}.", fix="Copy into a database migrated by this version of amibot.")
    with target.transaction() as db:
        holding = [t for t in tables if db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]]
        if holding and not overwrite:
            raise StoreCopyError(
                f"The target already holds data (in {', '.join(holding)}); nothing was copied.",
                fix="Copy into an empty database, or pass --overwrite to replace what it holds.",
            )
        for table in reversed(tables):  # children (steps, approvals) before requests
            db.execute(f"DELETE FROM {table}")
        for table in tables:
            shared = [c for c in columns(source.backend, source.db, table) if c in set(columns(target.backend, db, table))]
            names = ", ".join(shared)
            marks = ", ".join("?" * len(shared))
            for row in source.db.execute(f"SELECT {names} FROM {table}").fetchall():
                db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", [row[i] for i in range(len(shared))])
            if "id" in shared:
                target.backend.reset_sequence(db, table)
    return [
        TableCopy(t, source.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0], target.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
        for t in tables
    ]
