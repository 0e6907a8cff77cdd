"""The sandbox behaves like AWS where amibot depends on it.

Every check goes through boto3 as the account concerned (``sandbox.client(...)``),
never through sandbox internals. The ``sandbox`` fixture (tests/conftest.py) is one
in-process sandbox for the session, reset before each test.
"""

from __future__ import annotations

import json
import os

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from offline.sandbox import ADMIN_ROLE_NAME, BOT_ACCOUNT, Sandbox

A = "111111111111"  # owns the AMIs and keys
B = "222222222222"  # receives shares
C = "333333333333"  # an outsider
R1 = "us-east-1"
R2 = "eu-west-1"
KEY_OPS = ["DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom"]


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def snapshot_ids(ec2, image_id: str) -> list[str]:
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]


def share(sandbox: Sandbox, image_id: str, account: str, *, snapshots: bool = True, key: str | None = None, region: str = R1) -> None:
    """What amibot's share + copy preparation does, as the owner A."""
    ec2 = sandbox.client("ec2", A, region)
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": account}]})
    if snapshots:
        for snap in snapshot_ids(ec2, image_id):
            ec2.modify_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": account}]}
            )
    if key:
        sandbox.client("kms", A, region).create_grant(
            KeyId=key, GranteePrincipal=f"arn:aws:iam::{account}:root", Operations=KEY_OPS, Name=f"amibot-{account}"
        )


def org_policy(owner: str, org_id: str, actions: list[str], extra_condition: dict | None = None) -> str:
    condition = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
    if extra_condition:
        condition.update(extra_condition)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*", "Resource": "*"},
                {"Effect": "Allow", "Principal": "*", "Action": actions, "Resource": "*", "Condition": condition},
            ],
        }
    )


# --------------------------------------------------------------------------- 1. visibility


def test_shared_ami_is_visible_only_to_accounts_with_launch_permission(sandbox):
    image = sandbox.create_image(A, name="payments-api", tags={"app": "payments"})
    owner, target = sandbox.client("ec2", A), sandbox.client("ec2", B)

    with pytest.raises(ClientError) as excinfo:
        target.describe_images(ImageIds=[image])
    assert error_code(excinfo) == "InvalidAMIID.NotFound"
    assert target.describe_images(ExecutableUsers=["self"])["Images"] == []

    owner.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    seen = target.describe_images(ImageIds=[image])["Images"][0]
    assert seen["OwnerId"] == A and seen["Name"] == "payments-api"
    assert seen["Tags"] == []  # AWS never shows the owner's tags to other accounts
    assert [i["ImageId"] for i in target.describe_images(ExecutableUsers=["self"])["Images"]] == [image]
    assert [i["ImageId"] for i in target.describe_images(Owners=[A])["Images"]] == [image]
    assert target.describe_images(Owners=["self"])["Images"] == []
    assert owner.describe_images(ImageIds=[image])["Images"][0]["Tags"] == [{"Key": "app", "Value": "payments"}]
    with pytest.raises(ClientError):
        sandbox.client("ec2", C).describe_images(ImageIds=[image])

    owner.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"UserId": B}]})
    with pytest.raises(ClientError) as excinfo:
        target.describe_images(ImageIds=[image])
    assert error_code(excinfo) == "InvalidAMIID.NotFound"


