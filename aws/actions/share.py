"""Sharing an AMI: launch permission, snapshot permission, KMS grants, and the
check from the target account's side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from aws.actions.base import Action, ActionParams, register
from aws.actions.holdings import (
    kept_sentence,
    launch_permission_guard,
    launch_permission_resource,
    snapshot_permission_guard,
    snapshot_permission_resource,
)
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


@dataclass(frozen=True, kw_only=True)
class LaunchPermissionParams(ActionParams):
    """Who may launch ``image_id``: accounts, an organization, an OU."""

    image_id: str
    account_ids: list[str] = field(default_factory=list)
    organization_arn: str | None = None
    ou_arn: str | None = None

    def entries(self) -> list[dict[str, str]]:
        """Launch-permission entries for a share's targets: accounts, an org or an OU."""
        entries = [{"UserId": account} for account in self.account_ids]
        if self.organization_arn:
            entries.append({"OrganizationArn": self.organization_arn})
        if self.ou_arn:
            entries.append({"OrganizationalUnitArn": self.ou_arn})
        return entries


def launch_permission_entries(params: Mapping[str, Any]) -> list[dict[str, str]]:
    """Launch-permission entries of a stored launch-permission step's params."""
    return LaunchPermissionParams.from_dict(params).entries()


@dataclass(frozen=True, kw_only=True)
class SnapshotPermissionParams(ActionParams):
    """createVolumePermission on ``snapshot_ids`` for ``account_ids``."""

    snapshot_ids: list[str]
    account_ids: list[str]


def temporary_note(note: str | None) -> str:
    """The plan's words for why a step is temporary (a copy's share), if it is."""
    return f" — {note}" if note else ""


def who_text(params: LaunchPermissionParams, grantees: list[Any]) -> str:
    """Who a launch permission is for, as the plan says it."""
    who = ", ".join(f"`{a.alias}` ({a.id})" for a in grantees)
    if params.organization_arn:
        who = f"the organization {params.organization_arn}"
    if params.ou_arn:
        who = f"the OU {params.ou_arn}"
    return who


@register
class AddLaunchPermission(Action):
    """Let target accounts (or an org/OU) launch the AMI.

    Every entry is *held* for the request (aws.actions.holdings), whether this
    request added it or found it there: another request removing it later keeps it
    while this one still needs it."""

    name = "ec2.add_launch_permission"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute")
    Params = LaunchPermissionParams

    @classmethod
    def describe(cls, params, *, account, region, grantees: list[Any], note: str | None = None):
        """``grantees``: the target accounts (alias, id); ``note``: why it is temporary."""
        return f"ModifyImageAttribute on {params.image_id}: add launch permission for {who_text(params, grantees)}" + temporary_note(note)

    def holdings(self, account_id, region, params):
        """One holding per launch-permission entry."""
        return [launch_permission_resource(account_id, region, params.image_id, entry) for entry in params.entries()]

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        wanted = params.entries()
        _refuse_public(wanted)
        # Reading what is there, holding and adding are one guarded step: a concurrent
        # removal (decided and done under the same guard) cannot fall in between.
        with ctx.holdings.guard(launch_permission_guard(account_id, region, params.image_id)):
            existing = ec2.describe_image_attribute(ImageId=params.image_id, Attribute="launchPermission")["LaunchPermissions"]
            # Only what was not there before is ours to remove later.
            added = [entry for entry in wanted if entry not in existing]
            # Held before the change, so a concurrent removal by another request sees us.
            for entry, holding in zip(wanted, self.holdings(account_id, region, params)):
                ctx.holdings.hold(holding, created=entry in added)
            if added:
                ec2.modify_image_attribute(ImageId=params.image_id, LaunchPermission={"Add": added})
        return {"added": added, "already_present": [e for e in wanted if e in existing], "held": wanted}

    def revert(self, ctx, account_id, region, params, result):
        added = result.get("added", [])
        held = result.get("held") or added  # results recorded before holdings existed
        return release_launch_permissions(ctx, account_id, region, params.image_id, held, added)


