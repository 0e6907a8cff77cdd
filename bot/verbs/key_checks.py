"""Preflight checks on the source key, before anyone is asked: can amibot's role in
the source make the grants of the plan, and may it change the key's policy (org
shares)? Each refusal names the fix, instead of a request failing after approval."""

from __future__ import annotations

from typing import Any

from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root
from aws.actions import keypolicy
from aws.actions.grants import check_source_key_grantable
from bot.config import AccountConfig
from bot.errors import PreflightError
from aws.reads import Pending
from bot.verbs.common import PlanningContext, preflight_read
from bot.verbs.common import key_label as _key_label


def check_grants_possible(ctx: PlanningContext, facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig]) -> None:
    """Before anyone is asked: amibot's role in the source can create the grants the
    plan makes (a CreateGrant DryRun per key). A key whose policy lacks the usual
    statement for its account's root (delegating to IAM) refuses even its own
    account's roles, and the share would fail after approval."""
    # Every key's DryRun at once (the same policy answers for every grantee: the first
    # target's); refusals in key order, as when they were made one after the other.
    started = [
        (key, ctx.reads.start(f"grant dry run {key.arn}", lambda key=key, target=target: check_source_key_grantable(
            ctx.sessions, source.id, region, key.arn, account_root(target.id, region), list(SHARE_GRANT_OPERATIONS), ctx.tag)))
        for key in facts.keys for target in targets[:1]
    ]
    for key, pending in started:
        preflight_read(
            f"amibot's role in `{source.alias}` may not create grants on the key {_key_label(key)}",
            pending.result,
            fix=(
                f"The key policy must let amibot's role create grants: the usual statement "
                f"`{{\"Principal\": {{\"AWS\": \"{account_root(source.id, region)}\"}}, \"Action\": \"kms:*\"}}` (IAM decides), or a "
                f"statement naming {source.role_arn or 'amibot’s role'} with kms:CreateGrant. Ask the key's administrators; "
                "`amibot iam-policy` shows the role's side."
            ),
            own_fix=True,
        )


def start_key_tags(ctx: PlanningContext, source: AccountConfig, region: str, key: Any) -> Pending[dict[str, str]]:
    """Start reading the key's tags (ListResourceTags) on the preflight's reads."""
    return ctx.reads.start(f"tags of {key.arn}", lambda: {
        t["TagKey"]: t["TagValue"] for t in ctx.sessions.client("kms", source.id, region, ctx.tag).list_resource_tags(KeyId=key.arn).get("Tags", [])})


def check_marked_for_org_sharing(ctx: PlanningContext, source: AccountConfig, region: str, key: Any,
                                 started: Pending[dict[str, str]] | None = None) -> None:
    """amibot's role may change only the key policies of keys tagged
    ``amibot:org-share = true`` (the generated IAM policy says so): refuse before
    approval, with the fix, instead of failing at PutKeyPolicy. ``started``: the
    tags' read begun earlier (:func:`start_key_tags`)."""
    pending = started or start_key_tags(ctx, source, region, key)
    tags = preflight_read(f"Could not read the tags of {key.arn} in `{source.alias}`", pending.result)
    if tags.get(keypolicy.ORG_SHARE_TAG) != "true":
        raise PreflightError(
            f"The key {_key_label(key)} is not marked for organisation sharing: amibot may change only the key policies "
            f"of keys tagged `{keypolicy.ORG_SHARE_TAG}` = `true`.",
            fix=(
                f"If this key's owners agree that amibot may add org-share statements to its policy, tag it: "
                f"`aws kms tag-resource --key-id {key.arn} --tags TagKey={keypolicy.ORG_SHARE_TAG},TagValue=true`; "
                "or share with accounts by name (grants, no key-policy change)."
            ),
        )