def test_public_organization_and_ou_launch_permissions(sandbox):
    sandbox.configure_organization("o-abc123xyz", {B: "ou-ab12-aaaaaaaa", C: "ou-ab12-bbbbbbbb/ou-ab12-cccccccc"})
    outsider = "444444444444"
    org_image = sandbox.create_image(A, name="org-wide")
    ou_image = sandbox.create_image(A, name="ou-only")
    nested_image = sandbox.create_image(A, name="nested-ou")
    public_image = sandbox.create_image(A, name="public")
    owner = sandbox.client("ec2", A)
    owner.modify_image_attribute(
        ImageId=org_image, LaunchPermission={"Add": [{"OrganizationArn": f"arn:aws:organizations::{BOT_ACCOUNT}:organization/o-abc123xyz"}]}
    )
    owner.modify_image_attribute(ImageId=ou_image, LaunchPermission={"Add": [{"OrganizationalUnitArn": sandbox.ou_arn("ou-ab12-aaaaaaaa")}]})
    owner.modify_image_attribute(ImageId=nested_image, LaunchPermission={"Add": [{"OrganizationalUnitArn": sandbox.ou_arn("ou-ab12-bbbbbbbb")}]})
    owner.modify_image_attribute(ImageId=public_image, LaunchPermission={"Add": [{"Group": "all"}]})

    def visible(account: str) -> set[str]:
        ec2 = sandbox.client("ec2", account)
        return {i["ImageId"] for i in ec2.describe_images(Owners=[A])["Images"]}

    assert visible(B) == {org_image, ou_image, public_image}
    assert visible(C) == {org_image, nested_image, public_image}  # a child OU's member is in the parent OU
    assert visible(outsider) == {public_image}
    # An organisation ARN naming another organisation shares nothing.
    owner.modify_image_attribute(ImageId=ou_image, LaunchPermission={"Add": [{"OrganizationArn": f"arn:aws:organizations::{BOT_ACCOUNT}:organization/o-other0000"}]})
    assert ou_image not in visible(outsider)
    assert {i["ImageId"] for i in sandbox.client("ec2", outsider).describe_images(ExecutableUsers=["all"])["Images"]} == {public_image}


def test_snapshot_permissions_structured_form_and_visibility(sandbox):
    image = sandbox.create_image(A)
    owner, target = sandbox.client("ec2", A), sandbox.client("ec2", B)
    (snap,) = snapshot_ids(owner, image)

    with pytest.raises(ClientError) as excinfo:
        target.describe_snapshots(SnapshotIds=[snap])
    assert error_code(excinfo) == "InvalidSnapshot.NotFound"

    owner.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": B}]})
    perms = owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"]
    assert perms == [{"UserId": B}]
    seen = target.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert seen["OwnerId"] == A
    assert [s["SnapshotId"] for s in target.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]] == [snap]
    assert target.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []

    owner.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Remove": [{"UserId": B}]})
    assert owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    with pytest.raises(ClientError):
        target.describe_snapshots(SnapshotIds=[snap])
    with pytest.raises(ClientError) as excinfo:
        owner.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": "12"}]})
    assert error_code(excinfo) == "InvalidAMIAttributeItemValue"


def test_snapshot_encrypted_with_aws_managed_key_cannot_be_shared(sandbox):
    image = sandbox.create_image(A, kms_key_arn=sandbox.aws_managed_ebs_key(A))
    owner = sandbox.client("ec2", A)
    (snap,) = snapshot_ids(owner, image)
    with pytest.raises(ClientError) as excinfo:
        owner.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": B}]})
    assert error_code(excinfo) == "OperationNotPermitted"


def test_an_ami_backed_by_aws_managed_key_snapshots_cannot_be_shared(sandbox):
    """AWS: "You can't share AMIs that are backed by snapshots that are encrypted with
    the default AWS managed key" (ModifyImageAttribute answers InvalidParameter)."""
    image = sandbox.create_image(A, kms_key_arn=sandbox.aws_managed_ebs_key(A))
    with pytest.raises(ClientError) as excinfo:
        sandbox.client("ec2", A).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    assert error_code(excinfo) == "InvalidParameter"


# --------------------------------------------------------------------------- 3-4. KMS


