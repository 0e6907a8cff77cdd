"""The migrate actions against the sandbox: CreateImage and RunInstances are safe to
run again after a crash, the new instance has the source's settings in the target
zone, and undo never destroys a launched instance or a finished image."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.client import BaseClient

from aws.actions import Kept, StepContext, StepWaiting, get_action
from aws.actions.migrate import MIGRATE_PREFLIGHT_PERMISSIONS, client_token, image_name
from aws.errors import AwsFailure
from aws.iam import member_account_actions
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, REGION = rehearsal.PROD, rehearsal.REGION
UID = "0123456789abcdef"
TARGET = f"{REGION}b"


@pytest.fixture
def world(sandbox):
    return rehearsal.seed(sandbox)


@pytest.fixture
def sessions(sandbox):
    return AwsSessions({PROD: AccountAccess(PROD, f"arn:aws:iam::{PROD}:role/amibot")})


@pytest.fixture
def calls(monkeypatch):
    """Parameters of every CreateImage / RunInstances call made in this thread."""
    seen: list[tuple[str, dict]] = []
    real = BaseClient._make_api_call
    me = threading.current_thread()

    def recording(self, operation_name, api_params):
        if operation_name in ("CreateImage", "RunInstances") and threading.current_thread() is me:
            seen.append((operation_name, dict(api_params)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return seen


def make_ctx(sessions: AwsSessions, previous: dict[str, Any] | None = None, results: dict[int, dict] | None = None) -> StepContext:
    ctx = StepContext(sessions=sessions, request_uid=UID, session_tag=f"R-7-{UID}", request_id="R-7", sleep=lambda s: None)
    ctx.previous = dict(previous or {})
    ctx.results = dict(results or {})
    ctx.saved = []  # type: ignore[attr-defined]
    ctx.checkpoint = lambda result: ctx.saved.append(dict(result))  # type: ignore[attr-defined]
    return ctx


def ec2(sandbox):
    return sandbox.client("ec2", PROD, REGION)


def create_params(world, no_reboot: bool = False) -> dict:
    return {
        "instance_id": world.instance_id,
        "image_name": image_name(world.instance_id, UID),
        "description": "amibot migrate test",
        "no_reboot": no_reboot,
        "tags": {"Name": "web-1", "app": "web"},
    }


def launch_params(world, image_id: str | None = None) -> dict:
    source = ec2(world.sandbox).describe_instances(InstanceIds=[world.instance_id])["Reservations"][0]["Instances"][0]
    return {
        "image_from_step": 1,
        **({"image_id": image_id} if image_id else {}),
        "subnet_id": world.network["subnets"][TARGET],
        "availability_zone": TARGET,
        "vpc_id": world.network["vpc_id"],
        "instance_type": source["InstanceType"],
        "security_group_ids": [g["GroupId"] for g in source["SecurityGroups"]],
        "key_name": source["KeyName"],
        "iam_instance_profile_arn": source["IamInstanceProfile"]["Arn"],
        "tags": {"Name": "web-1", "app": "web"},
        "source_instance_id": world.instance_id,
        "client_token": client_token(UID),
        "poll_seconds": 1,
    }


def our_images(sandbox) -> list[dict]:
    return ec2(sandbox).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["amibot-migrate-*"]}])["Images"]


def launched(sandbox) -> list[dict]:
    found = ec2(sandbox).describe_instances(Filters=[{"Name": "tag-key", "Values": ["amibot:migrated-from"]}])["Reservations"]
    return [i for r in found for i in r["Instances"]]


def test_create_image_is_idempotent_after_a_crash(world, sessions, calls):
    action = get_action("ec2.create_image_from_instance")
    first = action.execute(make_ctx(sessions), PROD, REGION, create_params(world))
    assert first["created"] is True
    # The process died before the step was recorded: nothing was checkpointed either.
    again = action.execute(make_ctx(sessions), PROD, REGION, create_params(world))
    assert again["image_id"] == first["image_id"] and again["created"] is False
    # An attempt that did record the id reuses it without looking it up by name.
    third = action.execute(make_ctx(sessions, previous={"image_id": first["image_id"]}), PROD, REGION, create_params(world))
    assert third["image_id"] == first["image_id"]
    # The retry that found nothing by name (a new image may not be listed yet) sent
    # CreateImage again; AWS refused the duplicate name and the first image was used.
    assert [op for op, _ in calls] in (["CreateImage"], ["CreateImage", "CreateImage"])
    assert calls[0][1]["NoReboot"] is False and calls[0][1]["InstanceId"] == world.instance_id
    [image] = our_images(world.sandbox)
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags == {"Name": "web-1", "app": "web", "amibot:request": f"R-7-{UID}", "amibot:source-instance": world.instance_id, "amibot:client-token": f"amibot-migrate-{UID}", "amibot:disposable": "true"}
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2(world.sandbox).describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]} == tags
    assert snapshot["Encrypted"] and snapshot["KmsKeyId"] == world.cmk_arn  # the volume's own key


def test_create_image_checkpoints_the_image_id(world, sessions, calls):
    ctx = make_ctx(sessions)
    result = get_action("ec2.create_image_from_instance").execute(ctx, PROD, REGION, create_params(world, no_reboot=True))
    assert ctx.saved == [{"image_id": result["image_id"], "image_name": image_name(world.instance_id, UID), "created_at": result["created_at"]}]  # type: ignore[attr-defined]
    assert calls[0][1]["NoReboot"] is True


def test_run_instances_is_idempotent_and_copies_the_source_settings(world, sessions, calls):
    image_id = get_action("ec2.create_image_from_instance").execute(make_ctx(sessions), PROD, REGION, create_params(world))["image_id"]
    action = get_action("ec2.launch_migrated_instance")
    results = {1: {"image_id": image_id}}
    first = action.execute(make_ctx(sessions, results=results), PROD, REGION, launch_params(world))
    # A crash before the step was recorded: the same ClientToken gives the same instance.
    again = action.execute(make_ctx(sessions, results=results), PROD, REGION, launch_params(world))
    assert again["instance_id"] == first["instance_id"]
    assert [op for op, _ in calls].count("RunInstances") == 2
    assert len({p["ClientToken"] for op, p in calls if op == "RunInstances"}) == 1
    [new] = launched(world.sandbox)
    source = ec2(world.sandbox).describe_instances(InstanceIds=[world.instance_id])["Reservations"][0]["Instances"][0]
    assert new["InstanceId"] == first["instance_id"] and new["ImageId"] == image_id
    assert new["Placement"]["AvailabilityZone"] == TARGET == first["availability_zone"]
    assert new["SubnetId"] == world.network["subnets"][TARGET] and new["VpcId"] == source["VpcId"]
    assert new["InstanceType"] == source["InstanceType"]
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [g["GroupId"] for g in source["SecurityGroups"]]
    assert new["KeyName"] == source["KeyName"] == "app-key"
    assert new["IamInstanceProfile"]["Arn"] == source["IamInstanceProfile"]["Arn"]
    tags = {t["Key"]: t["Value"] for t in new["Tags"]}
    assert tags == {"Name": "web-1", "app": "web", "amibot:migrated-from": world.instance_id, "amibot:request": f"R-7-{UID}"}
    assert first["private_ip"] == new["PrivateIpAddress"] and first["private_ip"].startswith("10.20.2.")
    assert first["instance_id"] in first["summary"] and first["private_ip"] in first["summary"]
    # The source is untouched.
    assert source["State"]["Name"] == "running" and source["Placement"]["AvailabilityZone"] == f"{REGION}a"


def test_run_instances_resumes_from_the_checkpointed_instance(world, sessions, calls):
    image_id = get_action("ec2.create_image_from_instance").execute(make_ctx(sessions), PROD, REGION, create_params(world))["image_id"]
    action = get_action("ec2.launch_migrated_instance")
    first = action.execute(make_ctx(sessions), PROD, REGION, launch_params(world, image_id))
    resumed = action.execute(make_ctx(sessions, previous={"instance_id": first["instance_id"]}), PROD, REGION, launch_params(world, image_id))
    assert resumed["instance_id"] == first["instance_id"]
    assert [op for op, _ in calls].count("RunInstances") == 1


def test_undo_keeps_a_launched_instance(world, sessions):
    image_id = get_action("ec2.create_image_from_instance").execute(make_ctx(sessions), PROD, REGION, create_params(world))["image_id"]
    params = launch_params(world, image_id)
    result = get_action("ec2.launch_migrated_instance").execute(make_ctx(sessions), PROD, REGION, params)
    with pytest.raises(Kept) as kept:  # reported under "Remains", never terminated
        get_action("ec2.launch_migrated_instance").undo(make_ctx(sessions), PROD, REGION, params, result)
    said = str(kept.value)
    assert "kept" in said and result["instance_id"] in said and result["private_ip"] in said
    [new] = launched(world.sandbox)
    assert new["State"]["Name"] == "running"


def test_undo_keeps_a_finished_image_and_deregisters_an_unfinished_one(world, sessions):
    action = get_action("ec2.create_image_from_instance")
    finished = action.execute(make_ctx(sessions), PROD, REGION, create_params(world))
    with pytest.raises(Kept) as kept:
        action.undo(make_ctx(sessions), PROD, REGION, create_params(world), finished)
    assert "kept" in str(kept.value) and finished["image_id"] in str(kept.value)
    assert [i["ImageId"] for i in our_images(world.sandbox)] == [finished["image_id"]]

    world.sandbox.hold_pending(True)
    params = {**create_params(world), "image_name": image_name(world.instance_id, "fedcba9876543210")}
    unfinished = action.execute(make_ctx(sessions), PROD, REGION, params)
    image = ec2(world.sandbox).describe_images(ImageIds=[unfinished["image_id"]])["Images"][0]
    assert image["State"] == "pending"
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    said = action.undo(make_ctx(sessions), PROD, REGION, params, unfinished)
    assert "deregistered the unfinished image" in said and snapshot_id in said
    assert [i["ImageId"] for i in our_images(world.sandbox)] == [finished["image_id"]]
    assert not ec2(world.sandbox).describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"]


def test_instance_terminated_at_launch_fails_in_plain_words(world, sessions):
    image_id = get_action("ec2.create_image_from_instance").execute(make_ctx(sessions), PROD, REGION, create_params(world))["image_id"]
    world.sandbox.client("kms", PROD, REGION).disable_key(KeyId=world.cmk_arn)
    with pytest.raises(AwsFailure) as caught:
        get_action("ec2.launch_migrated_instance").execute(make_ctx(sessions), PROD, REGION, launch_params(world, image_id))
    assert "Client.InternalError" in caught.value.code and "terminated at once" in caught.value.plain()


def test_a_pending_instance_is_waited_for(world, sessions, monkeypatch):
    image_id = get_action("ec2.create_image_from_instance").execute(make_ctx(sessions), PROD, REGION, create_params(world))["image_id"]
    action = get_action("ec2.launch_migrated_instance")
    real = BaseClient._make_api_call

    def pending(self, operation_name, api_params):
        answer = real(self, operation_name, api_params)
        if operation_name == "DescribeInstances":  # moto's instances run at once; AWS's start "pending"
            for reservation in answer["Reservations"]:
                for instance in reservation["Instances"]:
                    instance["State"] = {"Code": 0, "Name": "pending"}
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", pending)
    with pytest.raises(StepWaiting) as waiting:
        action.execute(make_ctx(sessions), PROD, REGION, launch_params(world, image_id))
    assert waiting.value.retry_after == 1.0 and waiting.value.result["instance_id"]


def test_the_member_policy_covers_the_migrate_preflight_and_launch():
    needed = set(MIGRATE_PREFLIGHT_PERMISSIONS) | {"ec2:CreateImage", "ec2:RunInstances", "iam:PassRole", "ec2:DeregisterImage"}
    assert needed <= set(member_account_actions())
