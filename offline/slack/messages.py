"""The ``chat.*`` methods of the fake Slack, the channels and threads as Slack shows
them, and what a POST to a ``response_url`` does to them."""

from __future__ import annotations

import copy

from offline.slack.blocks import _block_problems, _truthy
from offline.slack.state import SlackState


class MessagesApi(SlackState):
    """Messages: posting, editing, ephemerals, permalinks, response_urls."""

    # -- what a channel shows ---------------------------------------------------------
    def messages(self, channel: str) -> list[dict]:
        """What the channel shows: root messages and broadcast replies, latest versions."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, [])
                    if m["thread_ts"] in (None, m["ts"]) or m["reply_broadcast"]]

    def thread(self, channel: str, ts: str) -> list[dict]:
        """The replies under root message ``ts``, in order (the root excluded)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, [])
                    if m["thread_ts"] == ts and m["ts"] != ts]

    def message(self, channel: str, ts: str) -> dict | None:
        """The latest version of one message (root or reply), or None."""
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def ephemerals(self, user: str | None = None) -> list[dict]:
        """Messages only one person saw: chat.postEphemeral and ephemeral response_url posts."""
        with self._lock:
            return [dict(e) for e in self._ephemerals if user in (None, e["user"])]

    # -- the Web API (called with the lock held) ----------------------------------
    def _content_error(self, p: dict) -> dict | None:
        if "blocks" in p and (problems := _block_problems(p["blocks"], 50)):
            return {"error": "invalid_blocks", "errors": problems}
        if len(p.get("text") or "") > 40000:
            return {"error": "msg_too_long"}
        return None

    def _api_chat_postMessage(self, p: dict) -> dict:  # noqa: N802 (Slack's method name)
        channel = p.get("channel")
        if not channel:
            return {"error": "channel_not_found"}
        if channel in self.channels_bot_cannot_post or channel in self.public_channels_not_joined:
            return {"error": "not_in_channel"}
        if channel in self.unknown_channels or (channel.startswith("D") and channel not in self._dms.values()):
            return {"error": "channel_not_found"}  # Slack's word for a DM the bot is not part of, too
        if channel in self.archived_channels:
            return {"error": "is_archived"}
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            return {"error": "no_text"}
        if error := self._content_error(p):
            return error
        thread_ts = p.get("thread_ts") or None
        msg = {"type": "message", "ts": self._next_ts(), "channel": channel,
               "text": p.get("text", ""), "blocks": p.get("blocks", []),
               "attachments": p.get("attachments", []), "user": self.bot_user_id,
               "bot_id": self.bot_id, "thread_ts": thread_ts,
               "reply_broadcast": bool(thread_ts) and _truthy(p.get("reply_broadcast")),
               "metadata": p.get("metadata"), "edited": None}
        if thread_ts and (root := self._find(channel, thread_ts)):
            root["thread_ts"] = thread_ts
            root["reply_count"] = root.get("reply_count", 0) + 1
        self._messages.setdefault(channel, []).append(msg)
        return {"channel": channel, "ts": msg["ts"], "message": copy.deepcopy(msg)}

    def _api_chat_update(self, p: dict) -> dict:
        msg = self._find(p.get("channel", ""), p.get("ts", ""))
        if msg is None:
            return {"error": "message_not_found"}
        if error := self._content_error(p):
            return error
        for key in ("text", "blocks", "attachments", "metadata"):  # omitted fields are kept
            if key in p:
                msg[key] = p[key]
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": msg["channel"], "ts": msg["ts"], "text": msg["text"],
                "message": copy.deepcopy(msg)}

    def _api_chat_postEphemeral(self, p: dict) -> dict:  # noqa: N802
        if p.get("channel") in self.channels_bot_cannot_post:
            return {"error": "not_in_channel"}
        if not p.get("user"):
            return {"error": "user_not_in_channel"}
        if error := self._content_error(p):
            return error
        eph = {"channel": p.get("channel"), "user": p["user"], "text": p.get("text", ""),
               "blocks": p.get("blocks", []), "thread_ts": p.get("thread_ts"),
               "ts": self._next_ts(), "via": "chat.postEphemeral"}
        self._ephemerals.append(eph)
        return {"message_ts": eph["ts"]}

    def _api_chat_getPermalink(self, p: dict) -> dict:  # noqa: N802
        channel, ts = p.get("channel") or "", p.get("message_ts") or ""
        if self._find(channel, ts) is None:
            return {"error": "message_not_found"}
        return {"channel": channel, "permalink": f"https://sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _apply_response(self, target: dict, body: dict) -> None:
        """What Slack does with a POST to a response_url (lock held)."""
        channel, original = target["channel"], self._find(target["channel"] or "", target["message_ts"] or "")
        if _truthy(body.get("delete_original")) and original:
            self._messages[channel].remove(original)
        elif _truthy(body.get("replace_original")) and original:  # a whole new message
            original.update({k: body.get(k, "" if k == "text" else []) for k in ("text", "blocks", "attachments")})
        elif body.get("response_type") == "in_channel" and channel:
            self._messages.setdefault(channel, []).append({
                "type": "message", "ts": self._next_ts(), "channel": channel,
                "text": body.get("text", ""), "blocks": body.get("blocks", []),
                "user": self.bot_user_id, "bot_id": self.bot_id, "edited": None,
                "thread_ts": body.get("thread_ts"), "reply_broadcast": False})
        else:
            self._ephemerals.append({"channel": channel, "user": target["user"],
                                     "text": body.get("text", ""), "blocks": body.get("blocks", []),
                                     "thread_ts": None, "ts": self._next_ts(), "via": "response_url"})