def test_key_manager_aws_for_aws_managed_keys_and_customer_for_cmks(sandbox):
    cmk = sandbox.create_key(A, alias="alias/ami-shared")
    kms = sandbox.client("kms", A)
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId=sandbox.aws_managed_ebs_key(A))["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId=cmk)["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    assert kms.describe_key(KeyId="alias/ami-shared")["KeyMetadata"]["Arn"] == cmk
    # The alias alone makes the AWS-managed key appear, as in AWS.
    assert sandbox.client("kms", C).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyManager"] == "AWS"
    # AWS-managed keys cannot be granted on, re-policied or disabled by the account.
    ebs = sandbox.aws_managed_ebs_key(A)
    for call in (
        lambda: kms.create_grant(KeyId=ebs, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt"]),
        lambda: kms.put_key_policy(KeyId=ebs, PolicyName="default", Policy=org_policy(A, "o-x", ["kms:Decrypt"])),
        lambda: kms.disable_key(KeyId=ebs),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "AccessDeniedException"


def test_a_grant_to_a_role_is_not_a_grant_to_its_account(sandbox):
    """KMS: the grantee principal is the role; another role of its account gets nothing."""
    cmk = sandbox.create_key(A)
    sandbox.client("kms", A).create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:role/amibot", Operations=["DescribeKey"])
    with pytest.raises(ClientError) as excinfo:
        sandbox.client("kms", B).describe_key(KeyId=cmk)  # the sandbox-admin role of B
    assert error_code(excinfo) == "AccessDeniedException"


def test_cross_account_describe_key_needs_a_grant(sandbox):
    cmk = sandbox.create_key(A)
    owner, target = sandbox.client("kms", A), sandbox.client("kms", B)
    with pytest.raises(ClientError) as excinfo:
        target.describe_key(KeyId=cmk)
    assert error_code(excinfo) == "AccessDeniedException"

    grant = owner.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt"])
    with pytest.raises(ClientError):
        target.describe_key(KeyId=cmk)  # a grant without DescribeKey does not allow it
    owner.revoke_grant(KeyId=cmk, GrantId=grant["GrantId"])
    owner.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:role/{ADMIN_ROLE_NAME}", Operations=["DescribeKey"])
    meta = target.describe_key(KeyId=cmk)["KeyMetadata"]
    assert meta["AWSAccountId"] == A and meta["KeyManager"] == "CUSTOMER"
    with pytest.raises(ClientError) as excinfo:
        sandbox.client("kms", C).describe_key(KeyId=cmk)
    assert error_code(excinfo) == "AccessDeniedException"
    with pytest.raises(ClientError) as excinfo:
        target.list_grants(KeyId=cmk)  # grants cannot give ListGrants
    assert error_code(excinfo) == "AccessDeniedException"
    assert len(owner.list_grants(KeyId=cmk)["Grants"]) == 1
    with pytest.raises(ClientError) as excinfo:
        target.describe_key(KeyId=cmk.replace(cmk.rsplit("/", 1)[1], "00000000-0000-0000-0000-000000000000"))
    assert error_code(excinfo) == "NotFoundException"


def test_cross_account_key_policy_by_account_and_by_organization(sandbox):
    sandbox.configure_organization("o-abc123xyz", {B: "ou-ab12-aaaaaaaa"})
    by_account = sandbox.create_key(
        A,
        policy=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{A}:root", C]}, "Action": ["kms:DescribeKey", "kms:CreateGrant"], "Resource": "*"}
                ]
            }
        ),
    )
    by_org = sandbox.create_key(A, policy=org_policy(A, "o-abc123xyz", ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt"]))
    by_ou = sandbox.create_key(
        A,
        policy=org_policy(
            A, "o-abc123xyz", ["kms:DescribeKey"], {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["o-abc123xyz/*/ou-ab12-zzzzzzzz/*"]}}
        ),
    )
    kms_b, kms_c = sandbox.client("kms", B), sandbox.client("kms", C)
    assert kms_c.describe_key(KeyId=by_account)["KeyMetadata"]["Arn"] == by_account
    with pytest.raises(ClientError):
        kms_b.describe_key(KeyId=by_account)
    assert kms_b.describe_key(KeyId=by_org)["KeyMetadata"]["Arn"] == by_org
    with pytest.raises(ClientError):
        kms_c.describe_key(KeyId=by_org)  # not in the organization
    with pytest.raises(ClientError):
        kms_b.describe_key(KeyId=by_ou)  # B's OU is not the one named
    sandbox.configure_organization(members={B: "ou-ab12-zzzzzzzz"})
    assert kms_b.describe_key(KeyId=by_ou)["KeyMetadata"]["Arn"] == by_ou


def test_create_grant_dry_run_checks_permission_and_creates_nothing(sandbox):
    cmk = sandbox.create_key(A)
    owner, target = sandbox.client("kms", A), sandbox.client("kms", B)
    params = dict(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:role/AWSServiceRoleForAutoScaling", Operations=["Decrypt"], DryRun=True)
    with pytest.raises(ClientError) as excinfo:
        target.create_grant(**params)
    assert error_code(excinfo) == "AccessDeniedException"
    with pytest.raises(ClientError) as excinfo:
        owner.create_grant(**params)
    assert error_code(excinfo) == "DryRunOperationException"
    assert owner.list_grants(KeyId=cmk)["Grants"] == []  # moto would have made a real grant

    share_grant = owner.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=KEY_OPS, Name="amibot-r1")
    with pytest.raises(ClientError) as excinfo:
        target.create_grant(**params)
    assert error_code(excinfo) == "DryRunOperationException"
    assert [g["GrantId"] for g in owner.list_grants(KeyId=cmk)["Grants"]] == [share_grant["GrantId"]]
    # The target passes the permission on (Auto Scaling's grant) -- but never widens it.
    target.create_grant(**{**params, "DryRun": False})
    with pytest.raises(ClientError) as excinfo:
        target.create_grant(**{**params, "DryRun": False, "Operations": ["Encrypt"]})
    assert error_code(excinfo) == "AccessDeniedException"
    assert len(owner.list_grants(KeyId=cmk)["Grants"]) == 2


def test_disabled_key_is_unusable_but_describable(sandbox):
    cmk = sandbox.create_key(A)
    owner, target = sandbox.client("kms", A), sandbox.client("kms", B)
    owner.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=KEY_OPS)
    owner.disable_key(KeyId=cmk)
    assert target.describe_key(KeyId=cmk)["KeyMetadata"]["KeyState"] == "Disabled"
    for client in (owner, target):
        with pytest.raises(ClientError) as excinfo:
            client.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt"], DryRun=True)
        assert error_code(excinfo) == "DisabledException"
    with pytest.raises(ClientError) as excinfo:
        owner.generate_data_key_without_plaintext(KeyId=cmk, KeySpec="AES_256")
    assert error_code(excinfo) == "DisabledException"


