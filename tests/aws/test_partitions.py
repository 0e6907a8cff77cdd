"""ARNs are built from the region's partition (aws, aws-cn, aws-us-gov), never a
hard-coded ``arn:aws:`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html)."""

from __future__ import annotations

import pathlib
import re

import pytest

from aws.actions import account_root, partition_for
from aws.actions.autoscaling import autoscaling_role

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "region, partition",
    [("us-east-1", "aws"), ("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"),
     ("us-gov-west-1", "aws-us-gov"), ("us-gov-east-1", "aws-us-gov")],
)
def test_principals_take_the_partition_of_the_region(region, partition):
    assert partition_for(region) == partition
    assert account_root("111111111111", region) == f"arn:{partition}:iam::111111111111:root"
    assert autoscaling_role("111111111111", region).startswith(f"arn:{partition}:iam::111111111111:role/aws-service-role/")


def test_share_grants_name_the_target_in_the_partition_of_the_region():
    from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, KeyFacts
    from bot.config import AccountConfig
    from bot.verbs.share.plan import share_steps

    facts = ImageFacts(image_id="ami-0123456789abcdef0", name="x", state="available", owner_id="111111111111", public=False,
                       snapshot_ids=["snap-1"], keys=[KeyFacts(arn="arn:aws-cn:kms:cn-north-1:111111111111:key/k", manager="CUSTOMER", state="Enabled")],
                       unencrypted_snapshots=[], launch_permissions=[], tags={})
    steps = share_steps(request_uid="0123456789abcdef", facts=facts, source=AccountConfig("prod", "111111111111"), region="cn-north-1",
                        targets=[AccountConfig("dev", "222222222222")], allow_copy=False)
    grant = next(s for s in steps if s.action == "kms.create_grant")
    assert grant.params["grantee_principal"] == "arn:aws-cn:iam::222222222222:root"
    assert grant.params["operations"] == list(SHARE_GRANT_OPERATIONS)


def test_no_hard_coded_aws_partition_in_arns_the_code_builds():
    """Only documentation strings and examples may spell ``arn:aws:``; f-strings that
    build ARNs must take the partition from the region."""
    offenders = []
    for package in ("aws", "bot", "handlers"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if re.search(r'f"arn:aws:(iam|kms|sts|ec2)', line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_organization_arns_take_the_partition_of_the_default_region():
    from bot.config import parse_config

    toml = """
[bot]
default_region = "cn-north-1"

[accounts.prod]
id = "111111111111"
owners = ["U0ALICE"]

[organization]
id = "o-abcdefghij"
management_account = "111111111111"
"""
    config = parse_config(toml, env={})
    assert config.organization.arn() == "arn:aws-cn:organizations::111111111111:organization/o-abcdefghij"
    assert config.organization.ou_arn("ou-ab12-cdef3456").startswith("arn:aws-cn:organizations::")
