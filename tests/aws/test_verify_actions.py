"""``verify.test_launch``: a real test launch of the AMI from the target account.

Run against the sandbox, which launches a shared encrypted AMI whose key the
launching account cannot use the way AWS does: the instance is created and at once
``terminated`` with ``Client.InternalError``. The worker is emulated by ``run_step``:
it calls ``execute`` again after each ``StepWaiting`` with what was checkpointed.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from aws.actions import SHARE_GRANT_OPERATIONS, ACTIONS, StepContext, StepWaiting, account_root, get_action
from aws.actions.verify import PURPOSE_TAG, REQUEST_TAG, client_token, instance_type_for
from aws.errors import AwsFailure
from aws.sessions import AccountAccess, AwsSessions

PROD = "111111111111"
DEV = "222222222222"
REGION = "us-east-1"


@pytest.fixture
def sessions(sandbox):
    bot = boto3.Session()  # one bot session: botocore parses the STS model once per test
    return AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)}, base_session=lambda: bot)


def make_ctx(sessions: AwsSessions, previous: dict[str, Any] | None = None, uid: str = "0123456789abcdef") -> StepContext:
    ctx = StepContext(sessions=sessions, request_uid=uid, session_tag=f"R-7-{uid}", request_id="R-7", sleep=lambda s: None)
    ctx.previous = dict(previous or {})
    ctx.saved = []  # type: ignore[attr-defined]

    def checkpoint(result: dict[str, Any]) -> None:
        ctx.saved.append(dict(result))  # type: ignore[attr-defined]
        ctx.previous = {**ctx.previous, **result}

    ctx.checkpoint = checkpoint
    return ctx


def run_step(ctx: StepContext, params: dict[str, Any], account: str = DEV, rounds: int = 5) -> dict[str, Any]:
    """What the worker does: run, and after StepWaiting run again with the saved result."""
    action = get_action("verify.test_launch")
    for _ in range(rounds):
        try:
            return action.execute(ctx, account, REGION, params)
        except StepWaiting as waiting:
            ctx.previous = {**ctx.previous, **waiting.result}
    raise AssertionError("still waiting")


def share(sandbox, image_id: str, key_arn: str | None = None, *, grant: bool = True) -> None:
    """What the share steps leave behind: launch permission, and a grant to DEV."""
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DEV}]})
    if key_arn and grant:
        sandbox.client("kms", PROD, REGION).create_grant(
            KeyId=key_arn, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=list(SHARE_GRANT_OPERATIONS), Name=f"amibot-test-{DEV}"
        )


def dev_instances(sandbox) -> list[dict[str, Any]]:
    ec2 = sandbox.client("ec2", DEV, REGION)
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def running(sandbox) -> list[str]:
    return [i["InstanceId"] for i in dev_instances(sandbox) if i["State"]["Name"] not in ("shutting-down", "terminated")]


def test_shared_unencrypted_image_launches_passes_and_leaves_nothing_running(sandbox, sessions):
    image = sandbox.create_image(PROD, REGION, name="base-al2023")
    share(sandbox, image)
    ctx = make_ctx(sessions)

    result = run_step(ctx, {"image_id": image})

    assert result["verified"] is True and result["status_checks"] == "ok" and result["terminated"] is True
    assert result["instance_type"] == "t3.micro"
    assert ctx.saved[0]["instance_id"] == result["instance_id"], "the instance id is checkpointed before waiting"
    assert running(sandbox) == []
    (instance,) = dev_instances(sandbox)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags[REQUEST_TAG] == "R-7" and tags[PURPOSE_TAG] == "verification"
    assert instance["InstanceType"] == "t3.micro"
    assert instance["SubnetId"] == result["subnet_id"], "a default subnet of the default VPC"


def test_shared_encrypted_image_with_the_grant_passes(sandbox, sessions):
    key = sandbox.create_key(PROD, REGION, alias="alias/ami-shared")
    image = sandbox.create_image(PROD, REGION, name="payments-api", kms_key_arn=key)
    share(sandbox, image, key)

    result = run_step(make_ctx(sessions), {"image_id": image, "key_arns": [key]})

    assert result["verified"] is True
    assert running(sandbox) == []


def test_without_the_grant_the_launch_fails_with_the_key_words(sandbox, sessions):
    """Safety test: launch permission alone is not enough for an encrypted AMI. If the
    grant were not needed (or this action trusted a DryRun), this would pass."""
    key = sandbox.create_key(PROD, REGION, alias="alias/ami-shared")
    image = sandbox.create_image(PROD, REGION, name="payments-api", kms_key_arn=key)
    share(sandbox, image, key, grant=False)

    with pytest.raises(AwsFailure) as excinfo:
        run_step(make_ctx(sessions), {"image_id": image, "key_arns": [key]})

    failure = excinfo.value
    assert failure.code == "Client.InternalError"
    assert "KMS key" in failure.cause and "terminated at once" in failure.cause
    assert "grant" in failure.fix.lower() and key in failure.fix
    assert "Client.InternalError" in failure.plain()
    assert running(sandbox) == []


def test_dry_run_would_have_passed_where_the_real_launch_fails(sandbox):
    """Why the action launches for real: RunInstances DryRun checks IAM, never KMS."""
    key = sandbox.create_key(PROD, REGION)
    image = sandbox.create_image(PROD, REGION, kms_key_arn=key)
    share(sandbox, image, key, grant=False)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as excinfo:
        sandbox.client("ec2", DEV, REGION).run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", DryRun=True)
    assert excinfo.value.response["Error"]["Code"] == "DryRunOperation"  # "would have succeeded"


def test_restart_after_launch_does_not_launch_twice(sandbox, sessions, monkeypatch):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    from aws.actions import verify

    # First attempt: launched, then the process dies before the checkpoint is saved
    # (the instance is still starting, so it is still there).
    real_describe = verify._describe
    monkeypatch.setattr(verify, "_describe", lambda ec2, iid: {**(real_describe(ec2, iid) or {}), "State": {"Name": "pending"}})
    with pytest.raises(StepWaiting) as waiting:
        get_action("verify.test_launch").execute(make_ctx(sessions), DEV, REGION, {"image_id": image})
    monkeypatch.setattr(verify, "_describe", real_describe)

    # The step runs again with nothing recorded and finds its instance by the token.
    again = run_step(make_ctx(sessions), {"image_id": image})

    assert again["instance_id"] == waiting.value.result["instance_id"]
    assert len(dev_instances(sandbox)) == 1 and running(sandbox) == []
    # A restart after the check passed returns the recorded result.
    assert run_step(make_ctx(sessions, previous=again), {"image_id": image}) == again


def test_waits_while_pending_and_terminates_when_status_checks_pass(sandbox, sessions, monkeypatch):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    ctx = make_ctx(sessions)
    action = get_action("verify.test_launch")
    from aws.actions import verify

    # moto starts instances at once; AWS shows `pending` for a while.
    real_describe = verify._describe
    monkeypatch.setattr(verify, "_describe", lambda ec2, iid: {**(real_describe(ec2, iid) or {}), "State": {"Name": "pending"}})
    with pytest.raises(StepWaiting) as waiting:
        action.execute(ctx, DEV, REGION, {"image_id": image, "poll_seconds": 5})
    assert waiting.value.retry_after == 5 and waiting.value.result["instance_id"]
    assert "starting" in waiting.value.progress
    assert len(running(sandbox)) == 1

    monkeypatch.setattr(verify, "_describe", real_describe)
    ctx.previous = waiting.value.result
    result = action.execute(ctx, DEV, REGION, {"image_id": image})
    assert result["instance_id"] == waiting.value.result["instance_id"] and result["verified"]
    assert running(sandbox) == []


def test_verification_subnet_from_params_is_used(sandbox, sessions):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    subnet = sandbox.network(DEV, REGION)["subnets"][f"{REGION}b"]

    result = run_step(make_ctx(sessions), {"image_id": image, "subnet_id": subnet})

    assert result["subnet_id"] == subnet
    assert dev_instances(sandbox)[0]["SubnetId"] == subnet


def test_no_default_vpc_and_no_configured_subnet_names_verify_subnets(sandbox, sessions):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    ec2 = sandbox.client("ec2", DEV, REGION)
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])

    with pytest.raises(AwsFailure) as excinfo:
        run_step(make_ctx(sessions), {"image_id": image})

    assert "verify_subnets" in excinfo.value.fix and REGION in excinfo.value.fix
    assert dev_instances(sandbox) == []


def test_undo_terminates_the_test_instance_if_still_there(sandbox, sessions, monkeypatch):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    from aws.actions import verify

    ctx = make_ctx(sessions)
    real_describe = verify._describe
    monkeypatch.setattr(verify, "_describe", lambda ec2, iid: {**(real_describe(ec2, iid) or {}), "State": {"Name": "pending"}})
    with pytest.raises(StepWaiting) as waiting:
        get_action("verify.test_launch").execute(ctx, DEV, REGION, {"image_id": image})
    monkeypatch.setattr(verify, "_describe", real_describe)
    assert len(running(sandbox)) == 1

    said = get_action("verify.test_launch").undo(ctx, DEV, REGION, {"image_id": image}, waiting.value.result)

    assert said == f"terminated test instance {waiting.value.result['instance_id']}"
    assert running(sandbox) == []
    assert get_action("verify.test_launch").undo(ctx, DEV, REGION, {"image_id": image}, waiting.value.result) is None


def test_impaired_status_check_fails_and_terminates(sandbox, sessions, monkeypatch):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def impaired(self, operation, params):
        answer = real(self, operation, params)
        if operation == "DescribeInstanceStatus":
            for status in answer["InstanceStatuses"]:
                status["InstanceStatus"]["Status"] = "impaired"
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", impaired)
    with pytest.raises(AwsFailure) as excinfo:
        run_step(make_ctx(sessions), {"image_id": image})
    assert excinfo.value.code == "StatusCheckFailed" and "does not boot" in excinfo.value.cause
    assert running(sandbox) == []


def test_instance_type_matches_the_image_architecture(sandbox, sessions):
    assert instance_type_for({"Architecture": "x86_64"}) == "t3.micro"
    assert instance_type_for({"Architecture": "arm64"}) == "t4g.micro"
    with pytest.raises(AwsFailure):
        instance_type_for({"ImageId": "ami-1", "Architecture": "x86_64_mac"})

    image = sandbox.create_image(PROD, REGION, name="graviton")
    # The sandbox registers x86_64 images; moto keeps the attribute on its model.
    from moto.ec2.models import ec2_backends

    ec2_backends[PROD][REGION].amis[image].architecture = "arm64"
    share(sandbox, image)
    result = run_step(make_ctx(sessions), {"image_id": image})
    assert result["instance_type"] == "t4g.micro"
    assert dev_instances(sandbox)[0]["InstanceType"] == "t4g.micro"


def test_client_token_is_stable_short_and_per_launch():
    token = client_token("0123456789abcdef", DEV, REGION, "ami-0123456789abcdef0", "t3.micro", "subnet-0abc")
    assert token == client_token("0123456789abcdef", DEV, REGION, "ami-0123456789abcdef0", "t3.micro", "subnet-0abc")
    assert len(token) <= 64 and token.isascii() and "0123456789abcdef" in token
    assert token != client_token("0123456789abcdef", DEV, REGION, "ami-0123456789abcdef0", "t2.micro", "subnet-0abc")


def test_declares_what_it_calls():
    permissions = set(ACTIONS["verify.test_launch"].permissions)
    assert {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeInstanceStatus", "ec2:CreateTags", "kms:Decrypt", "kms:CreateGrant"} <= permissions


def test_image_without_ena_falls_back_to_t2_micro(sandbox, sessions):
    image = sandbox.create_image(PROD, REGION)
    share(sandbox, image)
    # AWS's answer when a Nitro type (t3) is asked to boot an image without ENA.
    sandbox.inject_fault(
        "RunInstances", "InvalidParameterCombination", status=400,
        message="Enhanced networking with the Elastic Network Adapter (ENA) is required for the 't3.micro' instance type. "
        "Ensure that you are using an AMI that is enabled for ENA.",
    )

    result = run_step(make_ctx(sessions), {"image_id": image})

    assert result["instance_type"] == "t2.micro" and result["verified"]
    assert [i["InstanceType"] for i in dev_instances(sandbox)] == ["t2.micro"]