def test_named_grant_is_idempotent(sandbox):
    cmk = sandbox.create_key(A)
    kms = sandbox.client("kms", A)
    args = dict(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=KEY_OPS, Name="amibot-5f3a")
    first = kms.create_grant(**args)["GrantId"]
    assert kms.create_grant(**args)["GrantId"] == first
    assert kms.create_grant(**{**args, "Operations": list(reversed(KEY_OPS))})["GrantId"] == first
    other = kms.create_grant(**{**args, "Operations": ["Decrypt"]})["GrantId"]
    assert other != first  # same name, different grant: AWS makes a new one
    assert len(kms.list_grants(KeyId=cmk)["Grants"]) == 2
    with pytest.raises(ClientError) as excinfo:
        kms.create_grant(**{**args, "Operations": ["Launch"]})
    assert error_code(excinfo) == "ValidationException"


def test_grants_can_take_time_to_spread(sandbox, clock):
    cmk = sandbox.create_key(A)
    sandbox.set_grant_delay(60)  # on the test's clock: it passes when the test moves it
    sandbox.client("kms", A).create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["DescribeKey"])
    target = sandbox.client("kms", B)
    with pytest.raises(ClientError):
        target.describe_key(KeyId=cmk)
    clock.advance(61)
    assert target.describe_key(KeyId=cmk)["KeyMetadata"]["Arn"] == cmk


# --------------------------------------------------------------------------- 5. copy


