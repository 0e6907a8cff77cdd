"""How an action is tried again, declared by the action (as Temporal's activities
declare their retry policy) and read by the engine and the scheduler.

Two kinds of "again" use it:

- a step that is *waiting* (``StepWaiting``: a copy in flight) is run again after
  the delay it asked for, spread by ``jitter`` so that many requests do not poll
  AWS at the same instant;
- an *undo* that failed where failing is not an option (removing a time-boxed share
  at its expiry) is tried again after ``initial_interval``, multiplied by
  ``backoff_coefficient`` at each attempt up to ``maximum_interval``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class RetryPolicy:
    """When to try an action again.

    ``maximum_attempts`` None: never give up (the owners are told instead)."""

    initial_interval: float = 60.0  # seconds before the second attempt
    backoff_coefficient: float = 2.0  # each later delay is this times the one before
    maximum_interval: float = 3600.0  # no delay grows past this
    jitter: float = 0.1  # a delay is spread over ±jitter of itself
    maximum_attempts: int | None = None

    def backoff(self, attempt: int) -> float:
        """The delay after failed attempt number ``attempt`` (1 for the first), without jitter."""
        return min(self.initial_interval * self.backoff_coefficient ** max(attempt - 1, 0), self.maximum_interval)

    def spread(self, seconds: float, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """``seconds`` spread by the jitter (polls of many requests do not line up)."""
        return seconds * uniform(1.0 - self.jitter, 1.0 + self.jitter) if self.jitter else seconds

    def gives_up_after(self, attempt: int) -> bool:
        """Whether ``attempt`` was the last one allowed."""
        return self.maximum_attempts is not None and attempt >= self.maximum_attempts


DEFAULT = RetryPolicy()


def slowest(policies: Iterable[RetryPolicy]) -> RetryPolicy:
    """Of several actions' policies (the steps of one removal), the one that waits
    longest at its first retry: retrying sooner would only fail sooner."""
    return max(policies, key=lambda p: (p.initial_interval, p.maximum_interval), default=DEFAULT)
