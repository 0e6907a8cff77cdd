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

from botocore.exceptions import BotoCoreError, ClientError

from aws.errors import translate
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
    unread: list[str] = field(default_factory=list)  # the parts AWS did not let amibot read (see notes)


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


GRANTS_PAGE = 100  # ListGrants' Limit: one call per 100 grants


def _grants_and_policy(call: Any, kms: Any, key_arn: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    grants: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyId": key_arn, "Limit": GRANTS_PAGE}
    while True:
        page = call(kms.list_grants, **kwargs)
        grants += page.get("Grants", [])
        if not page.get("Truncated"):
            break
        kwargs["Marker"] = page["NextMarker"]
    return grants, json.loads(call(kms.get_key_policy, KeyId=key_arn, PolicyName="default")["Policy"])


def read_image_access(sessions: AwsSessions, account_id: str, region: str, image_id: str, tag: str, *,
                      shared: dict[Any, Any] | None = None) -> ImageAccess:
    """Read, as the owner account, who can use the AMI. Read-only; 5 + S + 4K calls.

    Each part that cannot be read (throttled past the retries, an answer amibot could
    not parse, a refusal) is a note with AWS's words and is listed in ``unread``; the
    rest is read and shown. Only the AMI itself must be read (its error is raised).
    ``shared`` (one dict per run, e.g. the drift check's) reads each key and each
    account-region's block-public-access state once for every AMI."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    cache: dict[Any, Any] = {} if shared is None else shared
    calls = 0
    notes: list[str] = []
    unread: list[str] = []

    def call(fn: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return fn(**kwargs)

    def part(what: str, read: Any, default: Any) -> Any:
        try:
            return read()
        except (ClientError, BotoCoreError) as error:
            failure = translate(error)
            notes.append(f"{what}: could not be read (AWS said `{failure.code}`: {failure.aws_message})")
            unread.append(what)
            return default

    image = call(ec2.describe_images, ImageIds=[image_id])["Images"][0]
    launch = part("Launch permissions", lambda: call(ec2.describe_image_attribute, ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"], [])
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    snapshots = part("Snapshots", lambda: call(ec2.describe_snapshots, SnapshotIds=snapshot_ids)["Snapshots"], []) if snapshot_ids else []
    snapshot_permissions = {}
    for snap in snapshot_ids:
        entries = part(f"Snapshot permissions of {snap}", lambda snap=snap: call(
            ec2.describe_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"], None)
        if entries is not None:
            snapshot_permissions[snap] = entries
    keys: list[KeyAccess] = []
    for key_id in dict.fromkeys(s["KmsKeyId"] for s in snapshots if s.get("Encrypted") and s.get("KmsKeyId")):
        if ("key", account_id, region, key_id) not in cache:
            cache[("key", account_id, region, key_id)] = _read_key(call, part, kms, key_id, account_id, notes)
        key = cache[("key", account_id, region, key_id)]
        if key is not None:
            keys.append(key)
    if ("bpa", account_id, region) not in cache:
        cache[("bpa", account_id, region)] = (
            part("AMI block public access", lambda: call(ec2.get_image_block_public_access_state)["ImageBlockPublicAccessState"], None),
            part("Snapshot block public access", lambda: call(ec2.get_snapshot_block_public_access_state)["State"], None),
        )
    image_bpa, snapshot_bpa = cache[("bpa", account_id, region)]
    return ImageAccess(
        image_id=image_id, region=region, owner_id=image.get("OwnerId", ""), name=image.get("Name") or "",
        public=bool(image.get("Public")) or any(p.get("Group") == "all" for p in launch),
        launch_permissions=launch, snapshot_permissions=snapshot_permissions, keys=keys,
        image_block_public_access=image_bpa, snapshot_block_public_access=snapshot_bpa, calls=calls, notes=notes, unread=unread,
    )


def _read_key(call: Any, part: Any, kms: Any, key_id: str, account_id: str, notes: list[str]) -> KeyAccess | None:
    """One key's access (None: the key itself could not be read, said in ``notes``)."""
    meta = part(f"KMS key {key_id}", lambda: call(kms.describe_key, KeyId=key_id)["KeyMetadata"], None)
    if meta is None:
        return None
    aliases = [a["AliasName"] for a in part(f"Aliases of {meta['Arn']}", lambda: call(kms.list_aliases, KeyId=meta["KeyId"]).get("Aliases", []), [])]
    grants: list[dict[str, Any]] = []
    policy: dict[str, Any] = {}
    try:
        grants, policy = _grants_and_policy(call, kms, meta["Arn"])
    except (ClientError, BotoCoreError) as error:
        # An AWS-managed key answers AccessDenied to direct calls: nobody else can use it anyway.
        notes.append(f"{meta['Arn']}: could not read its grants or policy ({translate(error).code})")
    return KeyAccess(
        arn=meta["Arn"], aliases=aliases, manager=meta.get("KeyManager", "CUSTOMER"),
        grants=[{k: g.get(k) for k in ("GrantId", "Name", "GranteePrincipal", "Operations")} for g in grants],
        outside_statements=outside_statements(policy, meta.get("AWSAccountId") or account_id),
    )
