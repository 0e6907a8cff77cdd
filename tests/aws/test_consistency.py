"""Eventual consistency, one test per create path: right after CopyImage,
CreateImage, RunInstances (migrate and the test launch) and CreateGrant, AWS may
answer "not found"; amibot takes that as "not visible yet" within
``consistency_window_seconds`` and never as "gone".

The sandbox hides every new image, snapshot, instance and grant for
``consistency_delay`` seconds; these tests make the delay a minute, so the first look
after a create always misses, and the bot's sleep between two looks reveals what was
created (time passing, without waiting for it).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws.actions import SHARE_GRANT_OPERATIONS, StepContext, account_root, get_action, grant_name
from aws.actions.migrate import client_token, image_name
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, DST = rehearsal.REGION, rehearsal.OTHER_REGION
UID = "0123456789abcdef"
DELAY = 60.0


@pytest.fixture
def slow_sandbox(sandbox):
    """The suite's sandbox with a delay long enough to be sure to be seen."""
    sandbox.set_consistency_delay(DELAY)
    return sandbox


def passing_time(sandbox):
    """The bot's sleep: the delay passes (everything created so far becomes visible)."""
    return lambda seconds: sandbox.reveal()


@pytest.fixture(scope="module")
def module_sessions(sandbox_session):
    return AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)})


def make_ctx(sessions: AwsSessions, results: dict[int, dict] | None = None, previous: dict | None = None, sleep=None) -> StepContext:
    ctx = StepContext(sessions=sessions, request_uid=UID, session_tag=f"R-7-{UID}", request_id="R-7", requester="U0BOB",
                      sleep=sleep or (lambda s: None), consistency_window_seconds=600)
    ctx.results = dict(results or {})
    ctx.previous = dict(previous or {})
    ctx.checkpoint = lambda result: ctx.previous.update(result)
    return ctx


def copy_params(image_id: str, key_arn: str) -> dict[str, Any]:
    return {"source_image_id": image_id, "source_region": SRC, "source_account_id": PROD, "source_name": "app",
            "source_tags": {}, "kms_key_arn": key_arn, "name": None}


def test_the_sandbox_hides_a_new_copy_then_shows_it(slow_sandbox, module_sessions):
    key = slow_sandbox.create_key(PROD, DST)
    image = slow_sandbox.create_image(PROD, SRC)
    ec2 = module_sessions.client("ec2", PROD, DST)
    copy_id = ec2.copy_image(SourceImageId=image, SourceRegion=SRC, Name="fresh-copy", Encrypted=True, KmsKeyId=key)["ImageId"]
    with pytest.raises(ClientError) as error:
        ec2.describe_images(ImageIds=[copy_id])
    assert error.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["fresh-copy"]}])["Images"] == []
    # The sandbox's own sessions (how tests look) see it at once; the bot after the delay.
    assert slow_sandbox.client("ec2", PROD, DST).describe_images(ImageIds=[copy_id])["Images"]
    slow_sandbox.reveal()
    assert ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "available"


def test_the_sandbox_hides_a_new_instance_and_grant(slow_sandbox, module_sessions):
    ec2 = module_sessions.client("ec2", PROD, SRC)
    instance_id = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for call in (lambda: ec2.describe_instances(InstanceIds=[instance_id]), lambda: ec2.terminate_instances(InstanceIds=[instance_id])):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    key = slow_sandbox.create_key(PROD, SRC)
    kms = module_sessions.client("kms", PROD, SRC)
    grant_id = kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=["Decrypt"])["GrantId"]
    assert kms.list_grants(KeyId=key)["Grants"] == []
    slow_sandbox.reveal()
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key)["Grants"]] == [grant_id]


def test_waiting_right_after_copy_image_does_not_fail_on_not_found(slow_sandbox, module_sessions):
    key = slow_sandbox.create_key(PROD, DST)
    image = slow_sandbox.create_image(PROD, SRC)
    copied = get_action("ec2.copy_image").execute(make_ctx(module_sessions), PROD, DST, copy_params(image, key))
    assert slow_sandbox.hidden(copied["image_id"])
    waited = get_action("ec2.wait_image_available").execute(
        make_ctx(module_sessions, results={1: copied}, sleep=passing_time(slow_sandbox)), PROD, DST, {"image_from_step": 1, "poll_seconds": 1}
    )
    assert waited["state"] == "available"


