"""Shared fixtures: the sandbox (moto plus AWS semantics), a local Slack, and the
real bot behind its real HTTP endpoint, spoken to with signed requests."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

import pytest

from offline.sandbox import Sandbox
from offline import rehearsal
from bot.app import Amibot
from offline.slack import FakeSlack, SignedSlackClient
from tests.postgres import pg_url, postgres_cluster, store_target  # noqa: F401  (fixtures)


# Seconds; AMIBOT_TEST_CONSISTENCY_DELAY=0 measures what the delay costs the suite.
SUITE_CONSISTENCY_DELAY = float(os.environ.get("AMIBOT_TEST_CONSISTENCY_DELAY", "0.3"))


@pytest.fixture(scope="session")
def sandbox_session():
    # Eventual consistency on, short: every new image, snapshot, instance and grant is
    # invisible for a moment, as in AWS, without slowing the suite much.
    sandbox = Sandbox(rehearsal.REGION, consistency_delay=SUITE_CONSISTENCY_DELAY)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_session):
    sandbox_session.reset()
    return sandbox_session


@pytest.fixture
def fake_slack():
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS, channels_bot_cannot_post={"G0PRIVATE"})
    fake.start()
    yield fake
    fake.stop()


@dataclass
class Harness:
    """The bot, the sandbox world and Slack's two sides, with helpers for the
    conversation steps tests repeat."""

    bot: Amibot
    world: rehearsal.SandboxWorld
    slack: SignedSlackClient
    fake: FakeSlack
    url: str
    clock: Clock
    channel: str = rehearsal.CHANNEL

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
            time.sleep(0.02)

    def ephemeral_for(self, user: str, after: int = 0, timeout: float = 10.0) -> str:
        found = self.fake.wait_for(lambda: self.fake.ephemerals(user)[after:] or None, timeout)
        return found[-1].get("text", "")


def has_decision_buttons(message: dict) -> bool:
    """Whether a card still shows Approve or Deny (View exact changes stays)."""
    return any(e.get("action_id") in ("amibot_approve", "amibot_deny")
               for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b.get("elements", []))


class Clock:
    """Wall time plus an offset the test moves forward (expiry, time-boxed shares)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def harness(request, sandbox, fake_slack, tmp_path, clock):
    world = rehearsal.seed(sandbox)
    # AMIBOT_TEST_DB=postgresql runs every harness test on a fresh real PostgreSQL database.
    db = request.getfixturevalue("pg_url") if os.environ.get("AMIBOT_TEST_DB") == "postgresql" else str(tmp_path / "amibot.db")
    config = rehearsal.sandbox_config(db, fake_slack.api_url, env={})
    # IAM enforcement: amibot's roles hold exactly what `amibot iam-policy` prints.
    rehearsal.enforce_generated_policies(sandbox, config)
    # The scheduler's own tick is off (tick_seconds=3600): tests call clockwork.tick().
    bot = Amibot(config, clock=clock, grant_wait_seconds=2, sleep=lambda s: time.sleep(min(s, 0.05)), tick_seconds=3600, notifier_poll_seconds=0.05, aws_max_attempts=4)
    bot.start()
    url = bot.start_http(port=0)
    slack = SignedSlackClient(url + "/slack/events", config.slack.signing_secret, fake_slack)
    yield Harness(bot=bot, world=world, slack=slack, fake=fake_slack, url=url, clock=clock)
    bot.stop()


@pytest.fixture
def bot_aws_calls(monkeypatch):
    """Every AWS API call the bot's worker threads make, as (service, Operation)."""
    import threading

    from botocore.client import BaseClient

    calls: list[tuple[str, str]] = []
    real = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if threading.current_thread().name.startswith("amibot-worker"):
            calls.append((self.meta.service_model.endpoint_prefix, operation_name))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls
