"""The sandbox's block public access and AssumeRole trust checks."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

PROD, DEV = "111111111111", "222222222222"


def test_block_public_access_per_account_and_region(sandbox):
    ec2 = sandbox.client("ec2", PROD, "us-east-1")
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert ec2.get_snapshot_block_public_access_state()["State"] == "unblocked"
    ec2.enable_snapshot_block_public_access(State="block-all-sharing")
    ec2.disable_image_block_public_access()
    assert ec2.get_snapshot_block_public_access_state()["State"] == "block-all-sharing"
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    # Other accounts and regions keep their own state.
    assert sandbox.client("ec2", DEV, "us-east-1").get_snapshot_block_public_access_state()["State"] == "unblocked"
    assert sandbox.client("ec2", PROD, "eu-west-1").get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.enable_snapshot_block_public_access(State="unblocked")
    sandbox.reset()
    assert ec2.get_snapshot_block_public_access_state()["State"] == "unblocked"


def test_assume_role_follows_the_trust_policy_once_iam_is_modelled(sandbox):
    sts = boto3.client("sts", region_name="us-east-1")
    # No IAM roles in the account: moto's permissive behaviour is kept.
    sts.assume_role(RoleArn=f"arn:aws:iam::{DEV}:role/anything", RoleSessionName="amibot-test")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "ext"}}}]}
    sandbox.client("iam", DEV).create_role(RoleName="amibot", AssumeRolePolicyDocument=json.dumps(trust))
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{DEV}:role/amibot", RoleSessionName="amibot-test", ExternalId="ext")["Credentials"]
    for arn, kwargs in ((f"arn:aws:iam::{DEV}:role/amibot", {"ExternalId": "other"}), (f"arn:aws:iam::{DEV}:role/amibot", {}),
                        (f"arn:aws:iam::{DEV}:role/anything", {})):
        with pytest.raises(ClientError, match="AccessDenied"):
            sts.assume_role(RoleArn=arn, RoleSessionName="amibot-test", **kwargs)


@pytest.mark.parametrize("name", ["a" * 65, "amibot R-1", "amibot/R-1", "amibot-Zoë", "x"])
def test_assume_role_refuses_a_session_name_sts_refuses(sandbox, name):
    # STS API Reference, AssumeRole, RoleSessionName: 2-64 characters of [\w+=,.@-]*.
    from aws.sessions import session_name

    sts = boto3.client("sts", region_name="us-east-1")
    if len(name) < 2:  # botocore checks the minimum itself, before sending
        with pytest.raises(ParamValidationError):
            sts.assume_role(RoleArn=f"arn:aws:iam::{DEV}:role/amibot", RoleSessionName=name)
        return
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=f"arn:aws:iam::{DEV}:role/amibot", RoleSessionName=name)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "roleSessionName" in refused.value.response["Error"]["Message"]
    # What amibot makes of any request id is accepted.
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{DEV}:role/amibot", RoleSessionName=session_name(f"preflight-{name}"))["Credentials"]
