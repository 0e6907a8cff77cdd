"""Copy an AMI into an account and region: the preflight rules and the exact plan.

Three shapes, one plan builder:
- within an account, across regions (or in place, to re-encrypt with a CMK): the copy
  alone, approved by the account's owners;
- into another account (and region): the target may copy a foreign AMI only with
  launch permission, snapshot permission (else "You do not have permission to access
  the storage of this ami") and, for a CMK-encrypted source, use of the key (else the
  copy *fails later*, asynchronously). Those three are added for the copy and removed
  after it; the copy itself is owned by the target and encrypted with the target's
  key, so it never depends on the source. Approved by the owners of both accounts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from aws.account_facts import EBS_DEFAULT_KEY
from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root, grant_name
from aws.actions.copy import (
    MAX_COPIES_IN_FLIGHT,
    CopyImage,
    DestinationKey,
    RemoveTemporary,
    check_key_usable,
    ebs_default_key_id,
    resolve_destination_key,
)
from aws.actions.disposable import DeliverImage
from aws.actions.images import WaitImageAvailable
from aws.actions.grants import CreateKmsGrant
from aws.actions.share import AddLaunchPermission, AddSnapshotPermission
from aws.actions.target_checks import VerifyCopy, VerifyTargetAccess
from aws.actions.verify import VerifyByTestLaunch
from bot import slacktext
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.verbs.common import (
    PlanningContext,
    Prepared,
    approver_accounts,
    check_required_tags,
    facts_for_message,
    preflight_read,
)
from bot.verbs.common import key_label as _key_label
from bot.verbs.aws_rules import start_allowed_images, warnings
from bot.verbs.copy_checks import check_copy_source, start_copy_destination
from bot.verbs import launch_roles as launchroles
from bot.plantext import COPY_NAME_MARK
from bot.requests import STEP_DONE, STEP_UNDONE, PlannedStep

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.copy.command import CopyCommand

T = TypeVar("T")
KMS_ARN = re.compile(r"arn:aws[\w-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?:key|alias)/.+")


def destination_key(ctx: PlanningContext, target: AccountConfig, region: str, requested: str | None) -> DestinationKey:
    """The key the copy is encrypted with: ``kms`` given, else the target's configured
    ``kms_keys[region]``, else its default EBS key; resolved to an ARN through the
    target's own role in the destination region and checked usable there."""
    if requested:
        ref, how = requested, "named in the request"
    elif target.kms_keys.get(region):
        ref, how = target.kms_keys[region], f"`accounts.{target.alias}.kms_keys` for {region}"
    else:
        ref, how = None, f"`{target.alias}`'s default EBS key in {region} (no `kms` given, no `kms_keys` entry for {region})"
    shown = f"`{ref}`" if ref else "the default EBS key"
    where = f"`{target.alias}` ({target.id}) in {region}"
    fix = (
        f"Name a key of `{target.alias}` that exists in {region} with `kms <key>`, or set "
        f"`accounts.{target.alias}.kms_keys` for {region}."
    )
    arn = KMS_ARN.fullmatch(ref or "")
    if arn and arn.group("account") != target.id:
        # Caught before asking AWS: the target could not even describe it.
        raise PreflightError(
            f"The key {ref} belongs to account {arn.group('account')}, not to `{target.alias}` ({target.id}): "
            "the copy must be encrypted with a key the target owns, so it never depends on another account's key.",
            fix=fix,
        )
    if arn and arn.group("region") != region:
        raise PreflightError(f"The key {ref} is in {arn.group('region')}, but the copy goes to {region}: KMS keys are regional.", fix=fix)
    default_key = (lambda: ctx.account_fact(EBS_DEFAULT_KEY, target.id, region, lambda: ebs_default_key_id(ctx.sessions, target.id, region, ctx.tag)))
    key = preflight_read(
        f"The copy's key {shown} cannot be used by {where}",
        lambda: resolve_destination_key(ctx.sessions, target.id, region, ref, ctx.tag, default_key_id=default_key),
        fix=fix,
        own_fix=True,
    )
    key.source = how
    if key.account_id != target.id:
        raise PreflightError(
            f"The key {key.arn} belongs to account {key.account_id}, not to `{target.alias}` ({target.id}): "
            "the copy must be encrypted with a key the target owns, so it never depends on another account's key.",
            fix=fix,
        )
    if key.region != region:
        raise PreflightError(f"The key {key.arn} is in {key.region}, but the copy goes to {region}: KMS keys are regional.", fix=fix)
    if key.state != "Enabled":
        raise PreflightError(f"The key {key.label()} is `{key.state}`.", fix=f"Enable it (or cancel its deletion), or: {fix}")
    if key.usage != "ENCRYPT_DECRYPT" or key.spec != "SYMMETRIC_DEFAULT":
        raise PreflightError(f"The key {key.label()} is {key.spec} for {key.usage}: EBS needs a symmetric encryption key.", fix=fix)
    if key.manager != "AWS":
        # AWS-managed keys are used through EC2 only (their policy refuses direct
        # calls), so only a CMK can be checked this way.
        preflight_read(
            f"`{target.alias}`'s role may not use the key {key.label()}",
            lambda: check_key_usable(ctx.sessions, target.id, region, key.arn, ctx.tag),
            fix="Allow the role kms:CreateGrant on the key (key policy and IAM: `amibot iam-policy`).",
        )
    return key


