"""Slack's published Web API rate limits, and the pacer that keeps amibot under them.

Source: Slack's "Rate limits" page (https://docs.slack.dev/apis/web-api/rate-limits,
formerly https://api.slack.com/docs/rate-limits): limits apply "per API method per app
per workspace"; Tier 3 is 50+ per minute ("sporadic bursts are welcome"), Tier 4 100+
per minute; ``chat.postMessage`` is a special tier: "one message per second per
channel", short bursts above it allowed. Slack does not say whether replies in a
thread count apart from their channel: they are counted with their channel here (the
stricter reading).

:data:`LIMITS` is one table for both sides: the notifier paces by it
(:class:`Pacer`, a little under each limit) and the fake Slack (``offline/slack``)
answers HTTP 429 with ``Retry-After`` to whatever goes over it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``burst`` calls at once, then ``per_minute`` a minute;
    ``per_channel`` keeps one bucket per channel (else one per method)."""

    per_minute: float
    burst: int
    per_channel: bool = False

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


# Tier 3 = 50/min, Tier 4 = 100/min; chat.postMessage 1/s per channel.
LIMITS: dict[str, Limit] = {
    "chat.postMessage": Limit(per_minute=60, burst=4, per_channel=True),
    "chat.update": Limit(per_minute=50, burst=10),  # Tier 3
    "chat.postEphemeral": Limit(per_minute=100, burst=20),  # Tier 4
    "views.publish": Limit(per_minute=100, burst=20),  # Tier 4
    "conversations.open": Limit(per_minute=50, burst=10),  # Tier 3
}

# The pacer's share of each limit: a call leaves the bot a moment before Slack
# counts it, so the bot stays a little under what Slack allows.
PACE_MARGIN = 0.9


class Bucket:
    """One token bucket on a clock (seconds)."""

    def __init__(self, limit: Limit, now: float, *, margin: float = 1.0):
        self.rate = limit.per_second * margin
        self.capacity = float(limit.burst)
        self.tokens = self.capacity
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def wait(self, now: float, calls: int = 1) -> float:
        """Seconds until ``calls`` calls fit (0: now; never more than a full bucket)."""
        self._refill(now)
        need = float(min(max(1, calls), self.capacity))
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Count one call (the bucket may go below zero: a debt later calls wait for)."""
        self._refill(now)
        self.tokens -= 1.0


# Whether replies in a thread count apart from their channel. Slack does not say; off
# (the stricter reading). bench/slack_burst.py turns it on for one run, to show what
# the other reading would allow.
THREAD_REPLIES_APART = False


def bucket_key(method: str, channel: str | None, thread_ts: str | None = None) -> tuple[str, str] | None:
    """The bucket a call counts in, or None for a method with no known limit."""
    limit = LIMITS.get(method)
    if limit is None:
        return None
    if not limit.per_channel:
        return (method, "")
    return (method, f"{channel or ''}/{thread_ts}" if THREAD_REPLIES_APART and thread_ts else channel or "")


class Pacer:
    """Paces calls per method (and per channel for ``chat.postMessage``) on ``clock``,
    and holds back one method for the ``Retry-After`` Slack answered with a 429.

    Nothing sleeps here: the delivery loop asks :meth:`wait` and leaves a row for
    later when it is not 0; :meth:`took` counts each call actually made."""

    def __init__(self, clock: Callable[[], float], *, margin: float = PACE_MARGIN):
        self.clock = clock
        self.margin = margin
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._held_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: tuple[str, str], now: float) -> Bucket:
        if key not in self._buckets:
            self._buckets[key] = Bucket(LIMITS[key[0]], now, margin=self.margin)
        return self._buckets[key]

    def wait(self, method: str, channel: str | None = None, calls: int = 1, thread_ts: str | None = None) -> float:
        """Seconds until ``calls`` calls to ``method`` (into ``channel``) may go: 0 for now."""
        now = self.clock()
        with self._lock:
            held = max(0.0, self._held_until.get(method, 0.0) - now)
            key = bucket_key(method, channel, thread_ts)
            return max(held, self._bucket(key, now).wait(now, calls) if key else 0.0)

    def took(self, method: str, channel: str | None = None, thread_ts: str | None = None) -> None:
        """Count a call made to ``method``."""
        key = bucket_key(method, channel, thread_ts)
        if key is not None:
            now = self.clock()
            with self._lock:
                self._bucket(key, now).take(now)

    def hold(self, method: str, seconds: float) -> None:
        """Slack answered 429: no call to ``method`` (only it) for ``seconds``."""
        with self._lock:
            until = self.clock() + max(0.0, seconds)
            self._held_until[method] = max(until, self._held_until.get(method, 0.0))

    def held(self, method: str) -> float:
        """Seconds left of a 429's hold on ``method`` (0: none)."""
        with self._lock:
            return max(0.0, self._held_until.get(method, 0.0) - self.clock())


class SlackLimits:
    """What Slack itself enforces (for the fake Slack): :data:`LIMITS` exactly."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def refuse(self, method: str, channel: str | None, thread_ts: str | None = None) -> int | None:
        """``Retry-After`` seconds when this call goes over the limit (not counted),
        else None (and the call is counted)."""
        key = bucket_key(method, channel, thread_ts)
        if key is None:
            return None
        now = self.clock()
        bucket = self._buckets.setdefault(key, Bucket(LIMITS[method], now))
        wait = bucket.wait(now)
        if wait > 0:
            return max(1, math.ceil(wait))
        bucket.take(now)
        return None
