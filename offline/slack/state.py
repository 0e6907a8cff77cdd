"""What the fake Slack holds: the workspace it plays (bot identity, users, user groups,
channels the bot cannot post in, scopes) and what happened in it (calls, messages,
ephemerals, views, response_urls, triggers), with the helpers the Web API methods share.

Every ``_api_*`` method runs with ``_lock`` held (see :meth:`FakeSlack._handle`)."""

from __future__ import annotations

import itertools
import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable

from bot.slack_limits import SlackLimits
from bot.slack_scopes import OPTIONAL_BOT_SCOPES, REQUIRED_BOT_SCOPES

if TYPE_CHECKING:
    from offline.slack.server import SlackCall


class SlackState:
    """The state of one fake workspace; :class:`~offline.slack.server.FakeSlack` is built on it."""

    def __init__(self, *, bot_user_id: str = "UAMIBOT", bot_id: str = "BAMIBOT",
                 team_id: str = "T0SANDBOX", usergroups: dict[str, list[str]] | None = None,
                 channels_bot_cannot_post: set[str] | frozenset[str] = frozenset(),
                 users: dict[str, dict] | None = None,
                 channel_members: dict[str, list[str]] | None = None, bot_name: str = "amibot",
                 public_channels_not_joined: set[str] | frozenset[str] = frozenset(),
                 archived_channels: set[str] | frozenset[str] = frozenset(),
                 unknown_channels: set[str] | frozenset[str] = frozenset(),
                 scopes: set[str] | frozenset[str] | None = None, clock: Callable[[], float] = time.monotonic):
        self.bot_user_id, self.bot_id, self.team_id = bot_user_id, bot_id, team_id
        self.clock = clock  # what trigger_ids expire by (the test's Clock in the harness)
        # auth.test answers with the ids the signed client's payloads carry (the app's
        # id, and an enterprise id for an Enterprise Grid workspace: None here).
        self.app_id, self.enterprise_id = "A0AMIBOT", None
        self.bot_name = bot_name
        self.usergroups = dict(usergroups or {})
        self.channels_bot_cannot_post = set(channels_bot_cannot_post)
        # Public channels the bot is not in: posting is not_in_channel until conversations.join
        # (which needs the channels:join scope).
        self.public_channels_not_joined = set(public_channels_not_joined)
        self.archived_channels = set(archived_channels)  # posting: is_archived
        self.unknown_channels = set(unknown_channels)  # posting, info: channel_not_found
        # The bot token's scopes: reported in x-oauth-scopes (amibot doctor) and checked
        # by the methods that need one (missing_scope); tests remove one to see it noticed.
        self.scopes: set[str] = set(scopes) if scopes is not None else set(REQUIRED_BOT_SCOPES) | set(OPTIONAL_BOT_SCOPES)
        # None: any token works; else other tokens get invalid_auth (a revoked token).
        self.accepted_tokens: set[str] | None = None
        self._dms: dict[str, str] = {}  # user id -> D... channel opened with conversations.open
        self.users = dict(users or {})  # user id -> fields overriding users.info defaults
        # channel -> member user ids (conversations.members); other channels: channel_not_found
        self.channel_members = {c: list(m) for c, m in (channel_members or {}).items()}
        self._every: tuple[int, int, frozenset[str]] | None = None  # see rate_limit_every
        self._every_count = 0
        # Slack's published rate limits (bot.slack_limits.LIMITS), enforced: a call over
        # one is answered 429 with Retry-After. ``enforce_limits = False`` turns it off.
        self.enforce_limits = True
        self.limits = SlackLimits(time.time)
        self._lock = threading.RLock()
        self._calls: list[SlackCall] = []
        self._responses: list[SlackCall] = []
        self._messages: dict[str, list[dict]] = {}  # channel -> messages in posting order
        self._ephemerals: list[dict] = []
        self._views: dict[str, dict] = {}
        self._files: dict[str, dict] = {}  # file id -> upload record (files.*)
        self._upload_paths: dict[str, str] = {}  # one-use upload URL path -> file id
        self._scripted: dict[str, list[tuple[int, dict, dict]]] = {}
        self._response_urls: dict[str, dict] = {}  # path -> {"channel", "message_ts", "user"}
        self._triggers: dict[str, float] = {}  # trigger_id -> issued at (self.clock()); -1 once used
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    def use_clock(self, clock) -> None:
        """Count the rate limits on ``clock`` (the test's), not on real time."""
        with self._lock:
            self.limits = SlackLimits(clock)

    def _next_ts(self) -> str:
        micros = 100 * next(self._seq)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _find(self, channel: str, ts: str) -> dict | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)
