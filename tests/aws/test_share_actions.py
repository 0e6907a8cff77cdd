"""The share actions against the sandbox, each checked from the target's side; the
last line of defence against a public share."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from aws.actions import StepContext, account_root, get_action, grant_name
from aws.actions.share import PublicShareRefused
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


def launch_permissions(world, image):
    return world.sandbox.session(PROD).client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]


@pytest.mark.parametrize("account_ids", [["all"], ["*"], [DEV, "all"]])
def test_a_public_launch_permission_is_never_sent(world, ctx, account_ids):
    with pytest.raises(PublicShareRefused):
        get_action("ec2.add_launch_permission").execute(ctx, PROD, REGION, {"image_id": world.plain_image, "account_ids": account_ids})
    assert launch_permissions(world, world.plain_image) == []
    assert not world.sandbox.session(PROD).client("ec2").describe_images(ImageIds=[world.plain_image])["Images"][0].get("Public")


def test_add_launch_permission_undo_removes_only_what_it_added(world, ctx):
    ec2 = world.sandbox.session(PROD).client("ec2")
    ec2.modify_image_attribute(ImageId=world.plain_image, LaunchPermission={"Add": [{"UserId": DEV}]})  # shared by hand before
    action = get_action("ec2.add_launch_permission")
    result = action.execute(ctx, PROD, REGION, {"image_id": world.plain_image, "account_ids": [DEV]})
    assert result["added"] == [] and result["already_present"] == [{"UserId": DEV}]
    assert action.undo(ctx, PROD, REGION, {"image_id": world.plain_image, "account_ids": [DEV]}, result) is None
    assert launch_permissions(world, world.plain_image) == [{"UserId": DEV}]  # the earlier share stays


def test_named_grant_is_created_once_and_lets_the_target_use_the_key(world, ctx):
    params = {"key_arn": world.cmk_arn, "grantee_principal": account_root(DEV, "us-east-1"), "operations": ["DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom"], "grant_name": grant_name("0123456789abcdef", DEV)}
    dev_kms = world.sandbox.session(DEV).client("kms")
    with pytest.raises(ClientError):
        dev_kms.describe_key(KeyId=world.cmk_arn)
    action = get_action("kms.create_grant")
    first = action.execute(ctx, PROD, REGION, params)
    again = action.execute(ctx, PROD, REGION, params)  # a retry after a crash
    # The retry may not see the new grant in ListGrants yet (eventual consistency):
    # the same named CreateGrant then answers with the same grant.
    assert first["created"] and again["grant_id"] == first["grant_id"]
    assert len(world.sandbox.session(PROD).client("kms").list_grants(KeyId=world.cmk_arn)["Grants"]) == 1
    assert dev_kms.describe_key(KeyId=world.cmk_arn)["KeyMetadata"]["Arn"] == world.cmk_arn
    action.undo(ctx, PROD, REGION, params, first)
    with pytest.raises(ClientError):
        dev_kms.describe_key(KeyId=world.cmk_arn)


def test_verify_target_access_fails_without_the_grant(world, ctx):
    get_action("ec2.add_launch_permission").execute(ctx, PROD, REGION, {"image_id": world.encrypted_image, "account_ids": [DEV]})
    with pytest.raises(ClientError) as failure:
        get_action("verify.target_access").execute(ctx, DEV, REGION, {"image_id": world.encrypted_image, "key_arns": [world.cmk_arn]})
    assert failure.value.response["Error"]["Code"] == "AccessDeniedException"
