"""The Slack Web API methods the local Slack answers (a mixin of
:class:`~offline.slack.fake.FakeSlack`, called with its lock held): messages, threads,
ephemerals, views, users, groups and conversations, strict where Slack is."""

from __future__ import annotations

import base64
import copy
import time
from typing import Any


JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata"})
TRIGGER_TTL_SECONDS = 3.0


def _truthy(value: Any) -> bool:
    return value in (True, 1) or str(value).lower() in ("true", "1", "yes")


def _block_problems(blocks: Any, max_blocks: int) -> list[str]:
    """The Block Kit limits Slack enforces and a plain dict would slip past."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = [f"{len(blocks)} blocks; at most {max_blocks}"] if len(blocks) > max_blocks else []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"block {i}: not an object")
            continue
        action_ids: set[str] = set()  # Slack wants action_ids unique within a block
        if block.get("block_id") in block_ids:
            problems.append(f"block {i}: duplicate block_id {block['block_id']!r}")
        block_ids.add(block.get("block_id"))
        block_ids.discard(None)
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if len(text) > 3000:
            problems.append(f"block {i}: section text is {len(text)} characters; at most 3000")
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if len(elements) > 25:
            problems.append(f"block {i}: {len(elements)} elements; at most 25")
        elements += [e for e in (block.get("accessory"), block.get("element")) if e]
        for el in (e for e in elements if isinstance(e, dict)):
            if el.get("type") == "button" and len((el.get("text") or {}).get("text", "")) > 75:
                problems.append(f"block {i}: button text over 75 characters")
            options = el.get("options") or []
            if len(options) > 100:
                problems.append(f"block {i}: {len(options)} options; at most 100")
            if any(len((o.get("text") or {}).get("text", "")) > 75 for o in options):
                problems.append(f"block {i}: option text over 75 characters")
            if el.get("action_id") in action_ids:
                problems.append(f"block {i}: duplicate action_id {el['action_id']!r}")
            if el.get("action_id"):
                action_ids.add(el["action_id"])
    return problems


class WebApiMethods:
    """``_api_<method>`` handlers and what they share; the state is FakeSlack's."""

    # -- the Web API (called with the lock held) ----------------------------------
    def _answer(self, method: str, p: dict, token: str | None) -> tuple[int, dict, dict]:
        if self._scripted.get(method):
            return self._scripted[method].pop(0)
        if self._every is not None and method in self._every[2]:
            self._every_count += 1
            if self._every_count % self._every[0] == 0:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self._every[1])}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        result = handler(p)
        result = {"ok": True, **result} if "error" not in result else {"ok": False, **result}
        # Slack reports a token's scopes on every Web API answer.
        return 200, result, {"x-oauth-scopes": ",".join(sorted(self.scopes))}

    def _next_ts(self) -> str:
        micros = 100 * next(self._seq)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _find(self, channel: str, ts: str) -> dict | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    def _content_error(self, p: dict) -> dict | None:
        if "blocks" in p and (problems := _block_problems(p["blocks"], 50)):
            return {"error": "invalid_blocks", "errors": problems}
        if len(p.get("text") or "") > 40000:
            return {"error": "msg_too_long"}
        return None

    def _api_auth_test(self, p: dict) -> dict:
        return {"url": "https://sandbox.slack.com/", "team": "Sandbox", "user": self.bot_name,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _api_apps_connections_open(self, p: dict) -> dict:
        """Socket Mode: a one-use WebSocket URL on the attached :class:`FakeSocketMode`."""
        server = getattr(self, "socket_mode", None)  # set by FakeSocketMode(fake)
        if server is None:
            return {"error": "fake_slack: no FakeSocketMode attached to this FakeSlack"}
        return {"url": server.new_url()}

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

    def _store_view(self, view: Any, view_id: str | None = None) -> dict:
        if not isinstance(view, dict):
            return {"error": "invalid_arguments", "errors": ["view must be an object"]}
        problems = _block_problems(view.get("blocks", []), 100)
        if len((view.get("title") or {}).get("text", "")) > 24:
            problems.append("title over 24 characters")
        if problems:
            return {"error": "invalid_arguments", "errors": problems}
        view_id = view_id or f"V{next(self._seq):08d}"
        stored = {"private_metadata": "", "callback_id": "", **copy.deepcopy(view), "id": view_id,
                  "team_id": self.team_id, "hash": f"{time.time():.6f}", "bot_id": self.bot_id}
        self._views[view_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _api_views_open(self, p: dict) -> dict:
        issued = self._triggers.get(p.get("trigger_id", ""))  # unknown triggers pass
        if issued == -1:
            return {"error": "exchanged_trigger_id"}
        if issued is not None and time.monotonic() - issued > TRIGGER_TTL_SECONDS:
            return {"error": "expired_trigger_id"}
        result = self._store_view(p.get("view"))
        if issued is not None and "view" in result:
            self._triggers[p["trigger_id"]] = -1
        return result

    def _api_views_update(self, p: dict) -> dict:
        view_id = p.get("view_id") or next(
            (v["id"] for v in self._views.values()
             if p.get("external_id") and v.get("external_id") == p["external_id"]), None)
        if view_id not in self._views:
            return {"error": "not_found"}
        return self._store_view(p.get("view"), view_id)

    def _api_views_publish(self, p: dict) -> dict:
        return self._store_view({**(p.get("view") or {}), "type": "home"}, f"VHOME{p.get('user_id')}")

    def _api_chat_getPermalink(self, p: dict) -> dict:  # noqa: N802
        channel, ts = p.get("channel") or "", p.get("message_ts") or ""
        if self._find(channel, ts) is None:
            return {"error": "message_not_found"}
        return {"channel": channel, "permalink": f"https://sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

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

    def _api_usergroups_users_list(self, p: dict) -> dict:
        if p.get("usergroup") not in self.usergroups:
            return {"error": "no_such_subteam"}
        return {"users": list(self.usergroups[p["usergroup"]])}

    def _api_users_info(self, p: dict) -> dict:
        uid = p.get("user") or ""
        if uid[:1] not in ("U", "W") or not uid.isalnum():
            return {"error": "user_not_found"}
        name = uid.lower()
        user = {"id": uid, "team_id": self.team_id, "name": name, "real_name": name.title(),
                "tz": "UTC", "tz_label": "Coordinated Universal Time", "tz_offset": 0,
                "is_bot": uid == self.bot_user_id, "deleted": False,
                "profile": {"display_name": name, "real_name": name.title()}}
        return {"user": {**user, **self.users.get(uid, {})}}

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

    def dm_channel(self, user: str) -> str | None:
        """The DM channel the bot opened with ``user``, if any."""
        with self._lock:
            return self._dms.get(user)

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
