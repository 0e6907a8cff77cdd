"""Sharing an AMI: launch permission, snapshot permission, KMS grants, and the
check from the target account's side."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from aws.actions import SHARE_GRANT_OPERATIONS, Action, account_root, register  # noqa: F401
from aws.actions.holdings import kept_sentence, launch_permission_resource, snapshot_permission_resource
from aws.errors import AwsFailure


class PublicShareRefused(AwsFailure):
    """A change would have made something public; amibot never does that."""

    def __init__(self, what: str):
        super().__init__("AmibotPublicShareRefused", f"{what} would make it public", cause="amibot never shares publicly.", fix="Name account ids, `org` or an OU.")


def _refuse_public(permissions: list[dict[str, str]]) -> None:
    # Last line of defence: the grammar and the preflight already refuse "all",
    # but nothing may ever send Group=all to AWS.
    for permission in permissions:
        if permission.get("Group") or permission.get("UserId") in ("all", "*"):
            raise PublicShareRefused(f"launch permission {permission}")


def launch_permission_entries(params: dict[str, Any]) -> list[dict[str, str]]:
    """Launch-permission entries for a share's targets: accounts, an org or an OU."""
    entries = [{"UserId": account} for account in params.get("account_ids", [])]
    if params.get("organization_arn"):
        entries.append({"OrganizationArn": params["organization_arn"]})
    if params.get("ou_arn"):
        entries.append({"OrganizationalUnitArn": params["ou_arn"]})
    return entries


@register
class AddLaunchPermission(Action):
    """Let target accounts (or an org/OU) launch the AMI.

    Every entry is *held* for the request (aws.actions.holdings), whether this
    request added it or found it there: another request removing it later keeps it
    while this one still needs it."""

    name = "ec2.add_launch_permission"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute")

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        wanted = launch_permission_entries(params)
        _refuse_public(wanted)
        existing = ec2.describe_image_attribute(ImageId=params["image_id"], Attribute="launchPermission")["LaunchPermissions"]
        # Only what was not there before is ours to remove later.
        added = [entry for entry in wanted if entry not in existing]
        # Held before the change, so a concurrent removal by another request sees us.
        for entry in wanted:
            ctx.holdings.hold(launch_permission_resource(account_id, region, params["image_id"], entry), created=entry in added)
        if added:
            ec2.modify_image_attribute(ImageId=params["image_id"], LaunchPermission={"Add": added})
        return {"added": added, "already_present": [e for e in wanted if e in existing], "held": wanted}

    def undo(self, ctx, account_id, region, params, result):
        added = result.get("added", [])
        held = result.get("held") or added  # results recorded before holdings existed
        remove, kept = [], []
        for entry in held:
            release = ctx.holdings.release(launch_permission_resource(account_id, region, params["image_id"], entry), created=entry in added)
            if release.remove:
                remove.append(entry)
            elif release.kept_for:
                kept.append((_describe_entries([entry]), release))
        said = []
        if remove:
            ec2 = ctx.client("ec2", account_id, region)
            ec2.modify_image_attribute(ImageId=params["image_id"], LaunchPermission={"Remove": remove})
            said.append(f"removed launch permission on {params['image_id']} for {_describe_entries(remove)}")
        if kept:
            said.append(kept_sentence(f"launch permission on {params['image_id']}", kept))
        return "; ".join(said) or None


@register
class RemoveLaunchPermission(Action):
    """Stop target accounts (or an org/OU) launching the AMI (an unshare).

    An entry that work in flight still needs (a copy in progress) is kept, listed in
    ``kept_entries``, and the summary says which request keeps it."""

    name = "ec2.remove_launch_permission"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute")
    undoable = False

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        entries = launch_permission_entries(params)
        existing = ec2.describe_image_attribute(ImageId=params["image_id"], Attribute="launchPermission")["LaunchPermissions"]
        removed, kept = [], []
        for entry in entries:
            release = ctx.holdings.end(launch_permission_resource(account_id, region, params["image_id"], entry))
            if not release.remove:
                kept.append((_describe_entries([entry]), release))
            elif entry in existing:
                removed.append(entry)
        if removed:
            ec2.modify_image_attribute(ImageId=params["image_id"], LaunchPermission={"Remove": removed})
        result: dict[str, Any] = {"removed": removed}
        if kept:
            result["kept_entries"] = [e for e in entries if _describe_entries([e]) in {name for name, _ in kept}]
            result["summary"] = kept_sentence(f"launch permission on {params['image_id']}", kept)
        return result


