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


# -- the session cache is bounded; own credentials are checked -----------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_session_cache_is_bounded_and_least_recently_used_goes(sandbox):
    import gc

    growth = {}
    caches = {}
    # Measured with 60 requests: RSS +20 MiB unbounded (about 340 KiB a request), +5 MiB
    # with max_sessions=8. Kept small here: each new role session costs about a second of CPU.
    for name, limit in (("unbounded", 10**6), ("bounded", 4)):
        sessions = AwsSessions({PROD: AccountAccess(PROD, f"arn:aws:iam::{PROD}:role/amibot")}, max_sessions=limit)
        sessions.client("ec2", PROD, REGION, "warm-up").describe_images(Owners=["self"])
        gc.collect()
        before = _rss_kib()
        for number in range(12):  # one role session per request, as the worker makes them
            sessions.client("ec2", PROD, REGION, f"R-{number}-0123456789abcdef").describe_images(Owners=["self"])
        gc.collect()
        growth[name] = _rss_kib() - before
        caches[name] = sessions
    print(f"\n12 requests: RSS +{growth['unbounded']} KiB with an unbounded session cache, "
          f"+{growth['bounded']} KiB with max_sessions=4")
    bounded = caches["bounded"]
    assert bounded.cached_sessions() == 4
    assert caches["unbounded"].cached_sessions() == 13
    first = bounded.session(PROD, "R-11-0123456789abcdef")
    assert bounded.session(PROD, "R-11-0123456789abcdef") is first  # recently used: still cached
    assert bounded.session(PROD, "R-0-0123456789abcdef") is not first  # dropped long ago: assumed again


def test_session_is_replaced_before_its_credentials_expire(sandbox):
    now = [0.0]
    import time as _time

    sessions = AwsSessions({PROD: AccountAccess(PROD, f"arn:aws:iam::{PROD}:role/amibot")}, clock=lambda: _time.time() + now[0])
    first = sessions.session(PROD, TAG)
    assert sessions.session(PROD, TAG) is first
    now[0] = 55 * 60  # STS credentials last an hour; the session is replaced 10 minutes before
    assert sessions.session(PROD, TAG) is not first


def test_account_without_role_must_be_the_credentials_account(sandbox):
    from aws.errors import AwsFailure

    own = "123456789012"  # the sandbox's default credentials belong to this account
    sessions = AwsSessions({PROD: AccountAccess(PROD), own: AccountAccess(own)})
    assert sessions.client("sts", own, REGION).get_caller_identity()["Account"] == own
    with pytest.raises(AwsFailure) as failure:
        sessions.client("ec2", PROD, REGION)
    assert "role_arn" in failure.value.plain() and own in failure.value.plain() and PROD in failure.value.plain()


def test_threads_asking_for_the_same_session_at_once_assume_the_role_once(sandbox, sessions):
    import threading

    before = sandbox.calls("AssumeRole")
    start = threading.Barrier(6, timeout=10)
    clients = []

    def ask():
        start.wait()
        clients.append(sessions.client("ec2", DEV, REGION, "preflight-R-5-feed"))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sandbox.calls("AssumeRole") - before == 1, "one AssumeRole for the request's phase, however many reads ask at once"
    assert len({id(c) for c in clients}) == 1, "one client per session, service and region"
    sessions.client("ec2", DEV, REGION, "R-5-feed")
    assert sandbox.calls("AssumeRole") - before == 2, "the next phase (execution) has its own session"