def copy_steps(
    *,
    request_uid: str,
    facts: ImageFacts,
    source: AccountConfig,
    source_region: str,
    target: AccountConfig,
    region: str,
    key: DestinationKey,
    name: str | None,
    poll_seconds: int,
    verify: bool = False,
) -> list[PlannedStep]:
    """The exact steps of a copy (seqs start at 1, in this order)."""
    cross_account = source.id != target.id
    steps: list[PlannedStep] = []
    temporary: list[int] = []

    def add(step: PlannedStep) -> int:
        steps.append(step)
        return len(steps)

    if cross_account:
        launch = AddLaunchPermission.Params(image_id=facts.image_id, account_ids=[target.id])
        temporary.append(add(AddLaunchPermission.plan(source, source_region, launch, grantees=[target], note="temporary, removed after the copy")))
        snapshots = AddSnapshotPermission.Params(snapshot_ids=facts.snapshot_ids, account_ids=[target.id])
        temporary.append(add(AddSnapshotPermission.plan(source, source_region, snapshots, note="temporary: CopyImage from another account needs it")))
        for source_key in facts.keys:
            grant = CreateKmsGrant.Params(
                key_arn=source_key.arn, grantee_principal=account_root(target.id, source_region), operations=list(SHARE_GRANT_OPERATIONS),
                grant_name=grant_name(request_uid, target.id), retiring_principal=source.role_arn,
            )
            temporary.append(add(CreateKmsGrant.plan(source, source_region, grant, key_label=_key_label(source_key), note="temporary: the copy decrypts with it")))
        check = VerifyTargetAccess.Params(image_id=facts.image_id, key_arns=[k.arn for k in facts.keys])
        add(VerifyTargetAccess.plan(target, source_region, check, for_copy=True))
    # The default name holds the request's number, known once it is stored: the card
    # shows the real name in place of COPY_NAME_MARK.
    shown_name = f"`{name}`" if name else f"`{COPY_NAME_MARK}`"
    tag_keys = [k for k in facts.tags if not k.lower().startswith("aws:")]
    copy = CopyImage.Params(
        source_image_id=facts.image_id, source_region=source_region, source_account_id=source.id, source_name=facts.name,
        source_tags=facts.tags, kms_key_arn=key.arn, name=name, region_tag=region,
    )
    copy_seq = add(CopyImage.plan(
        target, region, copy, request_uid=request_uid, key_aliases=key.aliases, shown_name=shown_name,
        source_tag_keys=[slacktext.code(k, 128) for k in tag_keys],
    ))
    wait = WaitImageAvailable.Params(image_from_step=copy_seq, poll_seconds=poll_seconds, source_key_arns=[k.arn for k in facts.keys])
    add(WaitImageAvailable.plan(target, region, wait, copy=True))
    add(VerifyCopy.plan(target, region, VerifyCopy.Params(image_from_step=copy_seq, kms_key_arn=key.arn, source_image_id=facts.image_id)))
    if verify:
        launch_check = VerifyByTestLaunch.Params(
            image_from_step=copy_seq, subnet_id=target.verify_subnets.get(region), key_arns=[key.arn], poll_seconds=poll_seconds,
        )
        add(VerifyByTestLaunch.plan(target, region, launch_check, of="copy"))
    # Verified: the copy is a deliverable, no longer something amibot may delete.
    add(DeliverImage.plan(target, region, DeliverImage.Params(image_from_step=copy_seq), of="copy"))
    if temporary:
        # Last, so that nothing after it can fail and make the runner undo them twice.
        remove = RemoveTemporary.Params(steps=temporary)
        add(RemoveTemporary.plan(source, source_region, remove, grants=bool(facts.keys), kept_by=target))
    return steps


