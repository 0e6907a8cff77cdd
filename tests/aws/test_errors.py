"""AWS failures in plain words (aws/errors.py).

Each known failure gives a cause and a fix a person can act on; an unknown error
keeps AWS's code and message. Where the sandbox produces the failure the way AWS
does, the error is a real botocore ``ClientError`` from a boto3 call; otherwise the
sandbox's fault injection answers with AWS's own code and wording, so botocore still
parses (and retries) it as it would AWS's.
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.retries.standard import ExponentialBackoff

from aws.actions import SHARE_GRANT_OPERATIONS, account_root
from aws.errors import KNOWN, AwsFailure, explain, is_aws_error, translate
from aws.sessions import AccountAccess, AwsSessions

PROD = "111111111111"
DEV = "222222222222"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"


def raised(call, *args, **kwargs) -> AwsFailure:
    """Make the boto3 call, expect a ClientError, and translate it."""
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    failure = translate(excinfo.value)
    assert isinstance(failure, AwsFailure)
    return failure


def assert_explained(failure: AwsFailure, *, code: str, cause: str, fix: str) -> None:
    assert failure.code == code
    assert failure.cause and cause.lower() in failure.cause.lower(), failure.cause
    assert failure.fix and fix.lower() in failure.fix.lower(), failure.fix
    # AWS's own words stay visible under the plain ones.
    assert f"`{code}`" in failure.plain() and failure.aws_message in failure.plain()


@pytest.fixture
def no_backoff(monkeypatch):
    """botocore's standard retry mode still decides and counts retries; only its
    exponential sleep is skipped so the test stays fast."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


# --------------------------------------------------------------------------- from the sandbox


def test_copy_without_snapshot_permission(sandbox):
    image = sandbox.create_image(PROD, REGION)
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})

    failure = raised(sandbox.client("ec2", DEV, REGION).copy_image, SourceImageId=image, SourceRegion=REGION, Name="copy", Encrypted=True)

    assert failure.aws_message == "You do not have permission to access the storage of this ami"
    assert failure.operation == "CopyImage"
    assert_explained(failure, code="InvalidRequest", cause="snapshot permission", fix="allow-copy")


def test_launch_without_key_access_client_internal_error(sandbox):
    key = sandbox.create_key(PROD, REGION)
    image = sandbox.create_image(PROD, REGION, kms_key_arn=key)
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    dev = sandbox.client("ec2", DEV, REGION)
    instance_id = dev.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    reason = dev.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["StateReason"]

    failure = explain(reason["Code"], reason["Message"], "RunInstances")

    assert_explained(failure, code="Client.InternalError", cause="cannot use the KMS key", fix="grant")
    assert "kms:Decrypt" in failure.fix and "few minutes" in failure.fix


def test_aws_managed_key_snapshot_cannot_be_shared(sandbox):
    ebs = sandbox.aws_managed_ebs_key(PROD, REGION)
    image = sandbox.create_image(PROD, REGION, kms_key_arn=ebs)
    ec2 = sandbox.client("ec2", PROD, REGION)
    snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    failure = raised(
        ec2.modify_snapshot_attribute,
        SnapshotId=snapshot,
        Attribute="createVolumePermission",
        CreateVolumePermission={"Add": [{"UserId": DEV}]},
    )

    assert_explained(failure, code="OperationNotPermitted", cause="aws/ebs", fix="customer-managed key")


def test_aws_managed_key_image_cannot_be_shared(sandbox):
    # AWS refuses ModifyImageAttribute itself with this wording; the sandbox lets the
    # call through (amibot's preflight refuses such AMIs first), so the fault carries it.
    image = sandbox.create_image(PROD, REGION, kms_key_arn=sandbox.aws_managed_ebs_key(PROD, REGION))
    sandbox.inject_fault(
        "ModifyImageAttribute", "InvalidParameter", status=400,
        message="Snapshots encrypted with the AWS Managed CMK can\u2019t be shared. Specify another snapshot.",
    )

    failure = raised(sandbox.client("ec2", PROD, REGION).modify_image_attribute, ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})

    assert_explained(failure, code="InvalidParameter", cause="AWS-managed", fix="copy the AMI")


def test_key_missing_in_the_destination_region(sandbox):
    sandbox.create_key(DEV, REGION, alias="alias/ami-dev")  # exists in us-east-1 only

    failure = raised(sandbox.client("kms", DEV, OTHER_REGION).describe_key, KeyId="alias/ami-dev")

    assert_explained(failure, code="NotFoundException", cause="regional", fix="destination region")


def test_grant_already_gone_is_not_a_missing_key(sandbox):
    key = sandbox.create_key(PROD, REGION)

    failure = raised(sandbox.client("kms", PROD, REGION).revoke_grant, KeyId=key, GrantId="0123abcd")

    assert_explained(failure, code="NotFoundException", cause="grant is already gone", fix="nothing to do")


def test_other_accounts_key_without_grant_access_denied(sandbox):
    key = sandbox.create_key(PROD, REGION)

    failure = raised(sandbox.client("kms", DEV, REGION).describe_key, KeyId=key)

    assert_explained(failure, code="AccessDeniedException", cause="not allowed to use that KMS key", fix="key policy")


