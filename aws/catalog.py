"""An account's own AMIs, searchable by name or id, for the request form's AMI picker.

Slack gives an option load 3 seconds, so answers come from a short-lived cache per
account and region (one ``DescribeImages Owners=self`` fills it). A stale entry is
answered at once and refreshed in the background; only a cold one (nothing cached
yet) is waited for, at most ``wait_seconds``, after which the answer says it is still
loading. Either way the answer leaves in time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable

from aws.sessions import AwsSessions

# DescribeImages is already declared by the preflight (aws.actions.PREFLIGHT_PERMISSIONS).
CATALOG_PERMISSIONS = ("ec2:DescribeImages",)


@dataclass(frozen=True)
class OwnImage:
    """One AMI an account owns, as the picker shows it."""

    image_id: str
    name: str
    state: str
    created: str  # CreationDate, ISO 8601 (newest first in searches)


@dataclass(frozen=True)
class Search:
    """What a search found: matching images, newest first, and whether the list is
    complete (False while a first load is still running)."""

    images: list[OwnImage]
    loading: bool = False


class ImageCatalog:
    """``search(account_id, region, text)`` over each account's own AMIs."""

    def __init__(self, sessions: AwsSessions, *, ttl_seconds: float = 60.0, wait_seconds: float = 1.5,
                 clock: Callable[[], float] = time.monotonic):
        self.sessions = sessions
        self.ttl_seconds = ttl_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self._lists: dict[tuple[str, str], tuple[float, list[OwnImage]]] = {}
        self._loading: dict[tuple[str, str], Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="amibot-catalog")

    def warm(self, account_id: str, region: str) -> None:
        """Start loading an account's list if it is cold or stale (the form does this
        when it opens, so the first search finds it ready)."""
        self._refresh(account_id, region)

    def search(self, account_id: str, region: str, text: str) -> Search:
        """Images whose id or name contains ``text`` (case-insensitive), newest first."""
        key = (account_id, region)
        future = self._refresh(account_id, region)
        with self._lock:
            stale = key in self._lists
        if future is not None and not stale:
            try:
                future.result(timeout=self.wait_seconds)
            except FutureTimeout:
                pass  # answer from what is cached; the load goes on for the next keystroke
            except Exception:
                pass  # an AWS error: the cached list (if any) is still the best answer
        with self._lock:
            cached = self._lists.get(key)
            loading = key in self._loading
        if cached is None:
            return Search([], loading=loading)
        needle = " ".join(text.split()).lower()
        found = [i for i in cached[1] if needle in i.image_id or needle in i.name.lower()]
        return Search(found, loading=False)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _refresh(self, account_id: str, region: str) -> Future | None:
        key = (account_id, region)
        with self._lock:
            cached = self._lists.get(key)
            if cached and cached[0] > self.clock():
                return None
            future = self._loading.get(key)
            if future is None:
                future = self._pool.submit(self._load, key)
                self._loading[key] = future
            return future

    def _load(self, key: tuple[str, str]) -> None:
        account_id, region = key
        try:
            ec2 = self.sessions.client("ec2", account_id, region, "form")
            images: list[OwnImage] = []
            for page in ec2.get_paginator("describe_images").paginate(Owners=["self"]):
                for image in page.get("Images", []):
                    if image.get("State") in ("deregistered", "disabled"):
                        continue
                    images.append(OwnImage(image["ImageId"], image.get("Name") or "", image.get("State", ""), image.get("CreationDate", "")))
            images.sort(key=lambda i: (i.created, i.image_id), reverse=True)
            with self._lock:
                self._lists[key] = (self.clock() + self.ttl_seconds, images)
        finally:
            with self._lock:
                self._loading.pop(key, None)
