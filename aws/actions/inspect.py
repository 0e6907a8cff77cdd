"""The preflight: read-only inspection of an AMI in its source account."""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

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
    # What decides whether AWS will copy or share it at all (docs/aws-rules.md):
    product_codes: list[str] = field(default_factory=list)  # "<id> (<type>)": Marketplace / billing products
    platform_details: str = "Linux/UNIX"
    usage_operation: str = "RunInstances"  # anything else carries a billing product code
    root_device_type: str = "ebs"  # or "instance-store" (S3-backed)
    deprecation_time: str | None = None  # ISO 8601, when AWS deprecates it
    archived_snapshots: list[str] = field(default_factory=list)  # snapshots in the archive tier
    # False for another account's AMI whose snapshots the account cannot read (no
    # createVolumePermission): it may launch it, not copy it.
    snapshots_readable: bool = True

    def billing_coded(self) -> bool:
        """Whether the AMI carries billing product codes (Marketplace product codes,
        or a licensed platform such as Windows or RHEL: UsageOperation other than
        ``RunInstances``). AWS: such images cannot be copied to another account."""
        return bool(self.product_codes) or (self.usage_operation or "RunInstances") != "RunInstances"


PREFLIGHT_PERMISSIONS = (
    "ec2:DescribeImages",
    "ec2:DescribeSnapshots",
    "ec2:DescribeImageAttribute",
    "kms:DescribeKey",
    "kms:ListAliases",
    # Allowed AMIs, read from each target of a share or copy (docs/aws-rules.md).
    "ec2:GetAllowedImagesSettings",
)


@dataclass
class AllowedImages:
    """An account's Allowed AMIs in a region (``GetAllowedImagesSettings``)."""

    state: str  # disabled | enabled | audit-mode
    # Each criterion: its ImageProviders, and whether it names more (ImageNames,
    # CreationDateCondition…: all of a criterion must match).
    criteria: list[tuple[list[str], bool]] = field(default_factory=list)

    def match(self, owner_id: str) -> str:
        """``yes``: a criterion of ImageProviders alone names ``owner_id``; ``maybe``:
        only criteria with further conditions do; ``no``: none does."""
        named = [more for providers, more in self.criteria if owner_id in providers]
        return "yes" if named and not all(named) else "maybe" if named else "no"


def allowed_images(sessions: AwsSessions, account_id: str, region: str, tag: str) -> AllowedImages:
    """Read the Allowed AMIs settings of ``account_id`` in ``region``."""
    answer = sessions.client("ec2", account_id, region, tag).get_allowed_images_settings()
    return AllowedImages(
        state=answer.get("State") or "disabled",
        criteria=[(list(c.get("ImageProviders") or []), bool(set(c) - {"ImageProviders"})) for c in answer.get("ImageCriteria") or []],
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
    foreign = image.get("OwnerId") != account_id
    readable = True
    try:
        snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else []
    except ClientError as error:
        # Another account's snapshots are visible only with createVolumePermission.
        if not foreign or error.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
            raise
        snapshots, readable = [], False
    archived = [s["SnapshotId"] for s in snapshots if s.get("StorageTier") == "archive"]
    keys: dict[str, KeyFacts] = {}
    unencrypted = []
    for snapshot in snapshots:
        if not snapshot.get("Encrypted"):
            unencrypted.append(snapshot["SnapshotId"])
            continue
        key_id = snapshot["KmsKeyId"]
        if key_id in keys:
            continue
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as error:
            # Another account's key: usable only through its grant or key policy.
            if not foreign or error.response["Error"]["Code"] not in ("AccessDeniedException", "NotFoundException"):
                raise
            keys[key_id] = KeyFacts(arn=key_id, manager="CUSTOMER", state=f"not usable by {account_id} (no grant or key-policy statement)")
            continue
        aliases = []
        if not foreign:  # ListAliases shows the caller's own aliases only
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
        product_codes=[f"{p.get('ProductCodeId')} ({p.get('ProductCodeType')})" for p in image.get("ProductCodes", [])],
        platform_details=image.get("PlatformDetails") or "Linux/UNIX",
        usage_operation=image.get("UsageOperation") or "RunInstances",
        root_device_type=image.get("RootDeviceType") or "ebs",
        deprecation_time=image.get("DeprecationTime"),
        archived_snapshots=archived,
        snapshots_readable=readable,
    )
