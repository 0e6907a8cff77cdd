"""The AWS reads behind ``amibot doctor``: who a configured account's credentials
really are, whether a key is usable, and the block-public-access state of a region.

Read-only: the key check uses ``CreateGrant`` with ``DryRun`` (KMS answers
``DryRunOperationException`` when the call would have succeeded), so nothing is
granted. Every botocore error comes back as an :class:`~aws.errors.AwsFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from aws.actions import account_root
from aws.errors import AwsFailure, translate
from aws.sessions import AwsSessions

# What the doctor calls inside a member account (GetCallerIdentity needs no permission).
# Added to the generated member-account policy (aws.iam), so the doctor works with it.
DOCTOR_PERMISSIONS = (
    "ec2:DescribeTags",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:GetSnapshotBlockPublicAccessState",
    "kms:DescribeKey",
    "kms:CreateGrant",
)

DOCTOR_SESSION_TAG = "doctor"

# The states AWS reports (EC2 API reference: GetImageBlockPublicAccessState,
# GetSnapshotBlockPublicAccessState).
IMAGE_BPA_ON = "block-new-sharing"
SNAPSHOT_BPA_ON = ("block-all-sharing", "block-new-sharing")


@dataclass(frozen=True)
class CallerIdentity:
    """What ``sts:GetCallerIdentity`` says about a configured account's credentials."""

    account_id: str
    arn: str


@dataclass(frozen=True)
class KeyHealth:
    """One KMS key as its own account sees it."""

    arn: str
    state: str  # Enabled, Disabled, PendingDeletion, ...
    grant_problem: str | None  # None: a CreateGrant (DryRun) would succeed


@dataclass(frozen=True)
class BlockPublicAccess:
    """AMI and snapshot block public access in one account and region."""

    image_state: str
    snapshot_state: str

    @property
    def images_blocked(self) -> bool:
        return self.image_state == IMAGE_BPA_ON

    @property
    def snapshots_blocked(self) -> bool:
        return self.snapshot_state in SNAPSHOT_BPA_ON


def _aws(error: Exception) -> AwsFailure:
    return translate(error)


def caller_identity(sessions: AwsSessions, account_id: str, region: str) -> CallerIdentity:
    """Assume the account's role (with its external id) when it has one, then ask STS
    who the credentials belong to."""
    try:
        found = sessions.client("sts", account_id, region, DOCTOR_SESSION_TAG).get_caller_identity()
    except AwsFailure as error:
        if error.code != "AccountMismatch":
            raise
        # No role and the bot's own credentials are another account's: say whose.
        found = sessions.own_identity(region)
    except (ClientError, BotoCoreError) as error:
        raise _aws(error) from error
    return CallerIdentity(found["Account"], found["Arn"])


def key_health(sessions: AwsSessions, account_id: str, region: str, key_ref: str) -> KeyHealth:
    """``DescribeKey`` (present, state), then ``CreateGrant`` with ``DryRun`` to the
    account's own root: usable for the grants amibot makes."""
    kms = sessions.client("kms", account_id, region, DOCTOR_SESSION_TAG)
    try:
        meta = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    except (ClientError, BotoCoreError) as error:
        raise _aws(error) from error
    problem: str | None = None
    try:
        kms.create_grant(
            KeyId=meta["Arn"],
            GranteePrincipal=account_root(account_id, region),
            Operations=["DescribeKey"],
            DryRun=True,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "DryRunOperationException":
            problem = _aws(error).plain()
    except BotoCoreError as error:
        problem = _aws(error).plain()
    return KeyHealth(meta["Arn"], meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled"), problem)


def block_public_access(sessions: AwsSessions, account_id: str, region: str) -> BlockPublicAccess:
    """The AMI and snapshot block-public-access states of one account and region."""
    ec2 = sessions.client("ec2", account_id, region, DOCTOR_SESSION_TAG)
    try:
        image = ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"]
        snapshot = ec2.get_snapshot_block_public_access_state()["State"]
    except (ClientError, BotoCoreError) as error:
        raise _aws(error) from error
    return BlockPublicAccess(image, snapshot)


def marked_launch_templates(sessions: AwsSessions, account_id: str, region: str) -> list[str]:
    """The launch templates their owners marked for ``update-lt`` (tag
    ``amibot:update-lt = true``): the only ones the member policy lets amibot change."""
    from aws.actions.launch_template import MARK_TAG

    ec2 = sessions.client("ec2", account_id, region, DOCTOR_SESSION_TAG)
    try:
        tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": [MARK_TAG]}]).get("Tags", [])
    except Exception as error:
        raise _aws(error) from error
    return sorted(t["ResourceId"] for t in tags if t.get("Value") == "true" and str(t.get("ResourceId", "")).startswith("lt-"))
