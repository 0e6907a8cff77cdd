"""Share an AMI with other accounts: the preflight rules and the exact plan."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root, grant_name
from aws.actions import keypolicy
from aws.actions.autoscaling import AUTOSCALING_GRANT_OPERATIONS, CreateAutoScalingGrant, autoscaling_grant_name, autoscaling_role
from aws.actions.keypolicy import AddKeyPolicyStatement
from aws.actions.grants import CreateKmsGrant
from aws.actions.share import AddLaunchPermission, AddSnapshotPermission
from aws.actions.target_checks import VerifyTargetAccess
from aws.actions.verify import VerifyByTestLaunch
from aws.reads import Pending
from bot import slacktext
from bot.config import AccountConfig, Config, OrganizationConfig
from bot.errors import PreflightError
from bot.verbs.common import (
    PlanningContext,
    Prepared,
    approver_accounts,
    check_required_tags,
    check_source_image,
    facts_for_message,
    preflight_read,
    resolve_targets,
)
from bot.verbs.common import key_label as _key_label
from bot.verbs.aws_rules import check_allowed_images, check_share_rules, start_allowed_images, warnings
from bot.verbs import launch_roles as launchroles
from bot.verbs.key_checks import check_grants_possible, check_marked_for_org_sharing, start_key_tags
from bot.requests import PlannedStep

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.share.command import ShareCommand


def check_shareable(facts: ImageFacts, source: AccountConfig, region: str, adding: list[str] | tuple[str, ...] = ()) -> None:
    """Refuse, before anyone is asked, what AWS would refuse or what must never happen
    (``adding``: the account ids / organization or OU ARNs the share adds)."""
    check_source_image(facts, source, region, verb="share", done="shared")
    check_share_rules(facts, adding=list(adding))


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
    autoscaling: bool = False,
) -> list[PlannedStep]:
    """The steps of a share: launch permission, a grant per key and target (and, with
    ``autoscaling``, for targets configured with ``autoscaling_grant``, a grant from
    the target to its Auto Scaling role), snapshot permission only with allow-copy,
    then a check from each target's side."""
    target_ids = [t.id for t in targets]
    steps: list[PlannedStep] = []
    launch = AddLaunchPermission.Params(image_id=facts.image_id, account_ids=target_ids, organization_arn=organization_arn, ou_arn=ou_arn)
    steps.append(AddLaunchPermission.plan(source, region, launch, grantees=targets))
    for key in facts.keys:
        for target in targets:
            grant = CreateKmsGrant.Params(
                key_arn=key.arn, grantee_principal=account_root(target.id, region), operations=list(SHARE_GRANT_OPERATIONS),
                grant_name=grant_name(request_uid, target.id),
            )
            steps.append(CreateKmsGrant.plan(source, region, grant, key_label=_key_label(key)))
    if autoscaling:
        steps += autoscaling_steps(request_uid=request_uid, facts=facts, source=source, region=region, targets=targets)
    if allow_copy and target_ids:
        snapshots = AddSnapshotPermission.Params(snapshot_ids=facts.snapshot_ids, account_ids=target_ids)
        steps.append(AddSnapshotPermission.plan(source, region, snapshots))
    for target in targets:
        check = VerifyTargetAccess.Params(image_id=facts.image_id, key_arns=[k.arn for k in facts.keys])
        steps.append(VerifyTargetAccess.plan(target, region, check))
        steps += launchroles.check_steps(target, region, [k.arn for k in facts.keys], facts.image_id)
    return steps


def test_launch_steps(facts: ImageFacts, region: str, targets: list[AccountConfig], poll_seconds: int) -> list[PlannedStep]:
    """``verify`` on a share: each target launches the shared AMI (the smallest
    instance type for its architecture) in its ``verify_subnets`` entry or the
    default VPC, waits for the status checks, and terminates it. The check that
    catches a key the target cannot use: such an instance ends at once with
    ``Client.InternalError``, which no DryRun can foresee."""
    steps = []
    for target in targets:
        subnet = target.verify_subnets.get(region)
        launch = VerifyByTestLaunch.Params(image_id=facts.image_id, subnet_id=subnet, key_arns=[k.arn for k in facts.keys], poll_seconds=poll_seconds)
        steps.append(VerifyByTestLaunch.plan(target, region, launch))
    return steps


