"""The ``views.*`` methods of the fake Slack (modals and the App Home) and the
``trigger_id``\\ s it issues, each good once within :data:`TRIGGER_TTL_SECONDS` of the
fake's clock (the test clock when given one).

What Slack enforces and this fake too (https://api.slack.com/methods/views.update,
https://api.slack.com/methods/views.open, https://docs.slack.dev/reference/views/modal-views):
every stored view gets a new ``hash``; a ``views.update`` whose ``hash`` is not the view's
current one fails ``hash_conflict`` (two updates racing: the later one is refused); at
most 100 blocks; title, close and submit at most 24 characters, ``private_metadata`` 3000,
``callback_id`` 255; a modal with inputs needs ``submit``; an
``initial_option`` must be one of the element's options; an unknown ``view_id``
is ``not_found``; a ``trigger_id`` is good once (``exchanged_trigger_id``), for 3 s
(``expired_trigger_id``)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from offline.slack.blocks import _block_problems
from offline.slack.state import SlackState

TRIGGER_TTL_SECONDS = 3.0


class ViewsApi(SlackState):
    """Views: opened, updated and published, with Slack's limits on their blocks and title."""

    @property
    def views(self) -> dict[str, dict]:
        """Views opened, updated or published, by view id (latest version)."""
        with self._lock:
            return copy.deepcopy(self._views)

    def new_trigger_id(self) -> str:
        """A trigger_id that views.open accepts once, within 3 s."""
        trigger = f"{next(self._seq)}.{self.team_id[1:]}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = self.clock()
        return trigger

    # -- the Web API (called with the lock held) ----------------------------------
    def _store_view(self, view: Any, view_id: str | None = None) -> dict:
        if not isinstance(view, dict):
            return {"error": "invalid_arguments", "errors": ["view must be an object"]}
        problems = _block_problems(view.get("blocks", []), 100)
        for part in ("title", "close", "submit"):
            if len((view.get(part) or {}).get("text", "")) > 24:
                problems.append(f"{part} over 24 characters")
        if len(view.get("private_metadata") or "") > 3000:
            problems.append("private_metadata over 3000 characters")
        if len(view.get("callback_id") or "") > 255:
            problems.append("callback_id over 255 characters")
        if view.get("type") == "modal" and not view.get("submit") and any(
                isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []):
            problems.append("a modal with input blocks needs submit")
        if problems:
            return {"error": "invalid_arguments", "errors": problems}
        view_id = view_id or f"V{next(self._seq):08d}"
        stored = {"private_metadata": "", "callback_id": "", **copy.deepcopy(view), "id": view_id,
                  "team_id": self.team_id, "hash": f"{self.clock():.6f}.{next(self._seq)}", "bot_id": self.bot_id}
        self._views[view_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _api_views_open(self, p: dict) -> dict:
        issued = self._triggers.get(p.get("trigger_id", ""))  # unknown triggers pass
        if issued == -1:
            return {"error": "exchanged_trigger_id"}
        if issued is not None and self.clock() - issued > TRIGGER_TTL_SECONDS:
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
        if p.get("hash") and p["hash"] != self._views[view_id]["hash"]:
            return {"error": "hash_conflict"}
        return self._store_view(p.get("view"), view_id)

    def _api_views_publish(self, p: dict) -> dict:
        return self._store_view({**(p.get("view") or {}), "type": "home"}, f"VHOME{p.get('user_id')}")
