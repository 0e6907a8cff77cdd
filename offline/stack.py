"""The whole offline stack: the sandbox (moto plus AWS semantics), a local Slack, and
the real bot behind its real HTTP endpoint, spoken to with requests signed as Slack
signs them. One construction path for the demo, the benchmarks and the tests'
``harness`` fixture, with the conversation steps they repeat."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from bot.app import Amibot
from bot.config import Config, parse_config
from offline import rehearsal
from offline.sandbox import Sandbox
from offline.slack import FakeSlack, SignedSlackClient


@dataclass
class OfflineStack:
    """The bot, the sandbox world and Slack's two sides, with helpers for the
    conversation steps tests repeat."""

    bot: Amibot
    world: rehearsal.SandboxWorld
    slack: SignedSlackClient
    fake: FakeSlack
    url: str
    clock: Callable[[], float]
    channel: str = rehearsal.CHANNEL
    admin_url: str = ""  # the admin listener: /metrics and the detailed /healthz (issue 17)

    @property
    def sandbox(self) -> Sandbox:
        return self.world.sandbox

    @property
    def config(self) -> Config:
        return self.bot.config

    def tick(self) -> None:
        """One scheduler tick, then wait for what it started."""
        self.bot.clockwork.tick()
        self.settle()

    def slash(self, text: str, user: str = rehearsal.REQUESTER, channel: str | None = None):
        return self.slack.slash(user, channel or self.channel, text)

    def root_for(self, needle: str, timeout: float = 15.0) -> dict:
        return self.fake.wait_for(
            lambda: next((m for m in self.fake.messages(self.channel) if needle in (m.get("text") or "") and not m.get("thread_ts") or needle in (m.get("text") or "") and m.get("thread_ts") == m.get("ts")), None),
            timeout,
        )

    def request_id(self, root: dict) -> str:
        return root["text"].split(":")[0]

    def click(self, user: str, root: dict, action: str = "amibot_approve"):
        return self.slack.click(user, self.channel, root["ts"], action, self.request_id(root))

    def final_reply(self, root: dict, timeout: float = 20.0) -> dict:
        return self.fake.wait_for(lambda: next((m for m in self.fake.thread(self.channel, root["ts"]) if m.get("reply_broadcast")), None), timeout)

    def exact_changes(self, root: dict, user: str = rehearsal.OWNER, channel: str | None = None) -> str:
        """Click "View exact changes" on a card and return the text of the modal it opens."""
        request_id = self.request_id(root)
        seen = {v for v, view in self.fake.views.items() if view.get("callback_id") == "amibot_exact_changes"}
        self.slack.click(user, channel or self.channel, root["ts"], "amibot_view_changes", request_id)
        view = self.fake.wait_for(lambda: next((view for v, view in self.fake.views.items()
                                                if v not in seen and view.get("callback_id") == "amibot_exact_changes"
                                                and view.get("private_metadata") == request_id), None))
        return "\n".join(b["text"]["text"] for b in view["blocks"] if b.get("type") == "section")

    def settle(self) -> None:
        """Wait until the listeners (clicks are acknowledged before they are handled)
        and the worker are idle and the outbox is empty."""
        self.bot.listeners.drain()
        self.bot.worker.drain()
        self.bot.listeners.drain()
        deadline = time.monotonic() + 10
        while self.bot.notifier.pending_count() and time.monotonic() < deadline:
            self.bot.notifier.flush()
            # Rows held back by Slack's pacing (a post a second per channel) go when the
            # test clock says so: drive it there rather than wait in real time.
            paced = self.bot.notifier.paced_until()
            if paced is not None and hasattr(self.clock, "advance") and paced > self.clock():
                self.clock.advance(min(paced - self.clock(), 5.0))
            else:
                time.sleep(0.02)

    def ephemeral_for(self, user: str, after: int = 0, timeout: float = 10.0) -> str:
        found = self.fake.wait_for(lambda: self.fake.ephemerals(user)[after:] or None, timeout)
        return found[-1].get("text", "")


def without_rate_limit(config: Config) -> Config:
    """``config`` with the per-user limit on commands that call AWS at its maximum: the
    benchmarks play hundreds of requests from one user to measure the bot, not the
    limit (issue 17's ``bot.aws_commands_per_minute``)."""
    import dataclasses

    return dataclasses.replace(config, bot=dataclasses.replace(config.bot, aws_commands_per_minute=600))


def start_stack(sandbox: Sandbox, fake: FakeSlack, db: str, *, toml: str = rehearsal.SANDBOX_TOML, env: dict[str, str] | None = None,
                configure: Callable[[Config], Config] | None = None, enforce_iam: bool = True, **bot_options: Any) -> OfflineStack:
    """Seed the sandbox world and start the bot on a free port, on ``db``; the caller
    stops it (``stack.bot.stop()``).

    ``toml`` is the config, ``env`` adds to its environment and ``configure`` changes
    the parsed config; ``enforce_iam`` holds amibot's roles to exactly what
    ``amibot iam-policy`` prints. ``bot_options`` go to :class:`~bot.app.Amibot`
    (``clock``, ``sleep``, ``tick_seconds``…)."""
    world = rehearsal.seed(sandbox)
    environment = {"AMIBOT_DB": db, "SLACK_API_URL": fake.api_url, "SLACK_BOT_TOKEN": "xoxb-sandbox",
                   "SLACK_SIGNING_SECRET": secrets.token_hex(16), **(env or {})}
    config = parse_config(toml, environment, source="<offline stack>")
    if configure is not None:
        config = configure(config)
    if enforce_iam:
        rehearsal.enforce_generated_policies(sandbox, config)
    if "clock" in bot_options:
        # One clock: Slack's rate limits count on the bot's clock, as its pacing does
        # (on real time the fake would refuse what the bot, on the test clock, sends).
        fake.use_clock(bot_options["clock"])
    bot = Amibot(config, **bot_options)
    bot.start()
    try:
        url = bot.start_http(port=0)
        admin_url = bot.start_admin_http(port=0)
    except BaseException:
        bot.stop()
        raise
    slack = SignedSlackClient(url + "/slack/events", config.slack.signing_secret, fake, command=config.bot.command)
    return OfflineStack(bot=bot, world=world, slack=slack, fake=fake, url=url, clock=bot_options.get("clock", time.time), admin_url=admin_url)


@contextmanager
def offline_stack(*, sandbox: Sandbox | None = None, fake: FakeSlack | None = None, db: str | None = None,
                  **options: Any) -> Iterator[OfflineStack]:
    """:func:`start_stack` as a context: what is not given is started here (a
    sandbox on real time, a local Slack, a database in a temporary directory), and
    everything started here is stopped afterwards. ``options`` as for
    :func:`start_stack`."""
    with ExitStack() as started:
        if sandbox is None:
            sandbox = Sandbox(rehearsal.REGION)
            sandbox.start()
            started.callback(sandbox.stop)
        if fake is None:
            fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
            fake.start()
            started.callback(fake.stop)
        if db is None:
            db = os.path.join(started.enter_context(tempfile.TemporaryDirectory()), "amibot.db")
        stack = start_stack(sandbox, fake, db, **options)
        started.callback(stack.bot.stop)
        yield stack
