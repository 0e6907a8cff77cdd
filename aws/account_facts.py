"""Account-level facts a preflight reads, cached for a minute.

Some reads answer for a whole account and region, not for the AMI asked about: the
default EBS key (``GetEbsDefaultKmsKeyId``) and the Allowed AMIs settings
(``GetAllowedImagesSettings``). They change rarely, by hand, and every share or copy
to that account-region reads them again; cached for ``TTL_SECONDS`` per
(fact, account, region), a burst of requests to the same accounts reads each once.

Time is the injected clock's (tests move it), never the wall clock's directly. A
failed read is not cached (the next request asks AWS again). A refusal never rests
on a cached answer: the preflight that used one is run again with fresh reads
before it refuses (``bot.verbs.registry.prepare``), so a person who just fixed a
setting is not told the old answer for a minute.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")

TTL_SECONDS = 60.0

EBS_DEFAULT_KEY = "ebs-default-kms-key"  # ec2:GetEbsDefaultKmsKeyId
ALLOWED_IMAGES = "allowed-images-settings"  # ec2:GetAllowedImagesSettings


class AccountFacts:
    """A small cache of account-level answers, each kept ``ttl`` seconds of ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl: float = TTL_SECONDS):
        self._clock = clock
        self._ttl = ttl
        self._values: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, fact: str, account_id: str, region: str, read: Callable[[], T], *, fresh: bool = False) -> tuple[T, bool]:
        """The fact's value and whether it came from the cache; ``read`` (the AWS
        call) when it is not cached, has expired, or ``fresh`` asks for AWS's answer now."""
        key = (fact, account_id, region)
        now = self._clock()
        if not fresh:
            with self._lock:
                cached = self._values.get(key)
            if cached is not None and cached[0] > now:
                return cached[1], True
        value = read()
        with self._lock:
            self._values[key] = (now + self._ttl, value)
            if len(self._values) > 1024:  # accounts × regions × facts: never near this
                self._values = {k: v for k, v in self._values.items() if v[0] > now}
        return value, False

    def clear(self) -> None:
        """Forget everything (the benchmark's cold runs; a test)."""
        with self._lock:
            self._values.clear()
