"""Who is who in Slack: the members of a user group (owners may be groups like
``S0PLATFORM``) and of a channel (who may read a request's details), both cached
briefly (membership changes rarely; commands and clicks must be answered fast)."""

from __future__ import annotations

import threading
import time
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

# conversations.members answers at most this many per page (Slack's documented maximum).
_MEMBERS_PAGE = 1000


class SlackDirectory:
    """Resolves user groups (``usergroups.users.list``) and channel members
    (``conversations.members``), each cached for ``ttl_seconds``."""

    def __init__(self, client: WebClient, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def group_members(self, group_id: str) -> list[str]:
        """The users of a user group; an unknown or unreadable group has none
        (it approves nobody: failing closed)."""
        return sorted(self._cached(f"group:{group_id}", lambda: self._read_group(group_id)))

    def channel_members(self, channel: str) -> frozenset[str]:
        """The members of a channel; empty when the bot cannot read it (it is not in
        the channel, or lacks ``channels:read``/``groups:read``): failing closed."""
        return self._cached(f"channel:{channel}", lambda: self._read_channel(channel))

    def bot_is_member(self, channel: str) -> bool:
        """Whether the bot is in ``channel`` now (``conversations.info``'s
        ``is_member``; not cached): False when it cannot tell."""
        try:
            return bool(self.client.conversations_info(channel=channel)["channel"].get("is_member"))
        except (SlackApiError, KeyError, TypeError):
            return False

    def _cached(self, key: str, read: Callable[[], frozenset[str]]) -> frozenset[str]:
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > self.clock():
                return cached[1]
        value = read()
        with self._lock:
            self._cache[key] = (self.clock() + self.ttl_seconds, value)
        return value

    def _read_group(self, group_id: str) -> frozenset[str]:
        try:
            return frozenset(self.client.usergroups_users_list(usergroup=group_id).get("users", []))
        except SlackApiError:
            return frozenset()

    def _read_channel(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        try:
            while True:
                page = self.client.conversations_members(channel=channel, limit=_MEMBERS_PAGE, **({"cursor": cursor} if cursor else {}))
                members.update(page.get("members", []))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return frozenset(members)
        except SlackApiError:
            return frozenset()
