"""The preflight: read-only inspection of an AMI in its source account."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws.errors import explain
from aws.sessions import AwsSessions


@dataclass
class KeyFacts:
    arn: str
    manager: str  # AWS | CUSTOMER
    state: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class ImageFacts:
    """What the preflight saw of an AMI, shown to the approver."""

    image_id: str
    name: str
    state: str
    owner_id: str
    public: bool
    snapshot_ids: list[str]
    keys: list[KeyFacts]  # one per distinct key, in snapshot order
    unencrypted_snapshots: list[str]
    launch_permissions: list[dict[str, str]]
    tags: dict[str, str]


PREFLIGHT_PERMISSIONS = (
    "ec2:DescribeImages",
    "ec2:DescribeSnapshots",
    "ec2:DescribeImageAttribute",
    "kms:DescribeKey",
    "kms:ListAliases",
)


def inspect_image(sessions: AwsSessions, account_id: str, region: str, image_id: str, tag: str) -> ImageFacts:
    """Read the AMI, its snapshots and their keys as the source account sees them."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise explain("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist", "DescribeImages")
    image = images[0]
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else []
    keys: dict[str, KeyFacts] = {}
    unencrypted = []
    for snapshot in snapshots:
        if not snapshot.get("Encrypted"):
            unencrypted.append(snapshot["SnapshotId"])
            continue
        key_id = snapshot["KmsKeyId"]
        if key_id in keys:
            continue
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=meta["KeyId"]).get("Aliases", [])]
        keys[key_id] = KeyFacts(arn=meta["Arn"], manager=meta["KeyManager"], state=meta["KeyState"], aliases=aliases)
    permissions = []
    if image.get("OwnerId") == account_id:
        permissions = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    return ImageFacts(
        image_id=image_id,
        name=image.get("Name") or "",
        state=image["State"],
        owner_id=image["OwnerId"],
        public=bool(image.get("Public")),
        snapshot_ids=snapshot_ids,
        keys=list(keys.values()),
        unencrypted_snapshots=unencrypted,
        launch_permissions=permissions,
        tags={t["Key"]: t["Value"] for t in image.get("Tags", [])},
    )
