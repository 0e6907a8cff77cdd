"""``share-with`` in a distribution: the new copy, owned by the target account, is
shared from there with more accounts (launch permission and, for its CMK, a named
grant per account). Its launch permissions are held like every share's
(aws.actions.holdings): undo removes what nobody else still holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws.actions.base import SHARE_GRANT_OPERATIONS, Action, ActionParams, account_root, grant_name, image_of, register
from aws.actions.grants import list_grants, revoke_recorded_grant
from aws.actions.holdings import launch_permission_guard, launch_permission_resource
from aws.actions.share import _refuse_public, release_launch_permissions


@register
class ShareCopy(Action):
    """From the account that owns the copy: launch permission for ``account_ids`` and,
    when the copy is encrypted with a customer-managed key, a grant per account.

    params: ``image_id`` or ``image_from_step``, ``account_ids``, ``kms_key_arn``,
    ``key_is_customer_managed``."""

    name = "ec2.share_copy"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute", "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The copy (``image_id``, or made by step ``image_from_step``) and whom to share it with."""

        image_id: str | None = None
        image_from_step: int | None = None
        account_ids: list[str]
        kms_key_arn: str | None = None
        key_is_customer_managed: bool = False

    @classmethod
    def describe(cls, params, *, account, region, recipients: list[Any]):
        """``recipients``: the accounts (alias, id) it is shared with."""
        return (
            f"ModifyImageAttribute on the copy as `{account.alias}` in {region}: launch permission for "
            + ", ".join(f"`{a.alias}` ({a.id})" for a in recipients)
            + (" and a CreateGrant on its key for each (share-with)" if params.key_is_customer_managed else " (share-with)")
        )

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = image_of(params, ctx.results)
        wanted = [{"UserId": a} for a in params.account_ids if a != account_id]
        _refuse_public(wanted)
        # Like every share (AddLaunchPermission): read, hold, add as one guarded step.
        with ctx.holdings.guard(launch_permission_guard(account_id, region, image_id)):
            existing = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
            added = [e for e in wanted if e not in existing]
            for entry in wanted:
                ctx.holdings.hold(launch_permission_resource(account_id, region, image_id, entry), created=entry in added)
            if added:
                ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": added})
        grants: dict[str, str] = {}
        if params.key_is_customer_managed and params.kms_key_arn:
            kms = ctx.client("kms", account_id, region)
            present = {g.get("Name"): g["GrantId"] for g in list_grants(kms, params.kms_key_arn)}
            for entry in wanted:
                name = grant_name(ctx.request_uid, f"{entry['UserId']}-{account_id}-{region}")
                grants[entry["UserId"]] = present.get(name) or kms.create_grant(
                    KeyId=params.kms_key_arn, GranteePrincipal=account_root(entry["UserId"], region),
                    Operations=list(SHARE_GRANT_OPERATIONS), Name=name,
                )["GrantId"]
        who = ", ".join(e["UserId"] for e in wanted)
        return {
            "image_id": image_id, "added": added, "held": wanted, "grant_ids": grants, "kms_key_arn": params.kms_key_arn, "created_at": ctx.clock(),
            "summary": f"{image_id} shared with {who}" + (f" (grants {', '.join(grants.values())})" if grants else ""),
            "outcome": f"shared with {who}",
        }

    def revert(self, ctx, account_id, region, params, result):
        image_id = result.get("image_id")
        said = None
        if image_id and "held" in result:
            said = release_launch_permissions(ctx, account_id, region, image_id, result["held"], result.get("added", []))
        elif result.get("added") and image_id:  # recorded before share-with held its entries
            ctx.client("ec2", account_id, region).modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": result["added"]})
        if result.get("grant_ids"):
            kms = ctx.client("kms", account_id, region)
            for grant_id in result["grant_ids"].values():
                revoke_recorded_grant(ctx, kms, result["kms_key_arn"], grant_id, result.get("created_at"), wait_in_place=ctx.consistency_window_seconds)
        if said is not None or "held" in result:
            return said
        return f"removed the share of {image_id} with {', '.join(e['UserId'] for e in result.get('added', []))}" if image_id else None
