"""Eventual consistency: "not found" on something amibot has just created.

AWS: "Amazon EC2 API follows an eventual consistency model ... If you run a describe
command immediately after a create, you might get a not-found error"
(https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html); a new KMS
grant also takes a while to be listed and used. So a not-found answer about an image,
instance or grant amibot created less than ``ctx.consistency_window_seconds`` ago means
"not visible yet": ask again (briefly in place, then by coming back later), and
never conclude it is gone -- an undo that believed it would leave a copy running or a
test instance up.
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from aws.actions.base import StepContext, StepWaiting

T = TypeVar("T")

# How long to keep asking in place (the worker thread sleeps) before handing the step
# back to the scheduler with StepWaiting.
INLINE_SECONDS = 20.0

# Past its window, a resource amibot waits on is declared gone only after this many
# consecutive not-found answers (each one poll apart): one stray answer from a lagging
# endpoint must not make an undo deregister a copy that is still running.
MISSES_BEFORE_GONE = 3


def within_window(ctx: StepContext, created_at: float | None) -> bool:
    """Whether something created at ``created_at`` (epoch seconds; None: unknown, so
    not amibot's recent creation) may still be invisible."""
    return created_at is not None and ctx.clock() - float(created_at) < ctx.consistency_window_seconds


def until_visible(
    ctx: StepContext,
    created_at: float | None,
    look: Callable[[], T | None],
    what: str,
    *,
    wait_in_place: float = INLINE_SECONDS,
    result: dict[str, Any] | None = None,
    poll_seconds: float = 15.0,
) -> T | None:
    """``look()`` until it finds the resource (returns not None). While the resource
    is inside its consistency window, a miss is retried with backoff for up to
    ``wait_in_place`` seconds, then the step is handed back (StepWaiting with
    ``result``) to try again later; after the window a miss is an answer: None."""
    started = time.monotonic()
    delay = 0.5
    while True:
        found = look()
        if found is not None or not within_window(ctx, created_at):
            return found
        if time.monotonic() - started >= wait_in_place:
            raise StepWaiting(f"{what} not visible yet (AWS is eventually consistent)", retry_after=poll_seconds, result=result)
        ctx.log(f"{what} not visible yet; AWS is eventually consistent right after a create, asking again")
        ctx.sleep(delay)
        delay = min(delay * 2, 5.0)


def gone_after_misses(ctx: StepContext, created_at: float | None) -> int | None:
    """After a not-found answer about a resource a step waits on: None when it is now
    declared gone (past its window, the ``MISSES_BEFORE_GONE``-th consecutive miss);
    otherwise how many consecutive misses there have been (record it in the step's
    result as ``misses`` and ask again later). A found answer resets the count (the
    step's result then has no ``misses``)."""
    misses = int(ctx.previous.get("misses") or 0) + 1
    if within_window(ctx, created_at) or misses < MISSES_BEFORE_GONE:
        return misses
    return None