def checked_lines(facts: ImageFacts, source: AccountConfig, source_region: str, target: AccountConfig, region: str,
                  key: DestinationKey, in_flight: int, cross_account: bool) -> list[str]:
    """What the preflight checked, in the words the approver reads."""
    if facts.owner_id != source.id:
        lines = [
            f"{facts.image_id} {slacktext.code(facts.name, 128)} is `{facts.state}` in {source_region}, owned by account {facts.owner_id} (not configured here) "
            f"and shared with `{source.alias}` ({source.id}), which makes the copy; the original stays {facts.owner_id}'s"
        ]
    else:
        lines = [f"{facts.image_id} {slacktext.code(facts.name, 128)} is `{facts.state}` in {source_region}, owned by `{source.alias}` ({facts.owner_id})"]
    for k in facts.keys:
        alias = f" ({', '.join(k.aliases)})" if k.aliases else ""
        kind = "the AWS-managed key" if k.manager == "AWS" else "a customer-managed key"
        lines.append(f"Snapshots encrypted with {kind}{alias}, {k.state}: {k.arn}")
    if facts.unencrypted_snapshots:
        lines.append(f"Unencrypted snapshots: {', '.join(facts.unencrypted_snapshots)} (the copy is encrypted anyway)")
    if cross_account:
        lines.append(f"Target `{target.alias}` ({target.id}) is configured and accepts shares")
    key_kind = "AWS-managed" if key.manager == "AWS" else "customer-managed"
    lines.append(f"Destination key ({key.source}): {key.label()}, {key_kind}, {key.state}, owned by `{target.alias}`, in {region}, seen by `{target.alias}`'s role")
    if key.manager == "AWS":
        lines.append("Note: a copy encrypted with `aws/ebs` cannot be shared with other accounts; name a CMK with `kms <key>` if it must be")
    lines.append(f"Copies in flight in `{target.alias}` {region}: {in_flight} of AWS's {MAX_COPIES_IN_FLIGHT}")
    lines.append("Public: " + ("the source is public (the copy will not be)" if facts.public else "no") + "; no step makes anything public")
    return lines + warnings(facts)


def prepare_copy(ctx: PlanningContext, command: CopyCommand) -> Prepared:
    """Preflight a copy and plan it."""
    source = ctx.config.account(command.source.account)
    source_region = ctx.region_of(command.source.region)
    target = ctx.config.account(command.target.account)
    region = ctx.region_of(command.target.region)
    cross_account = source.id != target.id
    if cross_account and not target.accept_shares:
        raise PreflightError(
            f"Account `{target.alias}` is configured not to receive shares or copies (accept_shares = false).",
            fix="Ask its owners to change the setting, or pick another account.",
        )
    approvers = approver_accounts("copy", source, target)
    ctx.check_approvers(approvers)
    # In parallel (aws.reads): the source image, the target's Allowed AMIs in the
    # source region, and the whole destination side (its key and, once the key is
    # known, the launch-role simulations; the copies in flight and the name).
    # Checked in the order they always were, so the refusal a person reads is the same.
    image = ctx.start_image(source, source_region, command.image_id)
    allowed = start_allowed_images(ctx, source, [(target, source_region)] if cross_account else [])
    destination = ctx.reads.start("destination key", lambda: destination_key(ctx, target, region, command.kms))
    roles = ctx.reads.start("launch roles", lambda: launchroles.start_plan_lines(ctx, target, region, [destination.result().arn], command.image_id)())
    room = start_copy_destination(ctx, target, region, command.name)
    facts = ctx.preflight_image(source, source_region, command.image_id, image)
    allowed_lines = check_copy_source(ctx, facts, source, source_region, [target], allowed=allowed)
    check_required_tags(ctx, facts, source, source_region, "copied")
    key = destination.result()
    in_flight = room()
    steps = copy_steps(
        request_uid=ctx.uid, facts=facts, source=source, source_region=source_region, target=target, region=region,
        key=key, name=command.name, poll_seconds=ctx.config.bot.poll_interval_seconds, verify=command.verify,
    )
    after = []
    if cross_account:
        after.append(
            f"The copy belongs to `{target.alias}` and is encrypted with its own key: once it is available, the launch permission, "
            f"snapshot permission{' and grant' if facts.keys else ''} above are removed (the last step)."
        )
    after.append("If the copy fails, an unfinished copy is deregistered and what was added is removed; a finished copy is never deleted automatically.")
    return Prepared(
        kind="copy",
        params={
            "image_id": command.image_id, "source": source.alias, "source_region": source_region, "region": region,
            "target": target.alias, "target_region": region, "kms_key_arn": key.arn, "name": command.name, "verify": command.verify,
        },
        checked=checked_lines(facts, source, source_region, target, region, key, in_flight, cross_account)
        + allowed_lines + roles.result(),
        approver_accounts=approvers,
        steps=steps,
        after=after,
        extra_facts={"image": facts_for_message(facts), "destination_key": {"arn": key.arn, "aliases": key.aliases, "source": key.source, "manager": key.manager}},
    )


def settle_copy(request: Any, store: Any, notifier: Any) -> list[str]:
    """Once the copy succeeded: the temporary steps (launch permission, snapshot
    permission, grant) were removed by its last step, so record them as undone (the
    plan shows it, and nothing later treats them as in force). The new AMI heads the
    final reply (``bot.lifecycle``, results first): nothing to add here."""
    for step in request.steps:
        if step.action == "plan.remove_temporary" and step.state == STEP_DONE:
            for seq in step.params.get("steps", []):
                store.mark_step(request.id, int(seq), STEP_UNDONE)
    return []
