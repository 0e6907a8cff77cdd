"""Checks from the target account's side: a shared AMI is visible and its keys are
usable; a copy is what the request asked for."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from aws.actions.base import Action, ActionParams, account_root, register
from aws.actions.images import look_up_image
from aws.actions.visibility import until_visible
from aws.errors import AwsFailure


@register
class VerifyTargetAccess(Action):
    """From the target account: the AMI is visible and its keys are usable.

    ``RunInstances`` with ``DryRun`` checks IAM only, never KMS, so it is no
    evidence; ``DescribeKey`` and ``CreateGrant`` with ``DryRun`` from the target are.
    A new grant takes minutes to spread, so this retries with backoff."""

    name = "verify.target_access"
    permissions = ("ec2:DescribeImages", "kms:DescribeKey", "kms:CreateGrant")
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI to look for and the keys to try from the target."""

        image_id: str
        key_arns: list[str] = field(default_factory=list)

    @classmethod
    def describe(cls, params, *, account, region, for_copy: bool = False):
        """``for_copy``: before a copy, which names the region and the calls."""
        if for_copy:
            return (
                f"Check from `{account.alias}` in {region}: the AMI is visible"
                + (" and its key is usable (DescribeKey, CreateGrant DryRun; retried while the new grant spreads)" if params.key_arns else "")
            )
        return f"Check from `{account.alias}`: the AMI is visible" + (" and its key is usable" if params.key_arns else "")

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        kms = ctx.client("kms", account_id, region)
        deadline = time.monotonic() + ctx.grant_wait_seconds
        delay = 2.0
        while True:
            try:
                images = ec2.describe_images(ImageIds=[params.image_id])["Images"]
                if not images:
                    raise AwsFailure("InvalidAMIID.NotFound", f"{params.image_id} is not visible from {account_id}")
                for key_arn in params.key_arns:
                    kms.describe_key(KeyId=key_arn)
                    try:
                        kms.create_grant(KeyId=key_arn, GranteePrincipal=account_root(account_id, region), Operations=["Decrypt"], DryRun=True)
                    except ClientError as error:
                        if error.response["Error"]["Code"] != "DryRunOperationException":
                            raise
                return {"visible": True, "keys_usable": list(params.key_arns)}
            except (ClientError, AwsFailure) as error:
                code = error.response["Error"]["Code"] if isinstance(error, ClientError) else error.code
                if code not in ("AccessDeniedException", "InvalidAMIID.NotFound", "NotFoundException") or time.monotonic() + delay > deadline:
                    raise
                ctx.log(f"target cannot see or use it yet ({code}); a new grant can take minutes to spread, retrying")
                ctx.sleep(delay)
                delay = min(delay * 2, 60)


class CopyCheckFailed(AwsFailure):
    """The copy is not what the request asked for."""

    def __init__(self, problem: str, fix: str):
        super().__init__("AmibotCopyCheckFailed", problem, cause=problem, fix=fix)


@register
class VerifyCopy(Action):
    """From the target account: the copy is visible, ``available``, owned by the
    target, not public, and every snapshot is encrypted with the target's key, which
    the target can describe (DescribeKey).

    params: ``image_from_step`` (the CopyImage step), ``kms_key_arn``, ``source_image_id``."""

    name = "verify.copy"
    permissions = ("ec2:DescribeImages", "ec2:DescribeSnapshots", "kms:DescribeKey")
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The CopyImage step, the key the copy must use, and its source."""

        image_from_step: int
        kms_key_arn: str
        source_image_id: str | None = None

    @classmethod
    def describe(cls, params, *, account, region):
        return (
            f"Check from `{account.alias}` in {region}: the copy is available, owned by {account.id}, not public, "
            f"and every snapshot is encrypted with {params.kms_key_arn} (DescribeImages, DescribeSnapshots, DescribeKey)"
        )

    def run(self, ctx, account_id, region, params):
        copied = ctx.results[int(params.image_from_step)]
        image_id = copied["image_id"]
        key_arn = params.kms_key_arn
        ec2 = ctx.client("ec2", account_id, region)
        image = until_visible(ctx, copied.get("created_at"), lambda: look_up_image(ec2, image_id), f"copy {image_id}") or None
        where = f"account {account_id} {region}"
        if image is None:
            raise CopyCheckFailed(f"The copy {image_id} is not visible from {where}.", "Check the account's images; ask again if it is gone.")
        if image.get("OwnerId") != account_id:
            raise CopyCheckFailed(f"The copy {image_id} is owned by {image.get('OwnerId')}, not by {account_id}.", "This should not happen; report it.")
        if image.get("State") != "available":
            raise CopyCheckFailed(f"The copy {image_id} is `{image.get('State')}`, not `available`.", "Check the image in the console.")
        if image.get("Public"):
            raise CopyCheckFailed(f"The copy {image_id} is public.", "Remove its public launch permission now.")
        snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
        snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else []
        wrong = [s["SnapshotId"] for s in snapshots if not s.get("Encrypted") or s.get("KmsKeyId") != key_arn or s.get("OwnerId") != account_id]
        if wrong or len(snapshots) != len(snapshot_ids):
            raise CopyCheckFailed(
                f"Snapshots {', '.join(wrong or snapshot_ids)} of the copy {image_id} are not encrypted with {key_arn} or not owned by {account_id}.",
                "Check the snapshots' KmsKeyId; the copy may depend on another account's key.",
            )
        meta = ctx.client("kms", account_id, region).describe_key(KeyId=key_arn)["KeyMetadata"]
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        source = params.source_image_id
        if source and tags.get("amibot:source-ami") != source:
            raise CopyCheckFailed(f"The copy {image_id} does not carry its provenance tags.", "Tag it by hand (amibot:source-ami and the others).")
        return {
            "image_id": image_id,
            "owner": account_id,
            "snapshot_ids": snapshot_ids,
            "kms_key_arn": key_arn,
            "key_state": meta.get("KeyState"),
            "summary": f"`{image_id}` is available in {where}, owned by it, snapshots encrypted with {key_arn} ({meta.get('KeyState')}), {len(tags)} tags",
            "outcome": f"The copy is `{image_id}` (`{image.get('Name')}`) in account {account_id} {region}, encrypted with its own key {key_arn}.",
        }
