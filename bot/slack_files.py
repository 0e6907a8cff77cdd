"""Files the bot sends: to one person, in their DM with the bot, never in a channel.

Slack's upload is three calls (``WebClient.files_upload_v2``, as documented at
docs.slack.dev/reference/methods/files.getUploadURLExternal and
docs.slack.dev/reference/methods/files.completeUploadExternal):
``files.getUploadURLExternal`` (filename and length) → a POST of the bytes to the
upload URL it returned → ``files.completeUploadExternal`` with the file id and the
``channel_id`` to share it in. All need the ``files:write`` scope; the DM is opened
with ``conversations.open`` (``im:write``). Names for the CSV come from ``users.info``
(``users:read``), cached; without the scope the id stands for the name.
"""

from __future__ import annotations

import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def send_to_dm(client: WebClient, user: str, filename: str, content: str, *, title: str, comment: str) -> dict[str, Any]:
    """Upload ``content`` as ``filename`` into ``user``'s DM with the bot; returns Slack's
    file record. Raises SlackApiError when Slack refuses (e.g. ``missing_scope``)."""
    channel = client.conversations_open(users=user)["channel"]["id"]
    if not channel.startswith("D"):  # only ever a direct message
        raise ValueError(f"conversations.open gave {channel!r}, not a DM")
    answer = client.files_upload_v2(channel=channel, content=content.encode("utf-8"), filename=filename, title=title, initial_comment=comment)
    return dict(answer.get("file") or {})


class UserNames:
    """A Slack user id -> the person's name (real name, else display name), cached; the id
    itself when Slack will not say (no ``users:read``, a deleted user)."""

    def __init__(self, client: WebClient):
        self.client = client
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str) -> str:
        with self._lock:
            if user in self._names:
                return self._names[user]
        try:
            info = self.client.users_info(user=user)["user"]
            profile = info.get("profile") or {}
            name = info.get("real_name") or profile.get("real_name") or profile.get("display_name") or info.get("name") or user
        except (SlackApiError, KeyError, TypeError):
            name = user
        with self._lock:
            self._names[user] = str(name)
        return str(name)
