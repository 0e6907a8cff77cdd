"""aws/sessions.py: throttling is botocore's job, and every AssumeRole names the
request so CloudTrail in the member account shows who made each change."""

from __future__ import annotations

import re

import pytest
from botocore.retries.standard import ExponentialBackoff

from aws.actions import SHARE_GRANT_OPERATIONS, account_root
from aws.sessions import RETRY_CONFIG, AccountAccess, AwsSessions, session_name

PROD = "111111111111"
DEV = "222222222222"
REGION = "us-east-1"
TAG = "R-17-0123456789abcdef"
# STS: RoleSessionName is 2-64 characters of [\w+=,.@-], ASCII.
VALID_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")


@pytest.fixture
def sessions(sandbox):
    return AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)})


@pytest.fixture
def backoff_delays(monkeypatch):
    """The delays botocore's standard retry mode chose, without sleeping them."""
    delays: list[float] = []
    real = ExponentialBackoff.delay_amount

    def record(self, context):
        delays.append(real(self, context))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", record)
    return delays


def test_clients_use_botocores_standard_retry_mode(sessions):
    client = sessions.client("ec2", PROD, REGION, TAG)
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] > 4
    assert RETRY_CONFIG.retries["mode"] in ("standard", "adaptive")


def test_throttled_modify_image_attribute_goes_through_after_retries(sandbox, sessions, backoff_delays):
    image = sandbox.create_image(PROD, REGION)
    ec2 = sessions.client("ec2", PROD, REGION, TAG)
    sandbox.inject_fault("ModifyImageAttribute", "RequestLimitExceeded", times=3)

    response = ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})

    assert sandbox.calls("ModifyImageAttribute", PROD) == 4, "three throttled attempts, then the one that got through"
    assert response["ResponseMetadata"]["RetryAttempts"] == 3
    assert len(backoff_delays) == 3 and all(d >= 0 for d in backoff_delays), "botocore backed off before each retry"
    permissions = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert permissions == [{"UserId": DEV}], "the change was made exactly once"


def test_throttled_kms_call_goes_through_after_retries(sandbox, sessions, backoff_delays):
    key = sandbox.create_key(PROD, REGION)
    kms = sessions.client("kms", PROD, REGION, TAG)
    sandbox.inject_fault("CreateGrant", "ThrottlingException", times=2, status=400, message="Rate exceeded")

    grant = kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=list(SHARE_GRANT_OPERATIONS), Name="amibot-test")

    assert grant["GrantId"] and sandbox.calls("CreateGrant") == 3
    # Seen as it is (the bot's own ListGrants may not list a new grant yet).
    assert len(sandbox.client("kms", PROD, REGION).list_grants(KeyId=key)["Grants"]) == 1


def test_assume_role_session_name_carries_the_request_tag(sandbox, sessions):
    identity = sessions.client("sts", DEV, REGION, TAG).get_caller_identity()

    assert identity["Account"] == DEV
    assumed = identity["Arn"].rsplit("/", 1)[-1]
    assert assumed == f"amibot-{TAG}"
    assert VALID_SESSION_NAME.fullmatch(assumed)


def test_sessions_are_per_tag(sandbox, sessions):
    first = sessions.client("sts", DEV, REGION, "R-1-aaaa").get_caller_identity()["Arn"]
    second = sessions.client("sts", DEV, REGION, "R-2-bbbb").get_caller_identity()["Arn"]
    assert first.endswith("/amibot-R-1-aaaa") and second.endswith("/amibot-R-2-bbbb")


@pytest.mark.parametrize(
    "tag",
    [
        TAG,
        "R-123456-" + "f" * 64,  # too long: cut to 64
        "R-9 from Zoë's form/ü:x",  # spaces, slashes, colons, non-ASCII letters
        "",
    ],
)
def test_session_name_is_valid_for_sts(tag):
    name = session_name(tag)
    assert VALID_SESSION_NAME.fullmatch(name), name
    assert name.startswith("amibot-")
    assert name == session_name(tag), "stable: the same request always gets the same name"
    if tag == TAG:
        assert TAG in name
