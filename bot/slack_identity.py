"""Which Slack workspace and app the bot serves, and refusing payloads from any other
(issue 17, finding 9).

A payload signed with the app's signing secret can still claim another team or
enterprise (the secret is per app, and a leaked or shared one signs anything). The bot
asks Slack once at start who its token is (``auth.test``: ``team_id``,
``enterprise_id`` on Enterprise Grid, ``app_id``) and compares every payload's
``team.id`` / ``enterprise.id`` / ``api_app_id`` with it:

- a workspace install: the team must be the token's team (and the enterprise, when
  the payload names one, the token's enterprise);
- an Enterprise Grid org-wide install (``bot.slack_org_wide = true``): payloads come
  from every workspace of the organisation: the enterprise must be the token's;
- the app: ``api_app_id``, when the payload has one (a global shortcut's has none),
  must be ``bot.slack_app_id`` when configured, else the ``app_id`` auth.test reported.

When Slack could not be asked at start, the first payload asks again (at most every
30 s); until it answers, payloads are refused (503): nothing is trusted unchecked.
auth.test: https://docs.slack.dev/reference/methods/auth.test
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("amibot.identity")

RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class PayloadIds:
    """The ids a payload claims."""

    team_id: str | None
    enterprise_id: str | None
    app_id: str | None


class IdentityUnknown(Exception):
    """Slack has not told the bot who it is yet."""


class SlackIdentity:
    """The bot's own team, enterprise and app, learnt from ``auth.test`` once."""

    def __init__(self, auth_test: Callable[[], Any], *, app_id: str | None = None, org_wide: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self._auth_test = auth_test
        self.configured_app_id = app_id
        self.org_wide = org_wide
        self.clock = clock
        self._known: dict[str, str | None] | None = None
        self._asked_at: float | None = None
        self._lock = threading.Lock()

    def learn(self) -> bool:
        """Ask ``auth.test``; False (and logged) when Slack did not answer."""
        with self._lock:
            self._asked_at = self.clock()
            try:
                answer = self._auth_test()
            except Exception as error:  # slack_sdk errors, connection errors
                log.warning("auth.test failed (%s): payloads are refused until Slack answers", type(error).__name__)
                return False
            self._known = {"team_id": answer.get("team_id"), "enterprise_id": answer.get("enterprise_id"), "app_id": answer.get("app_id")}
            log.info("serving team %s enterprise %s app %s", self._known["team_id"], self._known["enterprise_id"] or "-", self.app_id or "-")
            return True

    @property
    def app_id(self) -> str | None:
        return self.configured_app_id or (self._known or {}).get("app_id")

    def _ensure(self) -> dict[str, str | None]:
        if self._known is None and (self._asked_at is None or self.clock() - self._asked_at >= RETRY_SECONDS):
            self.learn()
        if self._known is None:
            raise IdentityUnknown("Slack has not confirmed the bot's workspace yet (auth.test)")
        return self._known

    def problem(self, ids: PayloadIds) -> str | None:
        """Why a payload claiming ``ids`` is not for this bot, or None. Raises
        :class:`IdentityUnknown` while auth.test has not answered."""
        known = self._ensure()
        # Global shortcuts carry no api_app_id (Slack's shortcut payload): compared when present.
        if self.app_id and ids.app_id is not None and ids.app_id != self.app_id:
            return "api_app_id is not this app's"
        if ids.enterprise_id is not None and ids.enterprise_id != known["enterprise_id"]:
            return "enterprise is not this app's"
        if self.org_wide:
            if known["enterprise_id"] and ids.enterprise_id != known["enterprise_id"]:
                return "enterprise is not this app's (org-wide install)"
            return None
        if ids.team_id != known["team_id"]:
            return "team is not this app's workspace"
        return None


def payload_ids(kind: str, value: Any) -> PayloadIds:
    """The ids a parsed body claims: ``kind`` is ``form`` (slash command fields, lists
    as ``parse_qs`` gives), ``payload`` (an interaction) or ``body`` (Events API)."""
    if kind == "form":
        def first(key: str) -> str | None:
            return (value.get(key) or [None])[0] or None
        return PayloadIds(first("team_id"), first("enterprise_id"), first("api_app_id"))
    if kind == "payload":
        team = value.get("team") if isinstance(value.get("team"), dict) else {}
        enterprise = value.get("enterprise") if isinstance(value.get("enterprise"), dict) else {}
        user = value.get("user") if isinstance(value.get("user"), dict) else {}
        return PayloadIds(team.get("id") or user.get("team_id"), enterprise.get("id"), value.get("api_app_id"))
    return PayloadIds(value.get("team_id"), value.get("enterprise_id"), value.get("api_app_id"))