def test_undo_right_after_copy_image_still_stops_the_copy(slow_sandbox, module_sessions):
    key = slow_sandbox.create_key(PROD, DST)
    image = slow_sandbox.create_image(PROD, SRC)
    slow_sandbox.hold_pending(True)
    copied = get_action("ec2.copy_image").execute(make_ctx(module_sessions), PROD, DST, copy_params(image, key))
    said = get_action("ec2.copy_image").undo(make_ctx(module_sessions, sleep=passing_time(slow_sandbox)), PROD, DST, copy_params(image, key), copied)
    assert said and "deregistered" in said
    slow_sandbox.reveal()
    left = slow_sandbox.client("ec2", PROD, DST).describe_images(Owners=["self"])["Images"]
    assert copied["image_id"] not in [i["ImageId"] for i in left if i.get("State") != "deregistered"]


def migrate_params(world: Any, sandbox: Any) -> tuple[dict, dict]:
    source = sandbox.client("ec2", PROD, SRC).describe_instances(InstanceIds=[world.instance_id])["Reservations"][0]["Instances"][0]
    create = {"instance_id": world.instance_id, "image_name": image_name(world.instance_id, UID), "description": "t",
              "no_reboot": True, "tags": {"app": "web"}}
    target = f"{SRC}b"
    launch = {
        "image_from_step": 1, "subnet_id": world.network["subnets"][target], "availability_zone": target,
        "vpc_id": world.network["vpc_id"], "instance_type": source["InstanceType"],
        "security_group_ids": [g["GroupId"] for g in source["SecurityGroups"]], "key_name": source["KeyName"],
        "iam_instance_profile_arn": source["IamInstanceProfile"]["Arn"], "tags": {"app": "web"},
        "source_instance_id": world.instance_id, "client_token": client_token(UID), "poll_seconds": 1,
    }
    return create, launch


def test_migrate_waits_through_not_found_after_create_image(slow_sandbox, module_sessions):
    world = rehearsal.seed(slow_sandbox)
    create, launch = migrate_params(world, slow_sandbox)
    made = get_action("ec2.create_image_from_instance").execute(make_ctx(module_sessions), PROD, SRC, create)
    assert slow_sandbox.hidden(made["image_id"])
    waited = get_action("ec2.wait_image_available").execute(make_ctx(module_sessions, results={1: made}, sleep=passing_time(slow_sandbox)), PROD, SRC, {"image_from_step": 1})
    assert waited["state"] == "available"


def test_migrate_launch_waits_through_not_found_after_run_instances(slow_sandbox, module_sessions):
    world = rehearsal.seed(slow_sandbox)
    create, launch = migrate_params(world, slow_sandbox)
    made = get_action("ec2.create_image_from_instance").execute(make_ctx(module_sessions), PROD, SRC, create)
    slow_sandbox.reveal(made["image_id"])
    ran = get_action("ec2.launch_migrated_instance").execute(make_ctx(module_sessions, results={1: made}, sleep=passing_time(slow_sandbox)), PROD, SRC, launch)
    assert ran["state"] == "running" and ran["instance_id"].startswith("i-")


def test_test_launch_cleanup_confirms_termination_of_an_instance_not_visible_yet(slow_sandbox, module_sessions):
    ec2 = module_sessions.client("ec2", DEV, SRC)  # launched as the bot launches it
    instance_id = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    result = {"instance_id": instance_id, "launched_at": time.time()}
    said = get_action("verify.test_launch").undo(make_ctx(module_sessions, sleep=passing_time(slow_sandbox)), DEV, SRC, {}, result)
    assert said == f"terminated test instance {instance_id}"
    state = slow_sandbox.client("ec2", DEV, SRC).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")