def change_snapshot_permission(ec2: Any, snapshot_id: str, change: str, accounts: list[str]) -> None:
    """Add or Remove createVolumePermission for accounts on one snapshot.

    The structured ``CreateVolumePermission`` form is the one AWS documents (moto
    alone ignores it; the sandbox implements it)."""
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        CreateVolumePermission={change: [{"UserId": a} for a in accounts]},
    )


@register
class AddSnapshotPermission(Action):
    """Let target accounts create volumes from (and so copy) the AMI's snapshots.
    Each (snapshot, account) is held for the request, like launch permissions."""

    name = "ec2.add_snapshot_permission"
    permissions = ("ec2:DescribeSnapshotAttribute", "ec2:ModifySnapshotAttribute")

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        added: dict[str, list[str]] = {}
        for snapshot_id in params["snapshot_ids"]:
            existing = {
                p.get("UserId")
                for p in ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"]
            }
            new = [a for a in params["account_ids"] if a not in existing]
            for grantee in params["account_ids"]:
                ctx.holdings.hold(snapshot_permission_resource(account_id, region, snapshot_id, grantee), created=grantee in new)
            if new:
                change_snapshot_permission(ec2, snapshot_id, "Add", new)
            added[snapshot_id] = new
        return {"added": added, "held": {s: list(params["account_ids"]) for s in params["snapshot_ids"]}}

    def undo(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        added = result.get("added", {})
        undone, kept = [], []
        for snapshot_id, accounts in (result.get("held") or added).items():
            remove = []
            for grantee in accounts:
                release = ctx.holdings.release(snapshot_permission_resource(account_id, region, snapshot_id, grantee), created=grantee in added.get(snapshot_id, []))
                if release.remove:
                    remove.append(grantee)
                elif release.kept_for:
                    kept.append((f"{grantee} on {snapshot_id}", release))
            if remove:
                change_snapshot_permission(ec2, snapshot_id, "Remove", remove)
                undone.append(snapshot_id)
        said = [f"removed snapshot permission on {', '.join(undone)}"] if undone else []
        if kept:
            said.append(kept_sentence("snapshot permission", kept))
        return "; ".join(said) or None


@register
class RemoveSnapshotPermission(Action):
    """Take back snapshot permission from target accounts (an unshare), keeping
    what a live request still needs."""

    name = "ec2.remove_snapshot_permission"
    permissions = ("ec2:ModifySnapshotAttribute",)
    undoable = False

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        removed, kept = [], []
        kept_accounts: dict[str, list[str]] = {}
        for snapshot_id in params["snapshot_ids"]:
            remove = []
            for grantee in params["account_ids"]:
                release = ctx.holdings.end(snapshot_permission_resource(account_id, region, snapshot_id, grantee))
                if release.remove:
                    remove.append(grantee)
                else:
                    kept.append((f"{grantee} on {snapshot_id}", release))
                    kept_accounts.setdefault(snapshot_id, []).append(grantee)
            if remove:
                change_snapshot_permission(ec2, snapshot_id, "Remove", remove)
                removed.append(snapshot_id)
        result: dict[str, Any] = {"removed": removed}
        if kept:
            result["kept_accounts"] = kept_accounts
            result["summary"] = kept_sentence("snapshot permission", kept)
        return result


@register
class CreateKmsGrant(Action):
    """Give a target account use of a customer-managed key, through a named grant."""

    name = "kms.create_grant"
    permissions = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")

    def execute(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        name = params["grant_name"]
        for grant in _list_grants(kms, params["key_arn"]):
            if grant.get("Name") == name:
                return {"grant_id": grant["GrantId"], "created": False}
        created_at = time.time()
        grant = kms.create_grant(
            KeyId=params["key_arn"],
            GranteePrincipal=params["grantee_principal"],
            Operations=list(params["operations"]),
            Name=name,
        )
        # For a while after, ListGrants may not list the new grant (eventual
        # consistency): a retry then sends the same named CreateGrant, which KMS
        # answers with this grant instead of a second one.
        return {"grant_id": grant["GrantId"], "created": True, "created_at": created_at}

    def undo(self, ctx, account_id, region, params, result):
        grant_id = result.get("grant_id")
        if not grant_id:
            return None
        kms = ctx.client("kms", account_id, region)
        # By id, which CreateGrant returned: works at once, even while ListGrants does
        # not list the new grant yet.
        _revoke(kms, params["key_arn"], grant_id)
        return f"revoked KMS grant {grant_id} on {params['key_arn']}"


@register
class RevokeKmsGrants(Action):
    """Revoke the grants an earlier share created (by their recorded ids)."""

    name = "kms.revoke_grants"
    permissions = ("kms:RevokeGrant",)
    undoable = False

    def execute(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        # Each recorded grant is revoked by id even when ListGrants did not list it
        # (ListGrants lags behind CreateGrant): RevokeGrant's own NotFound says "gone".
        gone = [grant_id for grant_id in params["grant_ids"] if not _revoke(kms, params["key_arn"], grant_id)]
        result: dict[str, Any] = {"revoked": [g for g in params["grant_ids"] if g not in gone]}
        if gone:
            result["already_gone"] = gone
            result["summary"] = "already gone (RevokeGrant: not found): " + ", ".join(f"`{g}`" for g in gone)
        return result


@register
class VerifyTargetAccess(Action):
    """From the target account: the AMI is visible and its keys are usable.

    ``RunInstances`` with ``DryRun`` checks IAM only, never KMS, so it is no
    evidence; ``DescribeKey`` and ``CreateGrant`` with ``DryRun`` from the target are.
    A new grant takes minutes to spread, so this retries with backoff."""

    name = "verify.target_access"
    permissions = ("ec2:DescribeImages", "kms:DescribeKey", "kms:CreateGrant")
    undoable = False

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        kms = ctx.client("kms", account_id, region)
        deadline = time.monotonic() + ctx.grant_wait_seconds
        delay = 2.0
        while True:
            try:
                images = ec2.describe_images(ImageIds=[params["image_id"]])["Images"]
                if not images:
                    raise AwsFailure("InvalidAMIID.NotFound", f"{params['image_id']} is not visible from {account_id}")
                for key_arn in params.get("key_arns", []):
                    kms.describe_key(KeyId=key_arn)
                    try:
                        kms.create_grant(KeyId=key_arn, GranteePrincipal=account_root(account_id, region), Operations=["Decrypt"], DryRun=True)
                    except ClientError as error:
                        if error.response["Error"]["Code"] != "DryRunOperationException":
                            raise
                return {"visible": True, "keys_usable": list(params.get("key_arns", []))}
            except (ClientError, AwsFailure) as error:
                code = error.response["Error"]["Code"] if isinstance(error, ClientError) else error.code
                if code not in ("AccessDeniedException", "InvalidAMIID.NotFound", "NotFoundException") or time.monotonic() + delay > deadline:
                    raise
                ctx.log(f"target cannot see or use it yet ({code}); a new grant can take minutes to spread, retrying")
                ctx.sleep(delay)
                delay = min(delay * 2, 60)


def check_source_key_grantable(sessions: Any, account_id: str, region: str, key_arn: str, grantee: str, operations: list[str], tag: str) -> None:
    """``CreateGrant`` with ``DryRun`` on the source key, as the share will make it:
    the key's own policy (every key obeys it, the account's own role included) and
    the role's IAM policy must allow it. Raises the AWS error when they do not;
    DryRunOperationException means the grant would be made."""
    kms = sessions.client("kms", account_id, region, tag)
    try:
        kms.create_grant(KeyId=key_arn, GranteePrincipal=grantee, Operations=list(operations), DryRun=True)
    except ClientError as error:
        if error.response["Error"]["Code"] != "DryRunOperationException":
            raise


def _list_grants(kms: Any, key_arn: str) -> list[dict[str, Any]]:
    grants: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyId": key_arn}
    while True:
        page = kms.list_grants(**kwargs)
        grants += page.get("Grants", [])
        if not page.get("Truncated"):
            return grants
        kwargs["Marker"] = page["NextMarker"]


def _revoke(kms: Any, key_arn: str, grant_id: str) -> bool:
    """Revoke a grant by id; False when KMS answers it is not found (already gone)."""
    try:
        kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    except ClientError as error:
        # Already revoked (a retry after a crash): the goal is reached.
        if error.response["Error"]["Code"] not in ("NotFoundException",):
            raise
        return False
    return True


def _describe_entries(entries: list[dict[str, str]]) -> str:
    return ", ".join(next(iter(e.values())) for e in entries)
