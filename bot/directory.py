"""Who is in a Slack user group (owners may be groups like ``S0PLATFORM``)."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


class SlackDirectory:
    """Resolves user groups through ``usergroups.users.list``, cached for a minute
    (membership changes rarely; clicks must be answered fast)."""

    def __init__(self, client: WebClient, ttl_seconds: float = 60.0):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def group_members(self, group_id: str) -> list[str]:
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and cached[0] > time.monotonic():
                return cached[1]
        try:
            users = list(self.client.usergroups_users_list(usergroup=group_id).get("users", []))
        except SlackApiError:
            # An unknown or unreadable group approves nobody: failing closed.
            users = []
        with self._lock:
            self._cache[group_id] = (time.monotonic() + self.ttl_seconds, users)
        return users
