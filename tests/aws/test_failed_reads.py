"""A failed or lagging read is never an answer (issue 15): what a throttled, a 5xx or
a not-found read means is decided in one place (``aws.errors.read_outcome``), and an
image being waited on is declared gone only after several not-found answers past its
consistency window, never because AWS throttled."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from aws.actions import StepContext, StepWaiting, get_action
from aws.actions.images import poll_images
from aws.actions.visibility import MISSES_BEFORE_GONE
from aws.errors import FAILED, MISSING, RETRY, AwsFailure, read_outcome
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, SRC = rehearsal.PROD, rehearsal.REGION


def client_error(code: str, status: int = 400, operation: str = "DescribeImages") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize("error, outcome", [
    (client_error("InvalidAMIID.NotFound"), MISSING),
    (client_error("InvalidAMIID.Unavailable"), MISSING),
    (client_error("RequestLimitExceeded", 503), RETRY),
    (client_error("ThrottlingException"), RETRY),
    (client_error("", 500), RETRY),  # a 500 without an error body
    (ConnectionClosedError(endpoint_url="https://ec2"), RETRY),
    (client_error("InvalidAMIID.Malformed"), FAILED),
    (client_error("AccessDenied", 403), FAILED),
])
def test_what_a_failed_read_means_is_decided_in_one_place(error, outcome):
    assert read_outcome(error) == outcome


class StubEc2:
    """DescribeImages answering per id: an image, NotFound, or a throttle."""

    def __init__(self, answers: dict[str, Any]):
        self.answers = answers

    def describe_images(self, ImageIds):  # noqa: N803 (boto3's spelling)
        for image_id in ImageIds:
            if isinstance(self.answers[image_id], Exception):
                raise self.answers[image_id]
        return {"Images": [self.answers[i] for i in ImageIds]}

    def describe_snapshots(self, SnapshotIds):  # noqa: N803
        return {"Snapshots": []}


def test_a_throttle_in_the_one_by_one_fallback_is_no_answer_not_missing():
    """One unknown id makes the batch fall back to one call per image; a throttled one
    is ``unreadable`` (ask again), not ``missing`` (which ends the copy and undoes it)."""
    ec2 = StubEc2({
        "ami-new": client_error("InvalidAMIID.NotFound"),
        "ami-running": client_error("RequestLimitExceeded", 503),
        "ami-done": {"ImageId": "ami-done", "State": "available", "BlockDeviceMappings": []},
    })
    statuses = poll_images(ec2, ["ami-new", "ami-running", "ami-done"])
    assert {i: s.state for i, s in statuses.items()} == {"ami-new": "missing", "ami-running": "unreadable", "ami-done": "available"}
    assert "RequestLimitExceeded" in (statuses["ami-running"].reason or "")


def test_any_other_error_of_a_read_is_raised_not_taken_as_missing():
    ec2 = StubEc2({"ami-a": client_error("InvalidAMIID.NotFound"), "ami-b": client_error("UnauthorizedOperation", 403)})
    with pytest.raises(ClientError):
        poll_images(ec2, ["ami-a", "ami-b"])


@pytest.fixture(scope="module")
def module_sessions(sandbox_session):
    return AwsSessions({PROD: AccountAccess(PROD, f"arn:aws:iam::{PROD}:role/amibot")}, max_attempts=2)


def wait_ctx(sessions: AwsSessions, previous: dict | None = None) -> StepContext:
    ctx = StepContext(sessions=sessions, request_uid="0123456789abcdef", session_tag="R-7", sleep=lambda s: None)
    ctx.previous = dict(previous or {})
    return ctx


def test_a_throttled_wait_past_the_window_keeps_waiting_for_the_running_copy(sandbox, module_sessions):
    image = sandbox.create_image(PROD, SRC)
    sandbox.hold_pending(image)  # a copy still running
    sandbox.inject_fault("DescribeImages", "RequestLimitExceeded", times=10, status=503)
    with pytest.raises(StepWaiting) as waiting:
        get_action("ec2.wait_image_available").execute(wait_ctx(module_sessions), PROD, SRC, {"image_id": image, "poll_seconds": 1})
    assert "RequestLimitExceeded" in str(waiting.value)
    sandbox.clear_faults()


def test_a_copy_is_declared_gone_only_after_several_not_found_answers_past_the_window(sandbox, module_sessions):
    image = "ami-0000000000000dead"  # AWS does not know it (any more)
    previous: dict[str, Any] = {}
    for attempt in range(1, MISSES_BEFORE_GONE):
        with pytest.raises(StepWaiting) as waiting:
            get_action("ec2.wait_image_available").execute(wait_ctx(module_sessions, previous), PROD, SRC, {"image_id": image, "poll_seconds": 1})
        previous.update(waiting.value.result)
        assert previous["misses"] == attempt
    with pytest.raises(AwsFailure) as gone:
        get_action("ec2.wait_image_available").execute(wait_ctx(module_sessions, previous), PROD, SRC, {"image_id": image, "poll_seconds": 1})
    assert "no longer exists" in str(gone.value)


# -- /ami audit and the drift check: each unreadable part said, the rest read ---------------


def test_an_unreadable_part_of_an_audit_is_one_line_with_awss_words_and_the_rest_is_read(sandbox, module_sessions):
    from aws.audit import read_image_access

    key = sandbox.create_key(PROD, SRC)
    image = sandbox.create_image(PROD, SRC, name="audited", kms_key_arn=key)
    # A 500 without an error body from the block-public-access read; a throttled attribute read.
    sandbox.inject_fault("GetImageBlockPublicAccessState", "InternalError", times=10, status=500, message="")
    sandbox.inject_fault("DescribeImageAttribute", "RequestLimitExceeded", times=10, status=503)
    access = read_image_access(module_sessions, PROD, SRC, image, "audit-test")
    sandbox.clear_faults()
    assert access.unread == ["Launch permissions", "AMI block public access"]
    assert any("Launch permissions: could not be read" in n and "RequestLimitExceeded" in n for n in access.notes)
    assert access.keys and access.keys[0].arn.endswith(key.split("/")[-1])  # the rest is read
    assert access.snapshot_block_public_access is not None


def test_one_run_reads_each_key_and_each_block_public_access_state_once(sandbox, module_sessions):
    from aws.audit import read_image_access

    key = sandbox.create_key(PROD, SRC)
    first, second = (sandbox.create_image(PROD, SRC, name=n, kms_key_arn=key) for n in ("one", "two"))
    shared: dict = {}
    calls = [read_image_access(module_sessions, PROD, SRC, image, "drift-test", shared=shared).calls for image in (first, second)]
    # 5 + S + 4K for the first AMI; the second reads only its own image, attribute, snapshots.
    assert calls == [10, 4]


def test_background_reads_are_paced_by_botocores_adaptive_retry_mode():
    sessions = AwsSessions({})
    assert sessions._config_for("drift-check").retries["mode"] == "adaptive"
    assert sessions._config_for("R-7-abc").retries["mode"] == "standard"
