"""From a parsed command and what the preflight saw, to the exact plan of AWS changes.

The plan is computed before anyone approves and stored with the request: what the
approver reads is what the worker runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root, grant_name
from bot.config import AccountConfig, Config
from bot.errors import PreflightError
from bot.requests import PlannedStep


def check_shareable(facts: ImageFacts, source: AccountConfig, region: str) -> None:
    """Refuse, before anyone is asked, what AWS would refuse or what must never happen."""
    where = f"`{source.alias}` ({source.id}) in {region}"
    if facts.owner_id != source.id:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}, not by {where}; only the owner can share it.",
            fix="Name the owning account after `from`, or copy the AMI into this account first.",
        )
    if facts.state != "available":
        raise PreflightError(
            f"{facts.image_id} is `{facts.state}`, not `available`.",
            fix="Wait until the image is available (a new image takes minutes), then ask again.",
        )
    aws_managed = [k for k in facts.keys if k.manager == "AWS"]
    if aws_managed:
        raise PreflightError(
            f"{facts.image_id} is encrypted with the AWS-managed key `aws/ebs` ({aws_managed[0].arn}), "
            "which AWS does not let you share with another account.",
            fix=(
                f"Re-encrypt it with a customer-managed key: `/ami copy {facts.image_id} from {source.alias}:{region} "
                f"to {source.alias}:{region} kms <your-cmk>`, then share the copy."
            ),
        )
    unusable = [k for k in facts.keys if k.state != "Enabled"]
    if unusable:
        raise PreflightError(
            f"The key {unusable[0].arn} of {facts.image_id} is `{unusable[0].state}`.",
            fix="Enable the key (or cancel its deletion) before sharing.",
        )


def share_steps(
    *,
    request_uid: str,
    facts: ImageFacts,
    source: AccountConfig,
    region: str,
    targets: list[AccountConfig],
    allow_copy: bool,
    organization_arn: str | None = None,
    ou_arn: str | None = None,
) -> list[PlannedStep]:
    """The steps of a share: launch permission, a grant per key and target, snapshot
    permission only with allow-copy, then a check from each target's side."""
    target_ids = [t.id for t in targets]
    steps: list[PlannedStep] = []
    who = ", ".join(f"`{t.alias}` ({t.id})" for t in targets)
    if organization_arn:
        who = f"the organization {organization_arn}"
    if ou_arn:
        who = f"the OU {ou_arn}"
    steps.append(
        PlannedStep(
            action="ec2.add_launch_permission",
            account_alias=source.alias,
            account_id=source.id,
            region=region,
            params={"image_id": facts.image_id, "account_ids": target_ids, "organization_arn": organization_arn, "ou_arn": ou_arn},
            description=f"ModifyImageAttribute on {facts.image_id}: add launch permission for {who}",
        )
    )
    for key in facts.keys:
        for target in targets:
            steps.append(
                PlannedStep(
                    action="kms.create_grant",
                    account_alias=source.alias,
                    account_id=source.id,
                    region=region,
                    params={
                        "key_arn": key.arn,
                        "grantee_principal": account_root(target.id),
                        "operations": list(SHARE_GRANT_OPERATIONS),
                        "grant_name": grant_name(request_uid, target.id),
                    },
                    description=(
                        f"CreateGrant on key {_key_label(key)}: {account_root(target.id)} may "
                        f"{', '.join(SHARE_GRANT_OPERATIONS)} (grant name `{grant_name(request_uid, target.id)}`)"
                    ),
                )
            )
    if allow_copy and target_ids:
        steps.append(
            PlannedStep(
                action="ec2.add_snapshot_permission",
                account_alias=source.alias,
                account_id=source.id,
                region=region,
                params={"snapshot_ids": facts.snapshot_ids, "account_ids": target_ids},
                description=(
                    f"ModifySnapshotAttribute on {', '.join(facts.snapshot_ids)}: add createVolumePermission for "
                    f"{', '.join(target_ids)} (allow-copy: the targets can copy the data out)"
                ),
            )
        )
    for target in targets:
        steps.append(
            PlannedStep(
                action="verify.target_access",
                account_alias=target.alias,
                account_id=target.id,
                region=region,
                params={"image_id": facts.image_id, "key_arns": [k.arn for k in facts.keys]},
                description=f"Check from `{target.alias}`: the AMI is visible" + (" and its key is usable" if facts.keys else ""),
            )
        )
    return steps


def _key_label(key: Any) -> str:
    alias = next((a for a in key.aliases), None)
    return f"{alias} ({key.arn})" if alias else key.arn


def facts_for_message(facts: ImageFacts) -> dict[str, Any]:
    """The preflight facts in a JSON-friendly form, stored with the request."""
    return asdict(facts)


def approver_accounts(kind: str, source: AccountConfig, target: AccountConfig | None = None) -> list[str]:
    """Aliases of the accounts whose owners must approve (design.md §2)."""
    accounts = [source.alias]
    if kind == "copy" and target is not None and target.alias != source.alias:
        accounts.append(target.alias)
    return accounts


def resolve_targets(config: Config, refs: tuple[str, ...], source: AccountConfig) -> list[AccountConfig]:
    """Configured accounts for the target refs; refuses the source itself and
    accounts that do not accept shares."""
    targets = []
    for ref in refs:
        target = config.account(ref)
        if target.id == source.id:
            raise PreflightError(f"`{ref}` is the source account itself.", fix="Name other accounts after `to`.")
        if not target.accept_shares:
            raise PreflightError(
                f"Account `{target.alias}` is configured not to receive shares (accept_shares = false).",
                fix="Ask its owners to change the setting, or pick another account.",
            )
        targets.append(target)
    return targets