def test_disabled_and_deleted_keys(sandbox):
    key = sandbox.create_key(PROD, REGION)
    kms = sandbox.client("kms", PROD, REGION)
    kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=list(SHARE_GRANT_OPERATIONS), Name="g")
    kms.disable_key(KeyId=key)
    dev_kms = sandbox.client("kms", DEV, REGION)

    failure = raised(dev_kms.create_grant, KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=["Decrypt"], DryRun=True)
    assert_explained(failure, code="DisabledException", cause="disabled", fix="enable the key")

    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    failure = raised(dev_kms.create_grant, KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=["Decrypt"], DryRun=True)
    assert_explained(failure, code="KMSInvalidStateException", cause="pending deletion", fix="cancel its deletion")


def test_throttled_past_botocore_retries_request_limit_exceeded(sandbox, no_backoff):
    image = sandbox.create_image(PROD, REGION)
    sandbox.inject_fault("CopyImage", times=20)
    # botocore's Config: ``total_max_attempts`` counts the first call; ``max_attempts`` only the retries.
    ec2 = sandbox.client("ec2", PROD, REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 3}))

    failure = raised(ec2.copy_image, SourceImageId=image, SourceRegion=REGION, Name="copy")

    assert sandbox.calls("CopyImage") == 3, "botocore retried the throttled call, then gave up"
    assert failure.retries == 2 and "after 2 retries" in failure.plain()
    assert_explained(failure, code="RequestLimitExceeded", cause="throttled", fix="retried in a few minutes")


def test_image_not_available_yet(sandbox):
    image = sandbox.create_image(PROD, REGION)
    sandbox.inject_fault("CopyImage", "InvalidAMIID.Unavailable", status=400, message=f"The image id '[{image}]' is no longer available")

    failure = raised(sandbox.client("ec2", PROD, REGION).copy_image, SourceImageId=image, SourceRegion=REGION, Name="copy")

    assert_explained(failure, code="InvalidAMIID.Unavailable", cause="pending", fix="available")


def test_unencrypted_copy_of_an_encrypted_snapshot(sandbox):
    image = sandbox.create_image(PROD, REGION, kms_key_arn=sandbox.create_key(PROD, REGION))
    # CopyImage's own wording (InvalidRequest); other calls say InvalidParameterCombination.
    sandbox.inject_fault(
        "CopyImage", "InvalidRequest", status=400,
        message="Snapshot snap-0123456789abcdef0 is encrypted. Creating unencrypted copy from an encrypted snapshot is not supported.",
    )
    failure = raised(sandbox.client("ec2", PROD, REGION).copy_image, SourceImageId=image, SourceRegion=REGION, Name="copy")
    assert_explained(failure, code="InvalidRequest", cause="cannot be copied", fix="Encrypted=true")
    assert "snapshot permission" not in failure.cause, "not confused with the missing-snapshot-permission failure"

    failure = explain("InvalidParameterCombination", "The encrypted flag cannot be specified since device /dev/xvda has a snapshot specified.")
    assert_explained(failure, code="InvalidParameterCombination", cause="unencrypted", fix="Encrypted=true")


def test_assume_role_access_denied(sandbox):
    sessions = AwsSessions({DEV: AccountAccess(DEV, f"arn:aws:iam::{DEV}:role/amibot")})
    sandbox.inject_fault(
        "AssumeRole", "AccessDenied", status=403,
        message=f"User: arn:aws:iam::123456789012:user/amibot is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{DEV}:role/amibot",
    )

    failure = raised(sessions.client, "ec2", DEV, REGION, "R-1-abc")

    assert_explained(failure, code="AccessDenied", cause="could not assume its role", fix="trust policy")


def test_access_denied_in_the_member_account(sandbox):
    sandbox.inject_fault("DescribeImages", "UnauthorizedOperation", status=403, message="You are not authorized to perform this operation.")
    failure = raised(sandbox.client("ec2", DEV, REGION).describe_images, Owners=["self"])
    assert_explained(failure, code="UnauthorizedOperation", cause="not allowed", fix="amibot iam-policy")

    failure = explain("AccessDenied", "Access Denied")
    assert_explained(failure, code="AccessDenied", cause="not allowed", fix="amibot iam-policy")


def test_unknown_error_keeps_aws_code_and_message(sandbox):
    sandbox.inject_fault("DescribeImages", "Ec2SomethingNew", status=400, message="A failure nobody has seen before.")

    failure = raised(sandbox.client("ec2", DEV, REGION).describe_images, Owners=["self"])

    assert (failure.code, failure.aws_message, failure.operation) == ("Ec2SomethingNew", "A failure nobody has seen before.", "DescribeImages")
    assert failure.cause is None and failure.fix is None
    assert failure.plain() == "AWS said in DescribeImages: `Ec2SomethingNew`: A failure nobody has seen before."


# --------------------------------------------------------------------------- the table itself


@pytest.mark.parametrize("known", KNOWN, ids=lambda k: f"{k.codes[0]}:{k.pattern or 'any'}")
def test_every_known_failure_has_a_cause_and_a_fix_and_is_reachable(known):
    """Each entry's real example message reaches that entry (no earlier entry of the
    same code shadows it), for every code it covers."""
    assert known.cause.strip() and known.fix.strip()
    for code in known.codes:
        failure = explain(code, known.example)
        assert (failure.cause, failure.fix) == (known.cause, known.fix), f"{code}: {known.example!r} is explained by another entry"


def test_translate_passes_failures_through_and_explains_transport_errors():
    failure = AwsFailure("X", "y", cause="c", fix="f")
    assert translate(failure) is failure
    transport = translate(EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"))
    assert transport.code == "EndpointConnectionError" and transport.cause and transport.fix
    assert is_aws_error(failure) and not is_aws_error(ValueError("x"))
    with pytest.raises(TypeError):
        translate(ValueError("not AWS"))