@register
class RemoveLaunchPermission(Action):
    """Stop target accounts (or an org/OU) launching the AMI (an unshare).

    An entry that work in flight still needs (a copy in progress) is kept, listed in
    ``kept_entries``, and the summary says which request keeps it."""

    name = "ec2.remove_launch_permission"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute")
    undoable = False
    Params = LaunchPermissionParams

    @classmethod
    def describe(cls, params, *, account, region, origins: list[str]):
        """``origins``: per entry, who added it."""
        return f"ModifyImageAttribute on {params.image_id}: remove launch permission for " + "; ".join(origins)

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        entries = params.entries()
        with ctx.holdings.guard(launch_permission_guard(account_id, region, params.image_id)):  # decide and remove: one step
            existing = ec2.describe_image_attribute(ImageId=params.image_id, Attribute="launchPermission")["LaunchPermissions"]
            removed, kept = [], []
            for entry in entries:
                release = ctx.holdings.end(launch_permission_resource(account_id, region, params.image_id, entry))
                if not release.remove:
                    kept.append((_describe_entries([entry]), release))
                elif entry in existing:
                    removed.append(entry)
            if removed:
                ec2.modify_image_attribute(ImageId=params.image_id, LaunchPermission={"Remove": removed})
        result: dict[str, Any] = {"removed": removed}
        if kept:
            result["kept_entries"] = [e for e in entries if _describe_entries([e]) in {name for name, _ in kept}]
            result["summary"] = kept_sentence(f"launch permission on {params.image_id}", kept)
        return result


def release_launch_permissions(ctx: Any, account_id: str, region: str, image_id: str, held: list[dict[str, str]], added: list[dict[str, str]]) -> str | None:
    """Let go of the launch permissions ``held`` on ``image_id`` (``added``: those
    this request created), removing each nobody else holds. Deciding and removing are
    one guarded step (``Holdings.guard``). Returns what was done, or None."""
    remove, kept = [], []
    with ctx.holdings.guard(launch_permission_guard(account_id, region, image_id)):
        for entry in held:
            release = ctx.holdings.release(launch_permission_resource(account_id, region, image_id, entry), created=entry in added)
            if release.remove:
                remove.append(entry)
            elif release.kept_for:
                kept.append((_describe_entries([entry]), release))
        if remove:
            ctx.client("ec2", account_id, region).modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": remove})
    said = []
    if remove:
        said.append(f"removed launch permission on {image_id} for {_describe_entries(remove)}")
    if kept:
        said.append(kept_sentence(f"launch permission on {image_id}", kept))
    return "; ".join(said) or None


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
    Params = SnapshotPermissionParams

    @classmethod
    def describe(cls, params, *, account, region, note: str | None = None):
        """Without ``note`` (why it is temporary), it is a share's allow-copy."""
        return (
            f"ModifySnapshotAttribute on {', '.join(params.snapshot_ids)}: add createVolumePermission for {', '.join(params.account_ids)}"
            + (temporary_note(note) if note else " (allow-copy: the targets can copy the data out)")
        )

    def holdings(self, account_id, region, params):
        """One holding per snapshot and account."""
        return [snapshot_permission_resource(account_id, region, s, a) for s in params.snapshot_ids for a in params.account_ids]

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        added: dict[str, list[str]] = {}
        for snapshot_id in params.snapshot_ids:
            with ctx.holdings.guard(snapshot_permission_guard(account_id, region, snapshot_id)):  # read, hold, add: one step
                existing = {
                    p.get("UserId")
                    for p in ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"]
                }
                new = [a for a in params.account_ids if a not in existing]
                for grantee in params.account_ids:
                    ctx.holdings.hold(snapshot_permission_resource(account_id, region, snapshot_id, grantee), created=grantee in new)
                if new:
                    change_snapshot_permission(ec2, snapshot_id, "Add", new)
                added[snapshot_id] = new
        return {"added": added, "held": {s: list(params.account_ids) for s in params.snapshot_ids}}

    def revert(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        added = result.get("added", {})
        undone, kept = [], []
        for snapshot_id, accounts in (result.get("held") or added).items():
            with ctx.holdings.guard(snapshot_permission_guard(account_id, region, snapshot_id)):  # decide and remove: one step
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
    Params = SnapshotPermissionParams

    @classmethod
    def describe(cls, params, *, account, region, origins: list[str]):
        """``origins``: per account, who added its permission."""
        return f"ModifySnapshotAttribute on {', '.join(params.snapshot_ids)}: remove createVolumePermission for {'; '.join(origins)}"

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        removed, kept = [], []
        kept_accounts: dict[str, list[str]] = {}
        for snapshot_id in params.snapshot_ids:
            with ctx.holdings.guard(snapshot_permission_guard(account_id, region, snapshot_id)):  # decide and remove: one step
                remove = []
                for grantee in params.account_ids:
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


def _describe_entries(entries: list[dict[str, str]]) -> str:
    return ", ".join(next(iter(e.values())) for e in entries)
