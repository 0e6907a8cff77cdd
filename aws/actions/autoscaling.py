"""Auto Scaling in a target account: a grant from the target to its service-linked role.

Auto Scaling launches instances as the service-linked role
``AWSServiceRoleForAutoScaling``, which has no access to customer-managed keys, let
alone another account's. AWS's answer for a cross-account key is a grant created
*from the account that owns the Auto Scaling group* to that role; the target can make
it because the source's share grant includes ``CreateGrant``. A grant made through a
grant may not hold more than the grant it comes from, so its operations are the share
grant's operations (``ReEncryptTo`` is not among them: design.md §1.3 fixes the share
grant at five operations).

The target account cannot revoke it: ``RevokeGrant`` needs the key policy, and a
grant cannot give it. The key's owner (the source account) revokes it on undo and
on unshare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from aws.actions.base import SHARE_GRANT_OPERATIONS, Action, register
from aws.actions.grants import GrantParams, revoke_recorded_grant
from aws.partitions import partition_for

# What the target can pass on: exactly what the share grant gave it.
AUTOSCALING_GRANT_OPERATIONS = SHARE_GRANT_OPERATIONS


def autoscaling_role(account_id: str, region: str) -> str:
    """The ARN of Auto Scaling's service-linked role in an account (in the partition
    of ``region``)."""
    return f"arn:{partition_for(region)}:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def autoscaling_grant_name(request_uid: str, account_id: str) -> str:
    """Deterministic: a retry gets the same grant back (CreateGrant with a Name is
    idempotent), and unshare finds it by the ``amibot-`` prefix and its grantee."""
    return f"amibot-{request_uid}-{account_id}-autoscaling"


@register
class CreateAutoScalingGrant(Action):
    """From the target account: a grant on the source's key to the target's Auto
    Scaling service-linked role.

    params: ``key_arn``, ``key_owner_account`` (revokes on undo), ``grantee_principal``,
    ``operations``, ``grant_name``. Retries with backoff while the source's grant to
    the target is still spreading (AccessDeniedException)."""

    name = "kms.create_autoscaling_grant"
    permissions = ("kms:CreateGrant", "kms:RevokeGrant")

    @dataclass(frozen=True, kw_only=True)
    class Params(GrantParams):
        """A share grant's fields, the AMI it serves, and who owns the key."""

        image_id: str | None = None
        key_owner_account: str

    @classmethod
    def describe(cls, params, *, account, region, key_label: str):
        """``key_label``: the key as the plan names it."""
        return (
            f"CreateGrant from `{account.alias}` on key {key_label}: Auto Scaling's role {params.grantee_principal} may "
            f"{', '.join(params.operations)} (grant name `{params.grant_name}`; autoscaling_grant = true; "
            "retried while the grant above spreads)"
        )

    def run(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        deadline = time.monotonic() + ctx.grant_wait_seconds
        delay = 2.0
        while True:
            try:
                grant = kms.create_grant(
                    KeyId=params.key_arn,
                    GranteePrincipal=params.grantee_principal,
                    Operations=list(params.operations),
                    Name=params.grant_name,
                )
                return {"grant_id": grant["GrantId"], "key_owner_account": params.key_owner_account, "created_at": ctx.clock()}
            except ClientError as error:
                code = error.response["Error"]["Code"]
                # Measured against the clock, not the nominal delays: a shortened
                # sleep (tests, demo) still retries for the whole spreading time.
                if code != "AccessDeniedException" or time.monotonic() >= deadline:
                    raise
                ctx.log(f"the target cannot pass the key on yet ({code}); the source's grant can take minutes to spread, retrying")
                ctx.sleep(delay)
                delay = min(delay * 2, 60)

    def revert(self, ctx, account_id, region, params, result):
        grant_id = result.get("grant_id")
        if not grant_id:
            return None
        # The key owner revokes: the target has no RevokeGrant on another account's key.
        kms = ctx.client("kms", params.key_owner_account, region)
        if not revoke_recorded_grant(ctx, kms, params.key_arn, grant_id, result.get("created_at"), wait_in_place=ctx.consistency_window_seconds):
            return f"Auto Scaling grant {grant_id} on {params.key_arn} was already gone"
        return f"revoked Auto Scaling grant {grant_id} on {params.key_arn}"
