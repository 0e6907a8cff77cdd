"""The clock tests and benchmarks drive: seconds like ``time.time()``, moved forward by
:meth:`Clock.advance` (expiry, time-boxed shares, polling rounds, the sandbox's
consistency windows) instead of by waiting."""

from __future__ import annotations

import threading
import time


class Clock:
    """Real time plus an offset the caller moves forward; or, made with ``at``, a
    frozen time that moves only when :meth:`advance` moves it."""

    def __init__(self, at: float | None = None):
        self._frozen_at = at
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        base = time.time() if self._frozen_at is None else self._frozen_at
        return base + self.offset

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (for everything that reads it)."""
        with self._lock:
            self.offset += seconds
