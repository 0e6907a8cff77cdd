"""Share an AMI with other accounts: the preflight rules and the exact plan."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root, grant_name
from bot import grammar
from bot.config import AccountConfig, Config
from bot.errors import AmibotError, PreflightError
from bot.operations import PlanningContext, Prepared, preparer
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


def checked_lines(facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig]) -> list[str]:
    """What the preflight checked, in the words the approver reads."""
    lines = [f"{facts.image_id} `{facts.name}` is `{facts.state}` in {region}, owned by `{source.alias}` ({facts.owner_id})"]
    for key in facts.keys:
        alias = f" ({', '.join(key.aliases)})" if key.aliases else ""
        lines.append(f"Snapshots encrypted with a customer-managed key{alias}, {key.state}: {key.arn}")
    if facts.unencrypted_snapshots:
        lines.append(f"Unencrypted snapshots: {', '.join(facts.unencrypted_snapshots)} (no key to share)")
    if targets:
        lines.append("Targets configured and accepting shares: " + ", ".join(f"`{t.alias}` ({t.id})" for t in targets))
    lines.append("Public: " + ("*the image is already public* (amibot does not change that)" if facts.public else "no, and no step makes anything public"))
    return lines


@preparer(grammar.ShareCommand)
def prepare_share(ctx: PlanningContext, command: grammar.ShareCommand) -> Prepared:
    """Preflight a share and plan it."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    if command.organization or command.ou_id:
        raise AmibotError("Sharing with an Organization or OU is not available yet.", fix="Name the accounts after `to`.")
    targets = resolve_targets(ctx.config, command.targets, source)
    approvers = approver_accounts("share", source)
    ctx.check_approvers(approvers)
    facts = ctx.preflight_image(source, region, command.image_id)
    check_shareable(facts, source, region)
    steps = share_steps(request_uid=ctx.uid, facts=facts, source=source, region=region, targets=targets, allow_copy=command.allow_copy)
    after = []
    if command.duration:
        after.append(f"At expiry ({_duration(command.duration.total_seconds())} after completion) all of the above is removed automatically; no second approval.")
    if not command.allow_copy:
        after.append("No snapshot permission: the targets can launch the AMI but not copy it (add `allow-copy` to let them).")
    return Prepared(
        kind="share",
        params={"image_id": command.image_id, "source": source.alias, "region": region, "targets": [t.alias for t in targets],
                "allow_copy": command.allow_copy, "duration_seconds": command.duration.total_seconds() if command.duration else None},
        checked=checked_lines(facts, source, region, targets),
        approver_accounts=approvers,
        steps=steps,
        after=after,
        extra_facts={"image": facts_for_message(facts)},
    )


def _duration(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return f"{int(seconds // 3600)}h"
