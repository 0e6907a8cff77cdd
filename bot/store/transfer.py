"""``amibot migrate-store``: move an installation from one database to another (SQLite
to PostgreSQL, typically) without losing a request, approval, step result, event or
outbox message.

Every table is transferred with its ids (the identity sequences continue after them),
in one transaction on the target, and the row counts are compared afterwards. Leases
are not transferred: they belong to processes, and the bot must be stopped while it
moves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bot.errors import AmibotError
from bot.store.backends import SQLITE, backend_for, is_postgres_url
from bot.store.core import Store

# Not transferred: who holds what belongs to the processes of the old installation.
NOT_TRANSFERRED = frozenset({"leases"})


class StoreTransferError(AmibotError):
    """The store could not be transferred; nothing was changed in the target."""


@dataclass
class TableTransfer:
    """One table's rows in the source and, after the transfer, in the target."""

    table: str
    source_rows: int
    target_rows: int

    @property
    def verified(self) -> bool:
        """Whether the target holds as many rows as the source."""
        return self.source_rows == self.target_rows


def open_source(target: str) -> Store:
    """The database to transfer from; an existing SQLite file or a PostgreSQL URL."""
    check_target(target)
    backend = backend_for(target)
    if backend.kind == SQLITE and not os.path.exists(backend.path):
        raise StoreTransferError(f"There is no SQLite database at `{backend.path}`.", fix="Give the path of the bot's current database, e.g. --from sqlite:/var/lib/amibot/amibot.db.")
    return Store(target)


def check_target(target: str) -> None:
    """``sqlite:PATH``, a path, or ``postgresql://…``; anything else is refused."""
    if not is_postgres_url(target) and "://" in target:
        raise StoreTransferError(f"`{target.split('://', 1)[0]}://` is not a database amibot can use.", fix="Use sqlite:PATH or postgresql://USER:PASSWORD@HOST:5432/DBNAME.")


def transfer_store(source: Store, target: Store, *, overwrite: bool = False) -> list[TableTransfer]:
    """Transfer every table of ``source`` into ``target`` (both at the current schema),
    preserving ids; refuses a target holding data unless ``overwrite``."""
    tables = [t for t in source.backend.tables(source.db) if t not in NOT_TRANSFERRED]
    present = set(target.backend.tables(target.db))
    missing = [t for t in tables if t not in present]
    if missing:
        raise StoreTransferError(f"The target has no table {', '.join(missing)}.", fix="Copy into a database migrated by this version of amibot.")
    # The messages keep the operator's words ("copy"), as printed since the verb exists.
    with target.transaction() as db:
        holding = [t for t in tables if db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]]
        if holding and not overwrite:
            raise StoreTransferError(
                f"The target already holds data (in {', '.join(holding)}); nothing was copied.",
                fix="Copy into an empty database, or pass --overwrite to replace what it holds.",
            )
        for table in reversed(tables):  # children (steps, approvals) before requests
            db.execute(f"DELETE FROM {table}")
        for table in tables:
            target_columns = set(target.backend.columns(db, table))
            shared = [c for c in source.backend.columns(source.db, table) if c in target_columns]
            rows = source.db.execute(f"SELECT {', '.join(shared)} FROM {table}")
            # Streamed and inserted in batches (sqlite-utils on SQLite, executemany on PostgreSQL).
            db[table].insert_all(dict(zip(shared, row)) for row in rows)
            if "id" in shared:
                target.backend.reset_sequence(db, table)
    return [
        TableTransfer(t, source.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0], target.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
        for t in tables
    ]
