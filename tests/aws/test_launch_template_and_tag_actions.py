"""`update-lt` and `/ami tag` actions against the sandbox: the new version inherits
the rest of the template, is made default only when asked, and its undo puts the
default back and deletes the version (which the sandbox, like AWS, refuses while it
is the default); tags are restored exactly by the undo."""

from __future__ import annotations

import pytest

from aws.actions import StepContext, get_action
from aws.actions.launch_template import template_refusal
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, DEV, REGION = rehearsal.PROD, rehearsal.DEV, rehearsal.REGION


@pytest.fixture
def world(sandbox):
    return rehearsal.seed(sandbox)


@pytest.fixture
def ctx():
    sessions = AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)})
    return StepContext(sessions=sessions, request_uid="0123456789abcdef", session_tag="R-1-test", sleep=lambda s: None, grant_wait_seconds=1)


def template(world) -> str:
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    return ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": world.plain_image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]


@pytest.mark.parametrize("make_default", [False, True])
def test_new_version_inherits_the_rest_and_the_undo_removes_it(world, ctx, make_default):
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    lt = template(world)
    action = get_action("ec2.launch_template_version")
    params = {"template_id": lt, "image_id": world.encrypted_image, "make_default": make_default}
    result = action.execute(ctx, PROD, REGION, params)
    again = action.execute(StepContext(**{**ctx.__dict__, "previous": result}), PROD, REGION, params)  # a retry: no second version
    assert result["version"] == again["version"] == 2
    [v2] = ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["2"])["LaunchTemplateVersions"]
    assert v2["LaunchTemplateData"] == {"ImageId": world.encrypted_image, "InstanceType": "t3.micro"}
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]["DefaultVersionNumber"] == (2 if make_default else 1)
    assert "deleted version 2" in action.undo(ctx, PROD, REGION, params, result)
    assert [v["VersionNumber"] for v in ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]] == [1]
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]["DefaultVersionNumber"] == 1


def test_new_version_comes_from_the_default_version_not_latest(world, ctx):
    """$Latest may hold an unreleased change (here InstanceType m5.large); the new
    version is built on the default version, so promoting it does not release that."""
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    lt = template(world)
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={"InstanceType": "m5.large"})
    result = get_action("ec2.launch_template_version").execute(ctx, PROD, REGION, {"template_id": lt, "image_id": world.encrypted_image, "make_default": True})
    [v3] = ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=[str(result["version"])])["LaunchTemplateVersions"]
    assert v3["LaunchTemplateData"] == {"ImageId": world.encrypted_image, "InstanceType": "t3.micro"}


def test_only_marked_templates_without_ssm_images(world):
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    lt = template(world)
    why, fix = template_refusal(ec2, lt)
    assert "not marked" in why and f"--resources {lt} --tags Key=amibot:update-lt,Value=true" in fix
    ec2.create_tags(Resources=[lt], Tags=[{"Key": "amibot:update-lt", "Value": "true"}])
    assert template_refusal(ec2, lt) is None
    ssm = ec2.create_launch_template(
        LaunchTemplateName="ssm", LaunchTemplateData={"ImageId": "resolve:ssm:/golden/web"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "amibot:update-lt", "Value": "true"}]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    why, fix = template_refusal(ec2, ssm)
    assert "resolve:ssm:/golden/web" in why and "SSM parameter" in fix


def test_the_sandbox_refuses_to_delete_the_default_version(world):
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    lt = template(world)
    answer = ec2.delete_launch_template_versions(LaunchTemplateId=lt, Versions=["1"])
    assert answer["UnsuccessfullyDeletedLaunchTemplateVersions"][0]["ResponseError"]["Code"] == "launchTemplateVersionIsDefault"


def test_tag_undo_restores_earlier_values_and_removes_new_keys(world, ctx):
    ec2 = world.sandbox.session(PROD, REGION).client("ec2")
    image = world.encrypted_image  # tagged app=payments, owner=platform
    snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    params = {"image_id": image, "snapshot_ids": [snapshot], "tags": {"app": "billing", "version": "3"}}
    action = get_action("ec2.tag_image")
    result = action.execute(ctx, PROD, REGION, params)

    def tags(resource_id: str) -> dict[str, str]:
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    assert tags(image)["app"] == "billing" and tags(snapshot)["version"] == "3"
    action.undo(ctx, PROD, REGION, params, result)
    assert tags(image) == {"app": "payments", "owner": "platform"}
    assert "version" not in tags(snapshot)
