"""Bolt's ack wait without its 10 ms polling (wiring, issue 20).

With ``process_before_response=False`` Bolt runs a listener on its executor, and the
request thread waits for ``ack()`` by checking every 10 ms
(``slack_bolt/listener/thread_runner.py``: ``while ack.response is None: time.sleep(0.01)``),
so an ack costs 5–10 ms more than the listener took. ``install()`` makes ``Ack.__call__``
wake the waiting request threads at once (one condition for the process), and gives
the runner a ``sleep`` that waits on it, at most the 10 ms it waited before. Nothing
else changes: listeners ack as before, and the Deny form opens with the trigger_id
within the listener, as before. A wake-up missed between the runner's check and its
wait costs what it cost before: one 10 ms poll.
"""

from __future__ import annotations

import threading
import time

from slack_bolt.context.ack import ack as bolt_ack
from slack_bolt.listener import thread_runner

_ACKED = threading.Condition()


class _AckClock:
    """What thread_runner uses of ``time``: ``time()``, and ``sleep()`` that ends
    early when any listener acks."""

    time = staticmethod(time.time)

    @staticmethod
    def sleep(seconds: float) -> bool:
        """Wait up to ``seconds`` or until an ack; True when an ack woke it."""
        with _ACKED:
            return _ACKED.wait(seconds)


def install() -> None:
    """Patch Bolt once for this process (idempotent)."""
    original = bolt_ack.Ack.__call__
    if getattr(original, "wakes_runner", False):
        return

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(self, *args, **kwargs)
        finally:
            with _ACKED:
                _ACKED.notify_all()

    __call__.wakes_runner = True  # type: ignore[attr-defined]
    __call__.__doc__ = original.__doc__
    bolt_ack.Ack.__call__ = __call__  # type: ignore[method-assign]
    thread_runner.time = _AckClock  # type: ignore[attr-defined]