def autoscaling_steps(*, request_uid: str, facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig]) -> list[PlannedStep]:
    """For each target with ``autoscaling_grant = true`` and each key: through the
    target's role, a grant on the source key to the target's Auto Scaling
    service-linked role. It runs after the source's grant to the target, which is
    what lets the target create it."""
    steps = []
    for target in targets:
        if not target.autoscaling_grant:
            continue
        for key in facts.keys:
            role = autoscaling_role(target.id, region)
            name = autoscaling_grant_name(request_uid, target.id)
            grant = CreateAutoScalingGrant.Params(
                image_id=facts.image_id, key_arn=key.arn, key_owner_account=source.id, grantee_principal=role,
                operations=list(AUTOSCALING_GRANT_OPERATIONS), grant_name=name,
            )
            steps.append(CreateAutoScalingGrant.plan(target, region, grant, key_label=_key_label(key)))
    return steps


def checked_lines(facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig]) -> list[str]:
    """What the preflight checked, in the words the approver reads."""
    lines = [f"{facts.image_id} {slacktext.code(facts.name, 128)} is `{facts.state}` in {region}, owned by `{source.alias}` ({facts.owner_id})"]
    for key in facts.keys:
        alias = f" ({', '.join(key.aliases)})" if key.aliases else ""
        lines.append(f"Snapshots encrypted with a customer-managed key{alias}, {key.state}: {key.arn}")
    if facts.unencrypted_snapshots:
        lines.append(f"Unencrypted snapshots: {', '.join(facts.unencrypted_snapshots)} (no key to share)")
    if targets:
        lines.append("Targets configured and accepting shares: " + ", ".join(f"`{t.alias}` ({t.id})" for t in targets))
    lines.append("Public: " + ("*the image is already public* (amibot does not change that)" if facts.public else "no, and no step makes anything public"))
    return lines + warnings(facts)


def check_duration(ctx: PlanningContext, command: ShareCommand) -> None:
    """A time-boxed share may not outlast ``bot.max_share_days``."""
    limit = ctx.config.bot.max_share_days
    if command.duration and command.duration.total_seconds() > limit * 86400:
        raise PreflightError(
            f"`for {_duration(command.duration.total_seconds())}` is longer than this workspace allows ({limit}d).",
            fix=f"Ask for {limit}d or less, or raise `bot.max_share_days` in the config.",
        )


