"""KMS grants: a target account's use of a customer-managed key (made by name, so a
retry finds it), their revocation by id, and the source key's CreateGrant DryRun."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from aws.actions.base import Action, ActionParams, register
from aws.actions.share import temporary_note


@dataclass(frozen=True, kw_only=True)
class GrantParams(ActionParams):
    """A named KMS grant on ``key_arn`` to ``grantee_principal``."""

    key_arn: str
    grantee_principal: str
    operations: list[str]
    grant_name: str
    # Who may retire the grant besides its key's owner (AWS: CreateGrant's
    # RetiringPrincipal): a temporary grant names the creating account's amibot role.
    retiring_principal: str | None = None



@register
class CreateKmsGrant(Action):
    """Give a target account use of a customer-managed key, through a named grant."""

    name = "kms.create_grant"
    permissions = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
    Params = GrantParams

    @classmethod
    def describe(cls, params, *, account, region, key_label: str, note: str | None = None):
        """``key_label``: the key as the plan names it; ``note``: why it is temporary."""
        return (
            f"CreateGrant on key {key_label}: {params.grantee_principal} may "
            f"{', '.join(params.operations)} (grant name `{params.grant_name}`"
            + (f"; retiring principal {params.retiring_principal}" if params.retiring_principal else "") + ")" + temporary_note(note)
        )

    def run(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        name = params.grant_name
        for grant in list_grants(kms, params.key_arn):
            if grant.get("Name") == name:
                return {"grant_id": grant["GrantId"], "created": False}
        created_at = ctx.clock()
        grant = kms.create_grant(
            KeyId=params.key_arn,
            GranteePrincipal=params.grantee_principal,
            Operations=list(params.operations),
            Name=name,
            **({"RetiringPrincipal": params.retiring_principal} if params.retiring_principal else {}),
        )
        # For a while after, ListGrants may not list the new grant (eventual
        # consistency): a retry then sends the same named CreateGrant, which KMS
        # answers with this grant instead of a second one.
        # The grant token (not a secret: AWS, "Grant tokens") lets the retiring
        # principal retire this grant at once, before it is visible everywhere.
        return {"grant_id": grant["GrantId"], "created": True, "created_at": created_at,
                **({"grant_token": grant["GrantToken"]} if grant.get("GrantToken") and params.retiring_principal else {})}

    def revert(self, ctx, account_id, region, params, result):
        grant_id = result.get("grant_id")
        if not grant_id:
            return None
        kms = ctx.client("kms", account_id, region)
        if params.retiring_principal and result.get("grant_token") and retire_grant(kms, result["grant_token"]):
            return f"retired KMS grant {grant_id} on {params.key_arn} (RetireGrant with its token)"
        # By id, which CreateGrant returned, whatever ListGrants lists; a NotFound
        # inside the window is "not visible yet" (aws.actions.visibility), asked again.
        if not revoke_recorded_grant(ctx, kms, params.key_arn, grant_id, result.get("created_at"), wait_in_place=ctx.consistency_window_seconds):
            return f"KMS grant {grant_id} on {params.key_arn} was already gone"
        return f"revoked KMS grant {grant_id} on {params.key_arn}"


@register
class RevokeKmsGrants(Action):
    """Revoke the grants an earlier share created (by their recorded ids)."""

    name = "kms.revoke_grants"
    permissions = ("kms:RevokeGrant",)
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The grants on ``key_arn`` to revoke, by id."""

        key_arn: str
        grant_ids: list[str]
        # When each grant was made (its step's ``created_at``), where known: a NotFound
        # inside the consistency window is "not visible yet", not "gone".
        created_at: dict[str, float] | None = None

    @classmethod
    def describe(cls, params, *, account, region, key_label: str, origins: list[str]):
        """``origins``: per grant, whom it was to and who made it."""
        return f"RevokeGrant on key {key_label}: " + "; ".join(origins)

    def run(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        # Each recorded grant is revoked by id even when ListGrants did not list it
        # (ListGrants lags behind CreateGrant): RevokeGrant's own NotFound says "gone",
        # past the grant's consistency window only.
        created = params.created_at or {}
        revoked: list[str] = list(ctx.previous.get("revoked") or [])
        gone: list[str] = []
        for grant_id in params.grant_ids:
            if grant_id in revoked:
                continue  # an earlier attempt of this step revoked it
            if revoke_recorded_grant(ctx, kms, params.key_arn, grant_id, created.get(grant_id), progress={"revoked": revoked}):
                revoked.append(grant_id)
            else:
                gone.append(grant_id)
        result: dict[str, Any] = {"revoked": revoked}
        if gone:
            result["already_gone"] = gone
            result["summary"] = "already gone (RevokeGrant: not found): " + ", ".join(f"`{g}`" for g in gone)
        return result


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


def list_grants(kms: Any, key_arn: str) -> list[dict[str, Any]]:
    grants: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyId": key_arn}
    while True:
        page = kms.list_grants(**kwargs)
        grants += page.get("Grants", [])
        if not page.get("Truncated"):
            return grants
        kwargs["Marker"] = page["NextMarker"]


def revoke_recorded_grant(ctx: Any, kms: Any, key_arn: str, grant_id: str, created_at: float | None, *,
                          progress: dict[str, Any] | None = None, wait_in_place: float | None = None) -> bool:
    """Revoke a grant amibot made, by id. True: revoked; False: gone (RevokeGrant's
    NotFound past the grant's consistency window). Inside the window a NotFound means
    "not visible yet": asked again in place, then the step waits (``progress`` is its
    result so far)."""
    from aws.actions.visibility import INLINE_SECONDS, until_visible

    def attempt() -> bool | None:
        return True if revoke_grant(kms, key_arn, grant_id) else None

    done = until_visible(ctx, created_at, attempt, f"KMS grant {grant_id}", result=progress,
                         wait_in_place=INLINE_SECONDS if wait_in_place is None else wait_in_place)
    return bool(done)


def retire_grant(kms: Any, grant_token: str) -> bool:
    """A temporary grant retired by its retiring principal with the token CreateGrant
    returned (AWS: RetireGrant; "Retiring and revoking grants"). False when KMS does
    not retire it that way (not found, not allowed, a bad token): the caller falls
    back to RevokeGrant by id, which decides "gone" past the consistency window."""
    try:
        kms.retire_grant(GrantToken=grant_token)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in ("NotFoundException", "AccessDeniedException", "InvalidGrantTokenException", "ValidationException"):
            raise
        return False
    return True


def revoke_grant(kms: Any, key_arn: str, grant_id: str) -> bool:
    """Revoke a grant by id; False when KMS answers it is not found (already gone)."""
    try:
        kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    except ClientError as error:
        # Already revoked (a retry after a crash): the goal is reached.
        if error.response["Error"]["Code"] not in ("NotFoundException",):
            raise
        return False
    return True
