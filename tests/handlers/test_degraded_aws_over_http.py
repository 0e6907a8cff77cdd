"""When AWS is degraded, the requester still hears (over the real HTTP endpoint, with
faults injected in the sandbox so botocore's real retry logic runs).

The interactive preflight has its own short AWS budget (aws.sessions: few attempts,
short timeouts, a deadline): the requester is told AWS is slow after
``preflight_slow_seconds`` (8 s in production; short here) and gets a plain failure
with AWS's words; the steps after approval keep the full budget.
"""

from __future__ import annotations


import pytest

from aws.sessions import PREFLIGHT_MAX_ATTEMPTS, preflight_deadline
from bot.requests import SUCCEEDED
from offline import rehearsal
from offline.stack import offline_stack
from tests.conftest import bot_options

FULL_BUDGET = 6  # the steps' attempts in this harness (production: 8)


@pytest.fixture
def degraded(sandbox, fake_slack, tmp_path, clock):
    options = bot_options(clock, aws_max_attempts=FULL_BUDGET, preflight_slow_seconds=0.3)
    with offline_stack(sandbox=sandbox, fake=fake_slack, db=str(tmp_path / "amibot.db"), enforce_iam=False, **options) as stack:
        yield stack


def texts(harness, user: str = rehearsal.REQUESTER) -> list[str]:
    return [e.get("text", "") for e in harness.fake.ephemerals(user)]


def test_a_throttled_preflight_tells_the_requester_it_is_slow_then_fails_with_aws_words(degraded):
    sandbox = degraded.world.sandbox
    # AWS keeps throttling DescribeImages, slowly (each answer takes 0.3 s).
    sandbox.inject_fault("DescribeImages", "RequestLimitExceeded", times=100, status=503, message="Request limit exceeded.", delay=0.3)
    assert degraded.slash(f"share {degraded.world.encrypted_image} from prod to dev").status == 200
    failure = degraded.fake.wait_for(lambda: next((t for t in texts(degraded) if ":no_entry:" in t), None), 60)
    degraded.settle()
    said = texts(degraded)
    assert any("AWS is answering slowly, still checking" in t for t in said), said
    assert "RequestLimitExceeded" in failure and "Request limit exceeded." in failure
    # The short budget, not the steps' full one: the requester is not kept waiting
    # (botocore's max_attempts counts retries: one call plus that many).
    assert sandbox.calls("DescribeImages") == PREFLIGHT_MAX_ATTEMPTS + 1
    assert degraded.bot.store.find() == []


def test_steps_after_approval_keep_the_full_budget(degraded):
    sandbox = degraded.world.sandbox
    root_text = f"share {degraded.world.plain_image} from prod to dev"
    assert degraded.slash(root_text).status == 200
    root = degraded.root_for(f"share {degraded.world.plain_image}")
    # More throttling than the preflight budget allows, less than the steps'.
    sandbox.inject_fault("ModifyImageAttribute", "RequestLimitExceeded", times=PREFLIGHT_MAX_ATTEMPTS + 1, status=503)
    degraded.click(rehearsal.OWNER, root)
    final = degraded.final_reply(root, timeout=60)
    degraded.settle()
    assert degraded.bot.store.get(1).state == SUCCEEDED, final["text"]
    assert sandbox.calls("ModifyImageAttribute") == PREFLIGHT_MAX_ATTEMPTS + 2  # the faults, then success


def test_the_preflight_deadline_stops_retries_and_keeps_aws_words(sandbox):
    from aws.sessions import AccountAccess, AwsSessions, PreflightTimeout

    sessions = AwsSessions({rehearsal.PROD: AccountAccess(rehearsal.PROD, f"arn:aws:iam::{rehearsal.PROD}:role/amibot")})
    client = sessions.client("ec2", rehearsal.PROD, rehearsal.REGION, "preflight-test")
    sandbox.inject_fault("DescribeImages", "RequestLimitExceeded", times=100, status=503, message="Request limit exceeded.")
    with preflight_deadline(0.0), pytest.raises(PreflightTimeout):
        client.describe_images(Owners=["self"])
    # The deadline stopped the retries: AWS was asked once, not the whole budget.
    assert sandbox.calls("DescribeImages") == 1
    # A step's client (any other tag) has no deadline and the full budget.
    step_client = sessions.client("ec2", rehearsal.PROD, rehearsal.REGION, "R-1-x")
    assert step_client.meta.config.retries["total_max_attempts"] > client.meta.config.retries["total_max_attempts"]
