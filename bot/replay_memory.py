"""The HTTP front's replay guard on SQLite (issue 20): no write lock on the ack path.

On a SQLite file shared with the workers, a write waits for the one write lock, which
a busy worker may hold for a while; the replay guard (``Store.remember_signature``)
writes on every request. The front of one host (one ``amibot serve`` per SQLite file)
keeps the signatures it accepted in memory instead, checks the ones an earlier run
recorded with a read (WAL: no lock), and records each new one from a thread of its
own, right after — in its inbox (``bot.store.inbox``), a file no worker writes.
PostgreSQL has no such lock: its fronts, any number, keep the store's own check.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from bot.store import Store

log = logging.getLogger("amibot.replays")


class RememberedSignatures:
    """``remember_signature(signature, timestamp)`` for the endpoint: False for a
    signature seen before (by this process, or recorded by an earlier one)."""

    def __init__(self, store: Store, keep_seconds: float = 600.0):
        self.store = store
        self.keep_seconds = keep_seconds
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._record, name="amibot-signatures", daemon=True)
        self._thread.start()

    def __call__(self, signature: str, request_ts: int) -> bool:
        with self._lock:
            if signature in self._seen:
                return False
            self._seen[signature] = request_ts
            if len(self._seen) > 1000:  # Slack refuses older timestamps anyway
                cutoff = time.time() - self.keep_seconds
                self._seen = {s: ts for s, ts in self._seen.items() if ts >= cutoff}
        if self.store.signature_seen(signature):
            return False  # accepted before this process started
        self._pending.put((signature, request_ts))
        return True

    def _record(self) -> None:
        while True:
            item = self._pending.get()
            try:
                if item is not None:
                    self.store.remember_signature(*item)
            except Exception:  # this process still refuses it; the store learns it next time
                log.exception("could not record a request signature")
            finally:
                self._pending.task_done()
            if item is None:
                return

    def flush(self) -> None:
        """Wait until every accepted signature is in the store (tests, shutdown)."""
        self._pending.join()
