"""The preflight: read-only inspection of an AMI in its source account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError

from aws.errors import explain
from aws.reads import SEQUENTIAL, ParallelReads
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


def inspect_image(sessions: AwsSessions, account_id: str, region: str, image_id: str, tag: str, reads: ParallelReads = SEQUENTIAL,
                  on_image: Callable[[dict[str, Any]], None] | None = None) -> ImageFacts:
    """Read the AMI, its snapshots and their keys as the source account sees them.

    Calls: DescribeImages; then, at once (on ``reads``), DescribeSnapshots and the
    launch permissions (DescribeImageAttribute, own AMIs only); then per distinct key
    at once DescribeKey and ListAliases (own keys only; ListAliases takes the key's
    ARN as the snapshot names it). Errors are raised in the order the reads were
    always made (the snapshots', then each key's DescribeKey, then its ListAliases)."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise explain("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist", "DescribeImages")
    image = images[0]
    if on_image is not None:  # the caller may start reads that depend on the image alone (its encryption)
        on_image(image)
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    foreign = image.get("OwnerId") != account_id
    readable = True
    described = reads.start("snapshots", lambda: ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else [])
    launch = None if foreign else reads.start(
        "launch-permissions", lambda: ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"])
    try:
        snapshots = described.result()
    except ClientError as error:
        # Another account's snapshots are visible only with createVolumePermission.
        if not foreign or error.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
            raise
        snapshots, readable = [], False
    archived = [s["SnapshotId"] for s in snapshots if s.get("StorageTier") == "archive"]
    unencrypted = [s["SnapshotId"] for s in snapshots if not s.get("Encrypted")]
    key_ids = list(dict.fromkeys(s["KmsKeyId"] for s in snapshots if s.get("Encrypted")))
    described_keys = {k: reads.start(f"key {k}", lambda k=k: kms.describe_key(KeyId=k)["KeyMetadata"]) for k in key_ids}
    # ListAliases shows the caller's own aliases only.
    aliases_of = {} if foreign else {k: reads.start(f"aliases {k}", lambda k=k: kms.list_aliases(KeyId=k).get("Aliases", [])) for k in key_ids}
    keys: dict[str, KeyFacts] = {}
    for key_id in key_ids:
        try:
            meta = described_keys[key_id].result()
        except ClientError as error:
            # Another account's key: usable only through its grant or key policy.
            if not foreign or error.response["Error"]["Code"] not in ("AccessDeniedException", "NotFoundException"):
                raise
            keys[key_id] = KeyFacts(arn=key_id, manager="CUSTOMER", state=f"not usable by {account_id} (no grant or key-policy statement)")
            continue
        aliases = [a["AliasName"] for a in aliases_of[key_id].result()] if key_id in aliases_of else []
        keys[key_id] = KeyFacts(arn=meta["Arn"], manager=meta["KeyManager"], state=meta["KeyState"], aliases=aliases)
    permissions = launch.result() if launch is not None else []
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
