"""Shared fixtures: the sandbox (moto plus AWS semantics), a local Slack, and the
real bot behind its real HTTP endpoint, spoken to with signed requests."""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

import pytest

from offline import rehearsal
from offline.clock import Clock
from offline.sandbox import Sandbox
from offline.slack import FakeSlack
from offline.stack import OfflineStack as Harness  # noqa: F401  (tests import it from here)
from offline.stack import offline_stack
from tests.postgres import pg_url, postgres_cluster, store_target  # noqa: F401  (fixtures)


# Seconds; AMIBOT_TEST_CONSISTENCY_DELAY=0 measures what the delay costs the suite.
SUITE_CONSISTENCY_DELAY = float(os.environ.get("AMIBOT_TEST_CONSISTENCY_DELAY", "0.3"))


@pytest.fixture(scope="session")
def sandbox_session():
    # Eventual consistency on, short: every new image, snapshot, instance and grant is
    # invisible for a moment, as in AWS, without slowing the suite much.
    # The permission lag and status-check delay are off here (they would stall tests
    # that do not move their clock); tests of them turn them on (test_sandbox_lags.py).
    sandbox = Sandbox(rehearsal.REGION, consistency_delay=SUITE_CONSISTENCY_DELAY, permission_delay=0, status_check_delay=0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_session, clock):
    """The session's sandbox, reset, on the test's clock: a consistency window or a
    grant delay ends when the test moves its clock (or that much real time passes)."""
    sandbox_session.reset()
    sandbox_session.use_clock(clock)
    return sandbox_session


@pytest.fixture
def fake_slack(clock):
    # Its trigger_ids expire 3 s after the click that issued them, counted only as the
    # test moves its clock (clock.advance): a CI run once stalled several seconds of wall
    # time between a click and the bot's views.open, and the modal was refused.
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS, channels_bot_cannot_post={"G0PRIVATE"}, clock=lambda: clock.offset)
    fake.start()
    yield fake
    fake.stop()


def has_decision_buttons(message: dict) -> bool:
    """Whether a card still shows Approve or Deny (View exact changes stays)."""
    return any(e.get("action_id") in ("amibot_approve", "amibot_deny")
               for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b.get("elements", []))


@pytest.fixture
def clock():
    """The test's clock: the bot's time and the sandbox's, moved by ``clock.advance``."""
    return Clock()


def bot_options(clock: Clock, **changes: Any) -> dict[str, Any]:
    """How the tests run the bot: on the test clock; its sleeps capped at 50 ms (a
    retry's backoff is not waited out); no scheduler thread of its own
    (``tick_seconds=3600``: tests call ``clockwork.tick()``); a short outbox poll."""
    return {"clock": clock, "grant_wait_seconds": 2, "sleep": lambda s: time.sleep(min(s, 0.05)), "tick_seconds": 3600,
            "notifier_poll_seconds": 0.05, "aws_max_attempts": 4,
            # "AWS is answering slowly" is said after this many seconds of wall time: on
            # a loaded machine a preflight took 8 s once and a test read that notice in
            # place of its answer. Its own test sets it short (test_degraded_aws_over_http).
            "preflight_slow_seconds": 120.0, **changes}


@pytest.fixture
def harness(request, sandbox, fake_slack, tmp_path, clock):
    """The offline stack (offline.stack) on the session's sandbox, this test's local
    Slack and clock; amibot's roles hold exactly what `amibot iam-policy` prints."""
    # AMIBOT_TEST_DB=postgresql runs every harness test on a fresh real PostgreSQL database.
    db = request.getfixturevalue("pg_url") if os.environ.get("AMIBOT_TEST_DB") == "postgresql" else str(tmp_path / "amibot.db")
    fake_slack.use_clock(clock)  # Slack's rate limits count on the test's clock, as the bot's pacing does
    with offline_stack(sandbox=sandbox, fake=fake_slack, db=db, **bot_options(clock)) as stack:
        yield stack


@pytest.fixture(autouse=True)
def botocore_backoff_shortened(monkeypatch):
    """botocore's standard retry mode backs off up to 20 s between attempts on a
    throttle. The tests keep its retries, their count and order, and AWS's errors;
    only the waits are a hundredth as long."""
    from botocore.retries.standard import ExponentialBackoff

    real = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: real(self, context) / 100)


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