def test_cross_account_copy_needs_launch_and_snapshot_permission(sandbox):
    image = sandbox.create_image(A, snapshots=2)
    owner = sandbox.client("ec2", A)
    target = sandbox.client("ec2", B, R2)
    with pytest.raises(ClientError) as excinfo:
        target.copy_image(SourceImageId=image, SourceRegion=R1, Name="copied")
    assert error_code(excinfo) == "InvalidAMIID.NotFound"

    owner.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    first, second = snapshot_ids(owner, image)
    owner.modify_snapshot_attribute(SnapshotId=first, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": B}]})
    with pytest.raises(ClientError) as excinfo:
        target.copy_image(SourceImageId=image, SourceRegion=R1, Name="copied")  # one snapshot still private
    assert error_code(excinfo) == "InvalidRequest"
    assert "You do not have permission to access the storage of this ami" in str(excinfo.value)

    owner.modify_snapshot_attribute(SnapshotId=second, OperationType="add", Attribute="createVolumePermission", UserIds=[B])
    copied = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="copied")["ImageId"]
    result = target.describe_images(ImageIds=[copied])["Images"][0]
    assert result["OwnerId"] == B and result["State"] == "available"
    snaps = target.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"] for m in result["BlockDeviceMappings"]])["Snapshots"]
    assert len(snaps) == 2 and all(s["OwnerId"] == B and not s["Encrypted"] for s in snaps)
    with pytest.raises(ClientError):
        sandbox.client("ec2", B, R1).describe_images(ImageIds=[copied])  # it lives in the destination region
    with pytest.raises(ClientError) as excinfo:
        target.copy_image(SourceImageId=image, SourceRegion="mars-east-1", Name="copied")
    assert error_code(excinfo) == "InvalidParameterValue"


def test_cross_account_encrypted_copy_uses_destination_key_and_tag_specifications(sandbox):
    cmk_a = sandbox.create_key(A, alias="alias/ami-shared")
    cmk_b = sandbox.create_key(B, R2, alias="alias/ami-landing")
    image = sandbox.create_image(A, kms_key_arn=cmk_a, tags={"app": "payments", "owner": "platform"})
    share(sandbox, image, B, key=cmk_a)
    target = sandbox.client("ec2", B, R2)
    copied = target.copy_image(
        SourceImageId=image, SourceRegion=R1, Name="payments", Encrypted=True, KmsKeyId="alias/ami-landing",
        CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "app", "Value": "payments"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "amibot:request", "Value": "R-17"}]},
        ],
    )["ImageId"]
    result = target.describe_images(ImageIds=[copied])["Images"][0]
    assert result["State"] == "available" and result["OwnerId"] == B
    assert result["Tags"] == [{"Key": "app", "Value": "payments"}]  # CopyImageTags ignored across accounts
    (snap,) = target.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"] for m in result["BlockDeviceMappings"]])["Snapshots"]
    assert snap["OwnerId"] == B and snap["Encrypted"] and snap["KmsKeyId"] == cmk_b
    assert snap["Tags"] == [{"Key": "amibot:request", "Value": "R-17"}]


def test_encrypted_source_copied_without_a_key_stays_encrypted_with_the_default_key(sandbox):
    cmk_a = sandbox.create_key(A)
    image = sandbox.create_image(A, kms_key_arn=cmk_a)
    share(sandbox, image, B, key=cmk_a)
    target = sandbox.client("ec2", B)
    copied = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="no-key", Encrypted=False)["ImageId"]
    result = target.describe_images(ImageIds=[copied])["Images"][0]
    assert result["State"] == "available"
    (snap,) = target.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"] for m in result["BlockDeviceMappings"]])["Snapshots"]
    assert snap["Encrypted"] is True
    assert snap["KmsKeyId"] == sandbox.client("kms", B).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]


def test_copy_without_source_key_access_fails_later_naming_the_key(sandbox):
    cmk_a = sandbox.create_key(A)
    image = sandbox.create_image(A, kms_key_arn=cmk_a)
    share(sandbox, image, B)  # launch + snapshot permission, but no grant
    target = sandbox.client("ec2", B, R2)
    copied = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="doomed", Encrypted=True)["ImageId"]
    result = target.describe_images(ImageIds=[copied])["Images"][0]
    assert result["State"] == "failed"
    assert cmk_a in result["StateReason"]["Message"]


