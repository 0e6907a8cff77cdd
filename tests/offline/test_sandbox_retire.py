"""The sandbox retires AMIs as AWS does (offline/sandbox/ec2_retire.py): each call
moto lacks, and what AWS refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from offline.sandbox.ec2_retire import add_recycle_bin_rule
from offline.sandbox.state import _ec2_backends

PROD, DEV = "111111111111", "222222222222"
REGION = "us-east-1"


def _image(ec2, image_id, **kwargs):
    return ec2.describe_images(ImageIds=[image_id], **kwargs)["Images"][0]


def test_disable_removes_every_launch_permission_only_the_owner_may(sandbox):
    image = sandbox.create_image(PROD, REGION)
    ec2 = sandbox.client("ec2", PROD, REGION)
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    with pytest.raises(ClientError, match="AuthFailure"):
        sandbox.client("ec2", DEV, REGION).disable_image(ImageId=image)
    ec2.disable_image(ImageId=image)
    assert _image(ec2, image)["State"] == "disabled"
    assert ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []
    assert image not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]  # hidden by default
    assert image in [i["ImageId"] for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]]
    assert not sandbox.client("ec2", DEV, REGION).describe_images(Owners=[PROD])["Images"]
    ec2.enable_image(ImageId=image)
    assert _image(ec2, image)["State"] == "available"
    assert ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []


def test_deprecation_refuses_the_past_and_is_answered(sandbox):
    image = sandbox.create_image(PROD, REGION)
    ec2 = sandbox.client("ec2", PROD, REGION)
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.enable_image_deprecation(ImageId=image, DeprecateAt=dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.enable_image_deprecation(ImageId=image, DeprecateAt=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3700))
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).replace(microsecond=0)
    ec2.enable_image_deprecation(ImageId=image, DeprecateAt=at)
    assert _image(ec2, image)["DeprecationTime"].startswith(at.strftime("%Y-%m-%dT%H:%M"))
    ec2.disable_image_deprecation(ImageId=image)
    assert "DeprecationTime" not in _image(ec2, image)


def test_deregistration_protection_and_its_cooldown(sandbox, clock):
    image = sandbox.create_image(PROD, REGION)
    ec2 = sandbox.client("ec2", PROD, REGION)
    ec2.enable_image_deregistration_protection(ImageId=image, WithCooldown=True)
    assert _image(ec2, image)["DeregistrationProtection"] == "enabled-with-cooldown"
    with pytest.raises(ClientError, match="deregistration protection"):
        ec2.deregister_image(ImageId=image)
    ec2.disable_image_deregistration_protection(ImageId=image)
    assert _image(ec2, image)["DeregistrationProtection"].startswith("disabled-until-")
    with pytest.raises(ClientError, match="deregistration protection"):
        ec2.deregister_image(ImageId=image)
    clock.advance(24 * 3600 + 1)
    assert _image(ec2, image)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image)


def test_deregister_deletes_snapshots_except_those_another_ami_uses(sandbox):
    image = sandbox.create_image(PROD, REGION, snapshots=2)
    ec2 = sandbox.client("ec2", PROD, REGION)
    snaps = [m["Ebs"]["SnapshotId"] for m in _image(ec2, image)["BlockDeviceMappings"]]
    other = sandbox.create_image(PROD, REGION, name="twin")
    backend = _ec2_backends()[PROD][REGION]
    backend.amis[other].__dict__["_sbx_bdm"] = [("/dev/xvda", backend.snapshots[snaps[1]])]  # a second AMI over the same snapshot
    answer = ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
    codes = {r["SnapshotId"]: r["ReturnCode"] for r in answer["DeleteSnapshotResults"]}
    assert codes[snaps[0]] == "success" and codes[snaps[1]] != "success"
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snaps[0] not in left and snaps[1] in left and other


def test_recycle_bin_rules_answer_list_rules(sandbox):
    rbin = sandbox.client("rbin", PROD, REGION)
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []
    add_recycle_bin_rule(PROD, REGION, 14)
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"][0]["RetentionPeriod"]["RetentionPeriodValue"] == 14
    assert sandbox.client("rbin", DEV, REGION).list_rules(ResourceType="EC2_IMAGE")["Rules"] == []


def test_a_disabled_image_launches_nothing(sandbox):
    image = sandbox.create_image(PROD, REGION)
    ec2 = sandbox.client("ec2", PROD, REGION)
    ec2.disable_image(ImageId=image)
    with pytest.raises(ClientError, match="disabled"):
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