def prepare_share(ctx: PlanningContext, command: ShareCommand) -> Prepared:
    """Preflight a share and plan it."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    check_duration(ctx, command)
    if command.organization or command.ou_id:
        return prepare_org_share(ctx, command, source, region)
    targets = resolve_targets(ctx.config, command.targets, source)
    approvers = approver_accounts("share", source)
    ctx.check_approvers(approvers)
    # In parallel (aws.reads): the source image and the targets' Allowed AMIs; once the
    # keys are known, each key's CreateGrant DryRun and the launch-role simulations.
    # Checked in the order they always were, so the refusal a person reads is the same.
    image = ctx.start_image(source, region, command.image_id, on_image=lambda found: _when_encrypted(ctx, found, targets))
    allowed = start_allowed_images(ctx, source, [(t, region) for t in targets])
    facts = ctx.preflight_image(source, region, command.image_id, image)
    check_shareable(facts, source, region, [t.id for t in targets])
    check_required_tags(ctx, facts, source, region, "shared")
    roles = [launchroles.start_plan_lines(ctx, t, region, [k.arn for k in facts.keys], facts.image_id) for t in targets]
    check_grants_possible(ctx, facts, source, region, targets)
    allowed_lines = check_allowed_images(ctx, facts.image_id, source, [(t, region) for t in targets], started=allowed)
    role_lines = [line for lines in roles for line in lines()]
    steps = share_steps(request_uid=ctx.uid, facts=facts, source=source, region=region, targets=targets, allow_copy=command.allow_copy, autoscaling=True)
    if getattr(command, "verify", False):
        steps += test_launch_steps(facts, region, targets, ctx.config.bot.poll_interval_seconds)
    after = []
    if command.duration:
        after.append(f"At expiry ({_duration(command.duration.total_seconds())} after completion) all of the above is removed automatically; no second approval.")
    if not command.allow_copy:
        after.append("No snapshot permission: the targets can launch the AMI but not copy it (add `allow-copy` to let them).")
    return Prepared(
        kind="share",
        params={"image_id": command.image_id, "source": source.alias, "region": region, "targets": [t.alias for t in targets],
                "allow_copy": command.allow_copy, "duration_seconds": command.duration.total_seconds() if command.duration else None},
        checked=checked_lines(facts, source, region, targets) + allowed_lines + role_lines,
        approver_accounts=approvers,
        steps=steps,
        after=after,
        extra_facts={"image": facts_for_message(facts)},
    )


def _when_encrypted(ctx: PlanningContext, image: dict[str, Any], targets: list[AccountConfig]) -> None:
    """An encrypted AMI: IAM will be asked about the targets' launch roles once its
    keys are known; assume those targets' sessions now, beside the snapshot reads
    (an unencrypted AMI asks nothing there: no session is assumed for it)."""
    if any((m.get("Ebs") or {}).get("Encrypted") for m in image.get("BlockDeviceMappings") or []):
        ctx.start_sessions([t.id for t in targets if t.launch_roles])


def _duration(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return f"{int(seconds // 3600)}h"


# -- organisation and OU shares ------------------------------------------------------------

# A plan line longer than a Slack section (3,000 characters) is cut; stay well below.
POLICY_SHOWN_LIMIT = 2600


def require_organization(config: Config, what: str) -> OrganizationConfig:
    """The configured organisation, or a refusal that names the config fix."""
    if config.organization is None:
        raise PreflightError(
            f"{what} needs the organization's id, and the config has no `[organization]` table.",
            fix=(
                'Add `[organization]` with `id = "o-…"` (AWS Organizations → Settings) and '
                '`management_account = "<12-digit id>"` to the config, then restart amibot.'
            ),
        )
    return config.organization


def org_entry(organization: OrganizationConfig, ou_id: str | None) -> tuple[dict[str, str], str]:
    """The launch-permission entry for the organisation or one OU, and how to name it."""
    if ou_id:
        return {"OrganizationalUnitArn": organization.ou_arn(ou_id)}, f"the OU `{ou_id}` of organization `{organization.id}`"
    return {"OrganizationArn": organization.arn()}, f"the organization `{organization.id}`"


def read_key_policy(ctx: PlanningContext, source: AccountConfig, region: str, key_arn: str, started: Pending[str] | None = None) -> str:
    """The key's policy text as the source account reads it (read-only preflight);
    ``started``: the read begun earlier (:func:`start_key_policy`)."""
    pending = started or start_key_policy(ctx, source, region, key_arn)
    return preflight_read(f"Could not read the key policy of {key_arn} in `{source.alias}`", pending.result)


def start_key_policy(ctx: PlanningContext, source: AccountConfig, region: str, key_arn: str) -> Pending[str]:
    """Start reading the key's policy (GetKeyPolicy) on the preflight's reads."""
    return ctx.reads.start(f"policy of {key_arn}", lambda: ctx.sessions.client("kms", source.id, region, ctx.tag).get_key_policy(
        KeyId=key_arn, PolicyName=keypolicy.POLICY_NAME)["Policy"])


def statement_summary(statement: Any) -> str:
    """One line for a key-policy statement: Sid, effect, principal, actions, conditions."""
    if not isinstance(statement, dict):
        return "• (not a statement)"
    actions = statement.get("Action", statement.get("NotAction", []))
    actions = [actions] if isinstance(actions, str) else list(actions)
    line = (
        f"• `{statement.get('Sid') or '(no Sid)'}` {statement.get('Effect', '?')} "
        f"{json.dumps(statement.get('Principal', statement.get('NotPrincipal')))} → {', '.join(map(str, actions))}"
        + (f" if {json.dumps(statement['Condition'])}" if statement.get("Condition") else "")
    )
    return line if len(line) <= 240 else line[:237] + "…"


def _policy_block(title: str, text: str, key_arn: str) -> str:
    """The whole policy when it fits a Slack section, else one line per statement
    with a fingerprint and the command that shows it in full."""
    pretty = keypolicy.render(json.loads(text))
    if len(title) + len(pretty) + 10 <= POLICY_SHOWN_LIMIT:
        return f"{title}\n```{slacktext.escape(pretty)}```"
    lines = [
        f"{title} — {len(pretty):,} characters, too long for a Slack section: its statements "
        f"(sha256 `{keypolicy.policy_digest(text)}`; `aws kms get-key-policy --key-id {key_arn} --policy-name default` shows it whole):"
    ]
    statements = keypolicy.statements(json.loads(text))
    for index, statement in enumerate(statements):
        line = slacktext.escape(statement_summary(statement))
        if sum(len(x) + 1 for x in lines) + len(line) > POLICY_SHOWN_LIMIT:
            lines.append(f"… and {len(statements) - index} more statements")
            break
        lines.append(line)
    return "\n".join(lines)


def policy_change_lines(key_label: str, key_arn: str, before_text: str, after_text: str, changed: list[dict[str, Any]], *, adding: bool) -> list[str]:
    """What the approver must see before a PutKeyPolicy: the policy before and after
    (each in full when it fits a section, else summarised), and the statements added
    or removed, always in full."""
    lines = [_policy_block(f"*Key policy of {key_label} now (before):*", before_text, key_arn)]
    after_title = f"*Key policy of {key_label} after:*"
    if len(keypolicy.render(json.loads(after_text))) + len(after_title) + 10 <= POLICY_SHOWN_LIMIT:
        lines.append(_policy_block(after_title, after_text, key_arn))
    else:
        verb = "plus" if adding else "without"
        lines.append(f"{after_title} the policy above, every other statement unchanged, {verb} "
                     + ("this statement:" if len(changed) == 1 else "these statements:"))
        for statement in changed:
            lines.append(f"```{slacktext.escape(json.dumps(statement, indent=2))}```")
    return lines


def prepare_org_share(ctx: PlanningContext, command: ShareCommand, source: AccountConfig, region: str) -> Prepared:
    """Preflight and plan a share with the organisation or one OU: launch permission
    by ARN and, for an encrypted AMI, a key-policy statement per key (a grant cannot
    name an organisation). The approver sees each key policy before and after."""
    organization = require_organization(ctx.config, "Sharing with an Organization or OU")
    if command.allow_copy:
        raise PreflightError(
            "Organisation members can launch a shared AMI but not copy it: snapshot permissions take account ids only.",
            fix="Leave out `allow-copy`, or name the accounts that need to copy after `to`.",
        )
    approvers = approver_accounts("share", source)
    ctx.check_approvers(approvers)
    facts = ctx.preflight_image(source, region, command.image_id)
    check_required_tags(ctx, facts, source, region, "shared")
    entry, who = org_entry(organization, command.ou_id)
    check_shareable(facts, source, region, list(entry.values()))
    steps = share_steps(
        request_uid=ctx.uid, facts=facts, source=source, region=region, targets=[], allow_copy=False,
        organization_arn=entry.get("OrganizationArn"), ou_arn=entry.get("OrganizationalUnitArn"),
    )
    checked = checked_lines(facts, source, region, [])
    checked.append(f"Target: {who} (config `[organization]`, managed from {organization.management_account}); launch permission by `{next(iter(entry.values()))}`")
    if entry in facts.launch_permissions:
        checked.append(f"{facts.image_id} is already shared with {who}: the launch permission is left as it is")
    sid = keypolicy.statement_sid(ctx.uid, organization.id, command.ou_id)
    grant_sid = keypolicy.grant_statement_sid(ctx.uid, organization.id, command.ou_id)
    statement = keypolicy.org_statement(sid, organization.id, command.ou_id, region=region)
    grant_statement = keypolicy.org_grant_statement(grant_sid, organization.id, command.ou_id)
    condition = f"aws:PrincipalOrgID is `{organization.id}`"
    if command.ou_id:
        condition += f" and aws:PrincipalOrgPaths is under `{keypolicy.org_paths_pattern(organization.id, command.ou_id)}`"
    after: list[str] = []
    policies: dict[str, dict[str, str]] = {}
    # Every key's tags and policy at once; checked key by key, in the order they always were.
    started = {key.arn: (start_key_tags(ctx, source, region, key), start_key_policy(ctx, source, region, key.arn)) for key in facts.keys}
    for key in facts.keys:
        check_marked_for_org_sharing(ctx, source, region, key, started[key.arn][0])
        before_text = read_key_policy(ctx, source, region, key.arn, started[key.arn][1])
        before = json.loads(before_text)
        after_policy = keypolicy.with_statement(keypolicy.with_statement(before, statement), grant_statement)
        after_text = keypolicy.render(after_policy)
        size = keypolicy.policy_size(after_policy)
        if size > keypolicy.KEY_POLICY_MAX_BYTES:
            raise PreflightError(
                f"The key policy of {_key_label(key)} would be {size:,} bytes with amibot's two statements; "
                f"KMS refuses a key policy over {keypolicy.KEY_POLICY_MAX_BYTES:,} bytes (32 KiB).",
                fix=keypolicy.KeyPolicyTooLarge(key.arn, size).fix,
            )
        policies[key.arn] = {"before": before_text, "after": after_text}
        earlier = [s for s in keypolicy.sids(before) if s.startswith("amibot-") and s.endswith(f"-{command.ou_id or organization.id}")]
        checked.append(
            f"Key policy of {_key_label(key)} read: {len(keypolicy.statements(before))} statement(s), {size:,} of "
            f"{keypolicy.KEY_POLICY_MAX_BYTES:,} bytes after this share"
            + (f"; amibot's statements for this target already there: {', '.join(f'`{s}`' for s in earlier)}" if earlier else "")
        )
        for added, said in (
            (statement, f"any principal whose {condition} may have EC2 ({statement['Condition']['StringEquals']['kms:ViaService']}) "
                        f"use the key: {', '.join(keypolicy.ORG_CRYPTO_ACTIONS)}"),
            (grant_statement, f"the same principals may {', '.join(keypolicy.ORG_GRANT_ACTIONS)} only when an AWS service "
                              "creates the grant for a resource (kms:GrantIsForAWSResource = true)"),
        ):
            change = AddKeyPolicyStatement.Params(
                image_id=facts.image_id, key_arn=key.arn, statement=added, expected_policy=before_text,
                organization_id=organization.id, ou_id=command.ou_id,
            )
            steps.append(AddKeyPolicyStatement.plan(source, region, change, key_label=_key_label(key), allows=said))
        after += policy_change_lines(_key_label(key), key.arn, before_text, after_text, [statement, grant_statement], adding=True)
    after.append("Organisation members can launch the AMI but not copy it: snapshot permissions take account ids only.")
    if not facts.keys:
        after.append("The AMI is not encrypted: no key policy changes.")
    after.append(
        "No check from a member's side: amibot does not know which accounts are in the organization. "
        f"A member sees the AMI with `aws ec2 describe-images --image-ids {facts.image_id}`."
    )
    if command.duration:
        after.append(f"At expiry ({_duration(command.duration.total_seconds())} after completion) all of the above is removed automatically "
                     "(the key policy goes back to its text before); no second approval.")
    return Prepared(
        kind="share",
        params={"image_id": command.image_id, "source": source.alias, "region": region, "targets": [],
                "organization": command.organization, "ou_id": command.ou_id, "allow_copy": False,
                "duration_seconds": command.duration.total_seconds() if command.duration else None},
        checked=checked,
        approver_accounts=approvers,
        steps=steps,
        after=after,
        extra_facts={"image": facts_for_message(facts), "key_policies": policies},
    )
