"""The store: requests, steps, approvals, events, outbox, leases and the rest, on
SQLite (the default, one process) or PostgreSQL (any number of processes).

- ``core.py``: the ``Store``, composed of one part per concern (``requests``,
  ``in_flight`` (the tick's narrow read), ``events``, ``outbox``, ``slack_messages``, ``replays``, ``home``, ``leases``,
  ``holdings``, ``drift``, ``counts``, ``rates``) over one connection (``connection.py``). A new
  method goes in the module of its concern; a new concern is a new module and one more
  base of ``Store``.
- ``schema.py``: ``SCHEMA_CHANGES``, one list run on both databases; append to it.
- ``backends.py``: which database (``sqlite_backend.py``, ``postgres_backend.py``) and
  what differs between them; ``transfer.py``: ``amibot migrate-store``.
"""

from __future__ import annotations

import time

from bot.store.backends import is_postgres_url
from bot.store.connection import Clock
from bot.store.core import Store
from bot.store.schema import SCHEMA_CHANGES

__all__ = ["SCHEMA_CHANGES", "Clock", "Store", "open_store", "is_postgres_url"]


def open_store(target: str | None, clock: Clock = time.time) -> Store:
    """The store for ``AMIBOT_DB``: a ``postgresql://…`` URL is PostgreSQL; a file path
    (or ``sqlite:PATH``), or nothing for ``amibot.db``, is SQLite."""
    return Store(target, clock)
