"""The sandbox refuses what AWS refuses when copying, sharing or launching an AMI
(offline/sandbox/copy_rules.py; docs/aws-rules.md names the AWS pages)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from aws.actions import account_root
from offline import rehearsal
from offline.sandbox import copy_rules

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, DST = rehearsal.REGION, rehearsal.OTHER_REGION


def code_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def share_for_copy(sandbox, image: str, key: str | None = None, operations: list[str] | None = None) -> None:
    prod = sandbox.client("ec2", PROD, SRC)
    prod.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    for m in prod.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]:
        prod.modify_snapshot_attribute(SnapshotId=m["Ebs"]["SnapshotId"], Attribute="createVolumePermission", OperationType="add", UserIds=[DEV])
    if key:
        sandbox.client("kms", PROD, SRC).create_grant(KeyId=key, GranteePrincipal=account_root(DEV, SRC), Operations=operations or ["Decrypt"])


def copy(sandbox, account: str, image: str, name: str = "the-copy", **extra):
    return sandbox.client("ec2", account, DST).copy_image(SourceImageId=image, SourceRegion=SRC, Name=name, **extra)


def test_billing_coded_images_are_not_copied_to_another_account(sandbox):
    image = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(image, usage_operation="RunInstances:0002", platform_details="Windows")
    share_for_copy(sandbox, image)
    assert code_of(copy, sandbox=sandbox, account=DEV, image=image) == (
        "InvalidRequest", "Images with EC2 BillingProduct codes cannot be copied to another AWS account.")
    assert copy(sandbox, PROD, image)["ImageId"]  # within the account: allowed


def test_instance_store_images_are_not_encrypted_nor_copied_across_accounts(sandbox):
    image = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(image, instance_store=True)
    share_for_copy(sandbox, image)
    key = sandbox.create_key(PROD, DST)
    assert code_of(copy, sandbox=sandbox, account=PROD, image=image, Encrypted=True, KmsKeyId=key)[0] == "InvalidRequest"
    assert code_of(copy, sandbox=sandbox, account=DEV, image=image)[0] == "InvalidRequest"


def test_archived_snapshots_cannot_be_copied_or_launched(sandbox):
    image = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(image, archived=True)
    code, message = code_of(copy, sandbox=sandbox, account=PROD, image=image)
    assert code == "IncorrectState" and "archive tier" in message
    ec2 = sandbox.client("ec2", PROD, SRC)
    assert code_of(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1)[0] == "IncorrectState"


def test_at_most_1000_sharing_entities(sandbox):
    image = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(image, shared_with=999)
    ec2 = sandbox.client("ec2", PROD, SRC)
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})  # the 1,000th
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})  # again: nothing new
    code, _ = code_of(ec2.modify_image_attribute, ImageId=image, LaunchPermission={"Add": [{"UserId": "444444444444"}]})
    assert code == "ResourceLimitExceeded"


def test_copy_names_are_unique_in_the_destination(sandbox):
    image = sandbox.create_image(PROD, SRC)
    first = copy(sandbox, PROD, image, name="release-1")["ImageId"]
    code, message = code_of(copy, sandbox=sandbox, account=PROD, image=image, name="release-1")
    assert code == "InvalidAMIName.Duplicate" and first in message
    assert copy(sandbox, PROD, image, name="release-2")["ImageId"]


def test_at_most_300_copies_in_flight_per_destination_region(sandbox, monkeypatch):
    monkeypatch.setattr(copy_rules, "MAX_COPIES_IN_FLIGHT", 2)  # 300 in AWS; the rule, not the number, is under test
    image = sandbox.create_image(PROD, SRC)
    sandbox.hold_pending(True)
    copy(sandbox, PROD, image, name="c-1")
    copy(sandbox, PROD, image, name="c-2")
    code, message = code_of(copy, sandbox=sandbox, account=PROD, image=image, name="c-3")
    assert code == "ResourceLimitExceeded" and "concurrent AMI copies" in message
    sandbox.release()
    assert copy(sandbox, PROD, image, name="c-3")["ImageId"]


def test_a_copy_needs_every_kms_operation_on_the_source_key(sandbox):
    key = sandbox.create_key(PROD, SRC)
    image = sandbox.create_image(PROD, SRC, kms_key_arn=key)
    share_for_copy(sandbox, image, key, operations=["Decrypt"])  # Decrypt alone is not enough
    dev_key = sandbox.create_key(DEV, DST)
    copied = copy(sandbox, DEV, image, Encrypted=True, KmsKeyId=dev_key)["ImageId"]
    found = sandbox.client("ec2", DEV, DST).describe_images(ImageIds=[copied])["Images"][0]
    assert found["State"] == "failed"
    assert "kms:ReEncryptFrom" in found["StateReason"]["Message"] and "kms:CreateGrant" in found["StateReason"]["Message"]


def test_a_launch_needs_describe_key_and_generate_data_key_on_the_snapshot_key(sandbox):
    key = sandbox.create_key(PROD, SRC)
    image = sandbox.create_image(PROD, SRC, kms_key_arn=key)
    sandbox.client("ec2", PROD, SRC).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    kms = sandbox.client("kms", PROD, SRC)
    grant = kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, SRC), Operations=["Decrypt", "CreateGrant"])["GrantId"]
    ec2 = sandbox.client("ec2", DEV, SRC)
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated" and state["StateReason"]["Code"] == "Client.InternalError"
    kms.revoke_grant(KeyId=key, GrantId=grant)
    kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, SRC),
                     Operations=["Decrypt", "CreateGrant", "DescribeKey", "GenerateDataKeyWithoutPlaintext"])
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] != "terminated"


def test_what_the_sandbox_refuses_reads_in_plain_words(sandbox):
    """After approval (the AMI changed since the preflight) AWS's refusal gets a cause
    and a fix from the error table."""
    from aws.errors import translate

    image = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(image, product_codes=["abc123"], archived=False)
    share_for_copy(sandbox, image)
    with pytest.raises(ClientError) as billing:
        copy(sandbox, DEV, image)
    assert "billing product codes" in translate(billing.value).cause
    archived = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(archived, archived=True)
    with pytest.raises(ClientError) as tier:
        copy(sandbox, PROD, archived)
    assert "restore-snapshot-tier" in translate(tier.value).fix
    store = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(store, instance_store=True)
    with pytest.raises(ClientError) as instance_store:
        copy(sandbox, PROD, store, Encrypted=True)
    assert "instance store-backed" in translate(instance_store.value).cause
    full = sandbox.create_image(PROD, SRC)
    sandbox.mark_image(full, shared_with=1000)
    with pytest.raises(ClientError) as limit:
        sandbox.client("ec2", PROD, SRC).modify_image_attribute(ImageId=full, LaunchPermission={"Add": [{"UserId": DEV}]})
    assert "1,000" in translate(limit.value).cause


def test_the_sandbox_refuses_a_51st_tag_as_aws_does(sandbox):
    """Issue 17: /ami tag is capped at AWS's 50 tags per resource; the sandbox refuses
    the same (moto's TagLimitExceeded, kept by the sandbox)."""
    import pytest
    from botocore.exceptions import ClientError

    from offline import rehearsal

    world = rehearsal.seed(sandbox)
    ec2 = sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2")
    have = len(ec2.describe_images(ImageIds=[world.plain_image])["Images"][0].get("Tags", []))
    with pytest.raises(ClientError) as info:
        ec2.create_tags(Resources=[world.plain_image], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51 - have)])
    assert info.value.response["Error"]["Code"] == "TagLimitExceeded"
