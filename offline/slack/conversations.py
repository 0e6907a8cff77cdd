"""The ``conversations.*`` methods of the fake Slack: threads and history, channel info,
DMs, joining a public channel, members."""

from __future__ import annotations

import base64
import copy

from offline.slack.blocks import _truthy
from offline.slack.state import SlackState


class ConversationsApi(SlackState):
    """Conversations: what the bot reads of channels and threads, and the DMs it opens."""

    def dm_channel(self, user: str) -> str | None:
        """The DM channel the bot opened with ``user``, if any."""
        with self._lock:
            return self._dms.get(user)

    # -- the Web API (called with the lock held) ----------------------------------
    def _api_conversations_members(self, p: dict) -> dict:
        """Members of a channel, paginated with ``limit`` and ``cursor`` as Slack does."""
        channel = p.get("channel") or ""
        if channel not in self.channel_members:
            return {"error": "channel_not_found"}
        members = self.channel_members[channel]
        start = int(base64.b64decode(p["cursor"]).decode().split(":")[1]) if p.get("cursor") else 0
        limit = min(int(p.get("limit") or 100), 1000)
        page, rest = members[start:start + limit], members[start + limit:]
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if rest else ""
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _api_conversations_replies(self, p: dict) -> dict:
        """The thread (root first), newest last; metadata only when asked, as Slack."""
        channel, ts = p.get("channel", ""), p.get("ts", "")
        root = self._find(channel, ts)
        if root is None:
            return {"error": "thread_not_found"}
        thread = [root] + [m for m in self._messages.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts]
        return {"messages": [self._as_listed(m, p) for m in thread], "has_more": False}

    def _api_conversations_history(self, p: dict) -> dict:
        """Root messages of a channel, newest first."""
        channel = p.get("channel", "")
        if channel in self.channels_bot_cannot_post:
            return {"error": "not_in_channel"}
        roots = [m for m in self._messages.get(channel, []) if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("reply_broadcast")]
        limit = int(p.get("limit") or 100)
        return {"messages": [self._as_listed(m, p) for m in reversed(roots)][:limit], "has_more": False}

    @staticmethod
    def _as_listed(message: dict, p: dict) -> dict:
        listed = copy.deepcopy(message)
        if not _truthy(p.get("include_all_metadata")):
            listed.pop("metadata", None)
        return listed

    def _api_conversations_info(self, p: dict) -> dict:
        cid = p.get("channel") or ""
        if not cid or cid in self.unknown_channels:
            return {"error": "channel_not_found"}
        if cid.startswith("D"):
            if cid not in self._dms.values():
                return {"error": "channel_not_found"}
            user = next(u for u, d in self._dms.items() if d == cid)
            return {"channel": {"id": cid, "is_im": True, "user": user, "is_org_shared": False}}
        return {"channel": {"id": cid, "name": cid.lower(), "is_channel": True, "is_im": False, "is_mpim": False,
                            "is_private": cid.startswith("G"), "is_archived": cid in self.archived_channels,
                            "is_member": cid not in self.channels_bot_cannot_post and cid not in self.public_channels_not_joined}}

    def _api_conversations_open(self, p: dict) -> dict:
        """A DM with one person: ``{"channel": {"id": "D…"}}`` (``no_op``/``already_open``
        when it was open already), as docs.slack.dev/reference/methods/conversations.open."""
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if len(users) != 1:
            return {"error": "not_enough_users" if not users else "fake_slack: only one-person DMs are played"}
        user = users[0]
        if "im:write" not in self.scopes:
            return {"error": "missing_scope", "needed": "im:write", "provided": ",".join(sorted(self.scopes))}
        if user[:1] not in ("U", "W"):
            return {"error": "user_not_found"}
        opened = user in self._dms
        channel = self._dms.setdefault(user, "D" + user[1:])
        return {"no_op": opened, "already_open": opened, "channel": {"id": channel}}

    def _api_conversations_join(self, p: dict) -> dict:
        """docs.slack.dev/reference/methods/conversations.join: public channels only,
        with the channels:join scope."""
        cid = p.get("channel") or ""
        if "channels:join" not in self.scopes:
            return {"error": "missing_scope", "needed": "channels:join", "provided": ",".join(sorted(self.scopes))}
        if not cid or cid in self.unknown_channels:
            return {"error": "channel_not_found"}
        if cid in self.archived_channels:
            return {"error": "is_archived"}
        if cid.startswith(("G", "D")) or cid in self.channels_bot_cannot_post:
            return {"error": "method_not_supported_for_channel_type"}
        was_in = cid not in self.public_channels_not_joined
        self.public_channels_not_joined.discard(cid)
        result: dict = {"channel": {"id": cid, "name": cid.lower(), "is_channel": True, "is_member": True, "is_private": False}}
        if was_in:
            result.update({"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}})
        return result