def test_copy_with_a_bad_destination_key_fails_later(sandbox):
    image = sandbox.create_image(A)
    share(sandbox, image, B)
    target = sandbox.client("ec2", B, R2)
    disabled = sandbox.create_key(B, R2)
    sandbox.client("kms", B, R2).disable_key(KeyId=disabled)
    wrong_region = sandbox.create_key(B, R1)
    foreign = sandbox.create_key(C, R2)
    for n, key in enumerate(("alias/does-not-exist", disabled, wrong_region, foreign)):
        # AMI names are unique per account and region, failed images included.
        copied = target.copy_image(SourceImageId=image, SourceRegion=R1, Name=f"bad-key-{n}", Encrypted=True, KmsKeyId=key)["ImageId"]
        result = target.describe_images(ImageIds=[copied])["Images"][0]
        assert result["State"] == "failed", key
        assert "KMS key" in result["StateReason"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        target.copy_image(SourceImageId=image, SourceRegion=R1, Name="bad-key", KmsKeyId=disabled)  # KmsKeyId needs Encrypted
    assert error_code(excinfo) == "InvalidParameterDependency"


def test_same_account_cross_region_copy_carries_tags_when_asked(sandbox):
    image = sandbox.create_image(A, tags={"app": "payments"})
    ec2 = sandbox.client("ec2", A, R2)
    copied = ec2.copy_image(SourceImageId=image, SourceRegion=R1, Name="dr-copy", CopyImageTags=True)["ImageId"]
    result = ec2.describe_images(ImageIds=[copied])["Images"][0]
    assert result["OwnerId"] == A and result["Tags"] == [{"Key": "app", "Value": "payments"}]


def test_copy_client_token_is_idempotent(sandbox):
    image = sandbox.create_image(A)
    share(sandbox, image, B)
    target = sandbox.client("ec2", B, R2)
    args = dict(SourceImageId=image, SourceRegion=R1, Name="copy", ClientToken="amibot-7c1e-copy")
    first = target.copy_image(**args)["ImageId"]
    assert target.copy_image(**args)["ImageId"] == first
    assert len(target.describe_images(Owners=["self"])["Images"]) == 1
    with pytest.raises(ClientError) as excinfo:
        target.copy_image(**{**args, "Name": "another"})
    assert error_code(excinfo) == "IdempotentParameterMismatch"


# --------------------------------------------------------------------------- 6. pending


def test_held_copy_is_pending_with_progress_until_complete(sandbox):
    cmk_a = sandbox.create_key(A)
    image = sandbox.create_image(A, kms_key_arn=cmk_a)
    share(sandbox, image, B, key=cmk_a)
    sandbox.hold_pending()
    target = sandbox.client("ec2", B, R2)
    copied = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="slow", Encrypted=True)["ImageId"]

    def observe() -> tuple[str, list[tuple[str, str]]]:
        found = target.describe_images(ImageIds=[copied])["Images"][0]
        snaps = target.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"] for m in found["BlockDeviceMappings"]])["Snapshots"]
        return found["State"], [(s["State"], s["Progress"]) for s in snaps]

    assert observe() == ("pending", [("pending", "0%")])
    sandbox.set_copy_progress(copied, 42)
    assert observe() == ("pending", [("pending", "42%")])
    sandbox.advance(copied, 30)
    assert observe() == ("pending", [("pending", "72%")])
    assert sandbox.complete(copied) == "available"
    assert observe() == ("available", [("completed", "100%")])
    sandbox.hold_pending(copied)  # an existing image can be put back in flight
    assert observe() == ("pending", [("pending", "0%")])
    assert sandbox.release(copied) == {copied: "available"}
    assert sandbox.complete(copied) == "available"  # finishing twice changes nothing


def test_held_copy_fails_with_state_reason_and_checks_keys_on_completion(sandbox):
    cmk_a = sandbox.create_key(A)
    image = sandbox.create_image(A, kms_key_arn=cmk_a)
    share(sandbox, image, B, key=cmk_a)
    sandbox.hold_pending()
    target = sandbox.client("ec2", B)
    failed = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="fails")["ImageId"]
    revoked = target.copy_image(SourceImageId=image, SourceRegion=R1, Name="revoked")["ImageId"]
    sandbox.fail(failed, "Copy failed: internal error in the sandbox")
    result = target.describe_images(ImageIds=[failed])["Images"][0]
    assert result["State"] == "failed" and result["StateReason"]["Message"] == "Copy failed: internal error in the sandbox"
    # The grant is revoked while the copy runs: it fails when it finishes.
    kms = sandbox.client("kms", A)
    for grant in kms.list_grants(KeyId=cmk_a)["Grants"]:
        kms.revoke_grant(KeyId=cmk_a, GrantId=grant["GrantId"])
    assert sandbox.release() == {revoked: "failed"}


