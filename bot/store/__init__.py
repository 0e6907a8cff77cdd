"""The store: requests, steps, approvals, audit, outbox and leases, on SQLite (the
default, one process) or PostgreSQL (any number of processes).

- ``core.py``: the ``Store`` (all shared SQL) and ``MIGRATIONS`` (one list, run on
  both databases). New migrations are appended there; new store methods go there too.
- ``leases.py``: the lease methods; ``backends.py``: what differs per database;
  ``copy.py``: ``amibot migrate-store``.
"""

from __future__ import annotations

import time

from bot.store.backends import is_postgres_url
from bot.store.core import MIGRATIONS, Clock, Store

__all__ = ["MIGRATIONS", "Store", "open_store", "is_postgres_url"]


def open_store(target: str | None, clock: Clock = time.time) -> Store:
    """The store for ``AMIBOT_DB``: a ``postgresql://…`` URL is PostgreSQL; a file path
    (or ``sqlite:PATH``), or nothing for ``amibot.db``, is SQLite."""
    return Store(target, clock)