def test_a_retried_grant_step_makes_no_second_grant_while_the_first_is_not_listed(slow_sandbox, module_sessions):
    key = slow_sandbox.create_key(PROD, SRC)
    params = {"key_arn": key, "grantee_principal": account_root(DEV, SRC), "operations": list(SHARE_GRANT_OPERATIONS),
              "grant_name": grant_name(UID, DEV)}
    action = get_action("kms.create_grant")
    first = action.execute(make_ctx(module_sessions), PROD, SRC, params)
    # A crash before the result was saved: the step runs again while ListGrants does
    # not list the new grant yet.
    assert module_sessions.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"] == []
    again = action.execute(make_ctx(module_sessions), PROD, SRC, params)
    assert again["grant_id"] == first["grant_id"]
    assert len(slow_sandbox.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"]) == 1


def test_the_sandbox_answers_not_found_to_revoking_a_grant_not_visible_yet(slow_sandbox, module_sessions):
    key = slow_sandbox.create_key(PROD, SRC)
    kms = module_sessions.client("kms", PROD, SRC)
    grant_id = kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, SRC), Operations=["Decrypt"])["GrantId"]
    with pytest.raises(ClientError) as error:
        kms.revoke_grant(KeyId=key, GrantId=grant_id)
    assert error.value.response["Error"]["Code"] == "NotFoundException"
    slow_sandbox.reveal()
    kms.revoke_grant(KeyId=key, GrantId=grant_id)


def grant_and_revoke_params(sandbox: Any, sessions: AwsSessions) -> tuple[str, dict, dict]:
    key = sandbox.create_key(PROD, SRC)
    made = get_action("kms.create_grant").execute(make_ctx(sessions), PROD, SRC, {
        "key_arn": key, "grantee_principal": account_root(DEV, SRC), "operations": list(SHARE_GRANT_OPERATIONS), "grant_name": grant_name(UID, DEV)})
    return key, made, {"key_arn": key, "grant_ids": [made["grant_id"]], "created_at": {made["grant_id"]: made["created_at"]}}


def test_an_unshare_right_after_the_share_revokes_the_grant_not_visible_yet(slow_sandbox, module_sessions):
    """RevokeGrant's NotFound inside the KMS consistency window is "not visible yet":
    asked again, the grant is revoked, never reported "already gone" and left in force."""
    key, made, params = grant_and_revoke_params(slow_sandbox, module_sessions)
    out = get_action("kms.revoke_grants").execute(make_ctx(module_sessions, sleep=passing_time(slow_sandbox)), PROD, SRC, params)
    assert out["revoked"] == [made["grant_id"]] and "already_gone" not in out
    assert slow_sandbox.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"] == []


def test_a_revoke_still_not_found_waits_then_past_the_window_it_is_gone(slow_sandbox, module_sessions, monkeypatch):
    from aws.actions import StepWaiting, visibility

    monkeypatch.setattr(visibility, "INLINE_SECONDS", 0.2)  # the in-place asking, shortened
    key, made, params = grant_and_revoke_params(slow_sandbox, module_sessions)
    ctx = make_ctx(module_sessions)
    with pytest.raises(StepWaiting):  # inside the window: not visible yet, never "gone"
        get_action("kms.revoke_grants").execute(ctx, PROD, SRC, params)
    slow_sandbox.client("kms", PROD, SRC).revoke_grant(KeyId=key, GrantId=made["grant_id"])  # revoked outside meanwhile
    params["created_at"] = {made["grant_id"]: time.time() - 3600}  # past the window
    out = get_action("kms.revoke_grants").execute(make_ctx(module_sessions), PROD, SRC, params)
    assert out["already_gone"] == [made["grant_id"]]


def test_a_temporary_grant_names_its_retiring_principal_and_the_sandbox_wants_an_arn(sandbox, module_sessions):
    key = sandbox.create_key(PROD, SRC)
    role = f"arn:aws:iam::{PROD}:role/amibot"
    params = {"key_arn": key, "grantee_principal": account_root(DEV, SRC), "operations": list(SHARE_GRANT_OPERATIONS),
              "grant_name": grant_name(UID, DEV), "retiring_principal": role}
    made = get_action("kms.create_grant").execute(make_ctx(module_sessions), PROD, SRC, params)
    [grant] = [g for g in sandbox.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"] if g["GrantId"] == made["grant_id"]]
    assert grant["RetiringPrincipal"] == role
    with pytest.raises(ClientError) as refused:
        module_sessions.client("kms", PROD, SRC).create_grant(KeyId=key, GranteePrincipal=account_root(DEV, SRC), Operations=["Decrypt"], RetiringPrincipal="amibot")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