def test_copy_duration_moves_copies_forward_with_time(sandbox, clock):
    image = sandbox.create_image(A)
    ec2 = sandbox.client("ec2", A)
    sandbox.set_copy_duration(60)  # on the test's clock
    copied = ec2.copy_image(SourceImageId=image, SourceRegion=R1, Name="timed")["ImageId"]
    assert ec2.describe_images(ImageIds=[copied])["Images"][0]["State"] == "pending"
    clock.advance(61)
    assert ec2.describe_images(ImageIds=[copied])["Images"][0]["State"] == "available"


# --------------------------------------------------------------------------- 8. CreateImage (migrate)


def test_create_image_from_instance_tags_snapshots_and_can_be_held(sandbox):
    cmk = sandbox.create_key(A)
    net = sandbox.network(A)
    assert len(net["subnets"]) == 2 and sorted(net["subnets"]) == ["us-east-1a", "us-east-1b"]
    instance = sandbox.create_instance(A, availability_zone="us-east-1b", tags={"Name": "app-1"}, instance_profile="app", kms_key_arn=cmk)
    ec2 = sandbox.client("ec2", A)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert described["Placement"]["AvailabilityZone"] == "us-east-1b" and described["SubnetId"] == net["subnets"]["us-east-1b"]
    assert described["KeyName"] == "app-key" and described["SecurityGroups"][0]["GroupId"] == net["security_group_id"]
    assert described["IamInstanceProfile"]["Arn"].endswith("/app")

    sandbox.hold_pending()
    image = ec2.create_image(
        InstanceId=instance, Name="app-1-migrate", NoReboot=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "amibot:request", "Value": "R-3"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "amibot:request", "Value": "R-3"}]},
        ],
    )["ImageId"]
    result = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert result["State"] == "pending" and result["Tags"] == [{"Key": "amibot:request", "Value": "R-3"}]
    snaps = ec2.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"] for m in result["BlockDeviceMappings"]])["Snapshots"]
    assert [s["Tags"] for s in snaps] == [[{"Key": "amibot:request", "Value": "R-3"}]]
    assert snaps[0]["Encrypted"] and snaps[0]["KmsKeyId"] == cmk
    sandbox.release()
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"


# --------------------------------------------------------------------------- 7. faults


def test_injected_throttling_goes_through_botocore_retries(sandbox):
    image = sandbox.create_image(A)
    sandbox.inject_fault("CopyImage", times=2)
    retrying = sandbox.client("ec2", A, R2, config=Config(retries={"mode": "standard", "max_attempts": 5}))
    copied = retrying.copy_image(SourceImageId=image, SourceRegion=R1, Name="after-throttle")
    assert copied["ResponseMetadata"]["RetryAttempts"] == 2
    assert sandbox.calls("CopyImage") == 3 and sandbox.calls("CopyImage", account=A) == 3

    sandbox.inject_fault("CreateGrant", "ThrottlingException", status=400, message="Rate exceeded")
    no_retry = sandbox.client("kms", A, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    with pytest.raises(ClientError) as excinfo:
        no_retry.create_grant(KeyId=sandbox.create_key(A), GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt"])
    assert error_code(excinfo) == "ThrottlingException"

    sandbox.inject_fault("ModifyImageAttribute", "InternalError", status=500, message="boom", account=B)
    sandbox.client("ec2", A).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})  # only B is faulted
    assert sandbox.calls("ModifyImageAttribute") == 1


# --------------------------------------------------------------------------- 9-10. errors, launches


