"""The worker: the bot's own thread pool, off Slack's listener threads.

Approved plans run on it (``bot.engine``), as do preflights and other slow work, so
Slack gets its answer within 3 seconds.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger("amibot.worker")


class Worker:
    """The bot's own thread pool (Bolt's 5-thread listener pool must stay free)."""

    def __init__(self, threads: int = 4, name: str = "amibot-worker"):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._futures: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run ``fn`` on the pool; exceptions are logged, never lost silently."""

        def guarded() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
                raise

        # The submitter's log context (request id...) follows the work to the pool.
        future = self._pool.submit(contextvars.copy_context().run, guarded)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no task is running or queued (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for future in pending:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:
                    pass
        raise TimeoutError("worker did not drain")

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

