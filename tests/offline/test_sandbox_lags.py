"""The sandbox's permission lag and status-check delay (offline/sandbox/lags.py), and
that the bot waits through them: VerifyTargetAccess retries until a new launch
permission is seen; the test launch waits through ``initializing`` and reports
``impaired``. The test clock drives both delays."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from aws.actions import StepContext, StepWaiting, get_action
from aws.errors import AwsFailure
from aws.sessions import AccountAccess, AwsSessions

PROD, DEV, REGION = "111111111111", "222222222222", "us-east-1"


@pytest.fixture
def ctx(sandbox, clock):
    """A step context of the bot (not an observer), whose sleeps move the test clock."""
    bot = boto3.Session()
    sessions = AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)}, base_session=lambda: bot)
    context = StepContext(sessions=sessions, request_uid="0123456789abcdef", session_tag="R-9-0123456789abcdef", request_id="R-9", sleep=clock.advance)
    context.previous = {}
    context.checkpoint = lambda result: context.previous.update(result)
    return context


def test_a_new_permission_is_seen_by_the_grantee_only_after_the_delay(sandbox, clock, ctx):
    sandbox.set_permission_delay(60)
    image = sandbox.create_image(PROD, REGION)
    snapshot = sandbox.client("ec2", PROD, REGION).describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    owner = ctx.client("ec2", PROD, REGION)
    owner.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    owner.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", UserIds=[DEV])
    grantee = ctx.client("ec2", DEV, REGION)
    for call in (lambda: grantee.describe_images(ImageIds=[image]), lambda: grantee.describe_snapshots(SnapshotIds=[snapshot])):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] in ("InvalidAMIID.NotFound", "InvalidSnapshot.NotFound")
    assert sandbox.client("ec2", DEV, REGION).describe_images(ImageIds=[image])["Images"]  # observers see it at once
    clock.advance(60)
    assert grantee.describe_images(ImageIds=[image])["Images"][0]["ImageId"] == image
    assert grantee.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["SnapshotId"] == snapshot


def test_verify_target_access_retries_until_the_share_is_seen(sandbox, clock, ctx):
    sandbox.set_permission_delay(30)
    image = sandbox.create_image(PROD, REGION)
    ctx.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    start = clock()
    result = get_action("verify.target_access").execute(ctx, DEV, REGION, {"image_id": image})
    assert result["visible"] is True and clock() - start >= 30


def _launch(ctx, image: str, rounds: int = 8, step: float = 30.0) -> tuple[dict, list[str]]:
    """The worker: run the test launch, and after each StepWaiting move the clock."""
    waits: list[str] = []
    for _ in range(rounds):
        try:
            return get_action("verify.test_launch").execute(ctx, DEV, REGION, {"image_id": image}), waits
        except StepWaiting as waiting:
            waits.append(str(waiting))
            ctx.previous = {**ctx.previous, **waiting.result}
            ctx.sleep(step)
    raise AssertionError(f"still waiting: {waits}")


def _shared(sandbox) -> str:
    image = sandbox.create_image(PROD, REGION)
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    return image


def test_test_launch_waits_through_initializing_then_passes(sandbox, ctx):
    sandbox.set_status_check_delay(90)
    result, waits = _launch(ctx, _shared(sandbox))
    assert result["verified"] is True and result["status_checks"] == "ok"
    assert any("initializing" in w for w in waits)


def test_test_launch_reports_impaired_checks_in_plain_words(sandbox, ctx):
    sandbox.set_status_check_delay(60)
    image = _shared(sandbox)
    launched = None
    for _ in range(4):
        try:
            get_action("verify.test_launch").execute(ctx, DEV, REGION, {"image_id": image})
        except StepWaiting as waiting:
            ctx.previous = {**ctx.previous, **waiting.result}
            launched = ctx.previous.get("instance_id")
            if "initializing" in str(waiting):
                break
            ctx.sleep(1)
    assert launched
    sandbox.impair_status_checks(launched)
    with pytest.raises(AwsFailure) as excinfo:
        _launch(ctx, image)
    assert excinfo.value.code == "StatusCheckFailed" and "does not boot" in excinfo.value.cause
