"""Who can use an AMI: a read-only look, from its owner account, at every way in.

The calls, for an AMI with S snapshots encrypted under K distinct keys (the bound
stated in docs/best-practices.md): DescribeImages, DescribeImageAttribute
(launchPermission), DescribeSnapshots, S × DescribeSnapshotAttribute
(createVolumePermission), per key DescribeKey, ListAliases, ListGrants (one call per
100 grants) and GetKeyPolicy, then GetImageBlockPublicAccessState and
GetSnapshotBlockPublicAccessState: 5 + S + 4K calls (+ one per further page of grants).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.sessions import AwsSessions

AUDIT_PERMISSIONS = (
    "ec2:DescribeImages",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSnapshotAttribute",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:GetSnapshotBlockPublicAccessState",
    "kms:DescribeKey",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:GetKeyPolicy",
)


@dataclass
class KeyAccess:
    """One key of the AMI's snapshots: its grants and the key-policy statements that
    let principals other than its own account in."""

    arn: str
    aliases: list[str]
    manager: str
    grants: list[dict[str, Any]]  # GrantId, Name, GranteePrincipal, Operations
    outside_statements: list[dict[str, Any]]  # Allow statements naming "*" or other accounts


@dataclass
class ImageAccess:
    """Everything that lets someone use (or copy) an AMI, as AWS says it now."""

    image_id: str
    region: str
    owner_id: str
    name: str
    public: bool
    launch_permissions: list[dict[str, str]]
    snapshot_permissions: dict[str, list[dict[str, str]]]  # snapshot id → entries (UserId / Group)
    keys: list[KeyAccess]
    image_block_public_access: str | None  # block-new-sharing | unblocked | None (unknown)
    snapshot_block_public_access: str | None  # block-all-sharing | block-new-sharing | unblocked | None
    calls: int = 0
    notes: list[str] = field(default_factory=list)


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        values = principal.get("AWS", [])
        return [values] if isinstance(values, str) else list(values)
    return []


def outside_statements(policy: dict[str, Any], owner_id: str) -> list[dict[str, Any]]:
    """The Allow statements of a key policy whose principals include anyone other than
    the key's own account (``*``, with or without conditions, or another account)."""
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    found = []
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        others = [p for p in _principals(statement) if p == "*" or (p.split(":")[4] if p.count(":") >= 4 else p) != owner_id]
        if others:
            found.append(statement)
    return found


def read_image_access(sessions: AwsSessions, account_id: str, region: str, image_id: str, tag: str) -> ImageAccess:
    """Read, as the owner account, who can use the AMI. Read-only; 5 + S + 4K calls."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    calls = 0

    def call(fn: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return fn(**kwargs)

    image = call(ec2.describe_images, ImageIds=[image_id])["Images"][0]
    launch = call(ec2.describe_image_attribute, ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    snapshots = call(ec2.describe_snapshots, SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else []
    snapshot_permissions = {
        snap: call(ec2.describe_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"]
        for snap in snapshot_ids
    }
    keys: list[KeyAccess] = []
    notes: list[str] = []
    for key_id in dict.fromkeys(s["KmsKeyId"] for s in snapshots if s.get("Encrypted") and s.get("KmsKeyId")):
        meta = call(kms.describe_key, KeyId=key_id)["KeyMetadata"]
        aliases = [a["AliasName"] for a in call(kms.list_aliases, KeyId=meta["KeyId"]).get("Aliases", [])]
        grants: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyId": meta["Arn"]}
        policy: dict[str, Any] = {}
        try:
            while True:
                page = call(kms.list_grants, **kwargs)
                grants += page.get("Grants", [])
                if not page.get("Truncated"):
                    break
                kwargs["Marker"] = page["NextMarker"]
            policy = json.loads(call(kms.get_key_policy, KeyId=meta["Arn"], PolicyName="default")["Policy"])
        except ClientError as error:
            # An AWS-managed key answers AccessDenied to direct calls: nobody else can use it anyway.
            notes.append(f"{meta['Arn']}: could not read its grants or policy ({error.response['Error']['Code']})")
        keys.append(KeyAccess(
            arn=meta["Arn"], aliases=aliases, manager=meta.get("KeyManager", "CUSTOMER"),
            grants=[{k: g.get(k) for k in ("GrantId", "Name", "GranteePrincipal", "Operations")} for g in grants],
            outside_statements=outside_statements(policy, meta.get("AWSAccountId") or account_id),
        ))
    image_bpa = snapshot_bpa = None
    try:
        image_bpa = call(ec2.get_image_block_public_access_state)["ImageBlockPublicAccessState"]
    except ClientError as error:
        notes.append(f"AMI block public access: unknown ({error.response['Error']['Code']})")
    try:
        snapshot_bpa = call(ec2.get_snapshot_block_public_access_state)["State"]
    except ClientError as error:
        notes.append(f"Snapshot block public access: unknown ({error.response['Error']['Code']})")
    return ImageAccess(
        image_id=image_id, region=region, owner_id=image.get("OwnerId", ""), name=image.get("Name") or "",
        public=bool(image.get("Public")) or any(p.get("Group") == "all" for p in launch),
        launch_permissions=launch, snapshot_permissions=snapshot_permissions, keys=keys,
        image_block_public_access=image_bpa, snapshot_block_public_access=snapshot_bpa, calls=calls, notes=notes,
    )