def test_raw_python_errors_become_aws_errors(sandbox):
    image = sandbox.create_image(A)
    owner, target = sandbox.client("ec2", A), sandbox.client("ec2", B)
    with pytest.raises(ClientError) as excinfo:
        owner.describe_image_attribute(ImageId="ami-0000000000000dead", Attribute="launchPermission")
    assert error_code(excinfo) == "InvalidAMIID.NotFound"
    owner.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    with pytest.raises(ClientError) as excinfo:
        target.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert error_code(excinfo) == "AuthFailure"
    cmk = sandbox.create_key(A)
    sandbox.client("kms", A).create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["DescribeKey"])
    with pytest.raises(ClientError) as excinfo:
        sandbox.client("kms", B).update_key_description(KeyId=cmk, Description="x")
    assert error_code(excinfo) == "NotFoundException"


def test_launch_from_shared_encrypted_ami_terminates_without_key_access(sandbox):
    cmk = sandbox.create_key(A)
    image = sandbox.create_image(A, kms_key_arn=cmk)
    ec2_b = sandbox.client("ec2", B)
    with pytest.raises(ClientError) as excinfo:
        ec2_b.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert error_code(excinfo) == "InvalidAMIID.NotFound"

    share(sandbox, image, B, snapshots=False)
    with pytest.raises(ClientError) as excinfo:
        ec2_b.run_instances(ImageId=image, MinCount=1, MaxCount=1, DryRun=True)
    assert error_code(excinfo) == "DryRunOperation"  # DryRun never checks KMS
    doomed = ec2_b.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    instance = ec2_b.describe_instances(InstanceIds=[doomed])["Reservations"][0]["Instances"][0]
    assert instance["State"]["Name"] == "terminated" and instance["StateReason"]["Code"] == "Client.InternalError"

    sandbox.client("kms", A).create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=KEY_OPS)
    ok = ec2_b.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert ec2_b.describe_instances(InstanceIds=[ok])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


# --------------------------------------------------------------------------- sessions, reset, server


def test_sessions_act_as_their_account_across_resets(sandbox):
    session = sandbox.session(B)
    assert session.client("sts").get_caller_identity()["Account"] == B
    sandbox.create_image(B)
    sandbox.reset()
    assert session.client("sts").get_caller_identity()["Account"] == B
    assert session.client("ec2").describe_images(Owners=["self"])["Images"] == []
    assert sandbox.session(BOT_ACCOUNT).client("sts").get_caller_identity()["Account"] == BOT_ACCOUNT


def test_server_mode_smoke():
    with Sandbox(R1, server=True) as server:
        url = server.endpoint_url
        assert url and url.startswith("http://127.0.0.1:") and os.environ["AWS_ENDPOINT_URL"] == url
        cmk = server.create_key(A)
        image = server.create_image(A, kms_key_arn=cmk)
        target = server.client("ec2", B, R2)
        assert target.meta.endpoint_url == server.endpoint_url
        with pytest.raises(ClientError) as excinfo:
            target.copy_image(SourceImageId=image, SourceRegion=R1, Name="early")
        assert error_code(excinfo) == "InvalidAMIID.NotFound"
        share(server, image, B, key=cmk)
        server.inject_fault("CopyImage")
        copied = server.client("ec2", B, R2, config=Config(retries={"mode": "standard", "max_attempts": 3})).copy_image(
            SourceImageId=image, SourceRegion=R1, Name="served", Encrypted=True
        )["ImageId"]
        assert server.calls("CopyImage") == 3  # the refused one, the throttled one, the retry
        assert target.describe_images(ImageIds=[copied])["Images"][0]["State"] == "available"
        with pytest.raises(ClientError) as excinfo:  # a raw KeyError in moto: an HTML 500 without the sandbox
            server.client("ec2", A).describe_image_attribute(ImageId="ami-0000000000000dead", Attribute="description")
        assert error_code(excinfo) == "InvalidAMIID.NotFound"
        server.reset()
        with pytest.raises(ClientError):
            target.describe_images(ImageIds=[copied])
    assert os.environ.get("AWS_ENDPOINT_URL") != url  # the environment is restored
