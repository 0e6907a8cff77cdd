"""Distribute an AMI: one request, one copy per account-region, each its own unit.

The plan has three parts. First the source-side steps every cross-account target
needs, merged (one launch permission and one snapshot permission for all target
accounts, one named grant per key and target account), temporary. Then one *unit*
per target (``params["unit"]`` = ``alias:region``): the check from the target, the
copy (with its own ClientToken), the wait, the check of the copy, and, if asked, the
test launch, the share of the copy (``share-with``) and the new launch-template
version (``update-lt``). The worker runs units independently (``bot.units``): a
failure in one does not stop the others. Last, the temporary share is removed.

Retrying: asking for the same distribution again plans only what is missing: a
target whose copy an earlier request made (and which is still available) is not
copied again (see ``docs/best-practices.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws.actions import SHARE_GRANT_OPERATIONS, ImageFacts, account_root, grant_name
from aws.actions.copy import RemoveTemporary, resolve_destination_key, unit_client_token
from aws.actions.distribute import ShareCopy
from aws.actions.launch_template import CreateLaunchTemplateVersion, template_refusal
from aws.actions.grants import CreateKmsGrant
from aws.actions.share import AddLaunchPermission, AddSnapshotPermission
from aws.actions.verify import VerifyByTestLaunch
from aws.actions.images import find_image
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.verbs.common import PlanningContext, Prepared, check_required_tags, facts_for_message, preflight_read
from bot.verbs.copy.plan import copy_steps, destination_key
from bot.verbs.aws_rules import check_allowed_images, start_allowed_images
from bot.verbs.copy_checks import check_copy_source, check_shareable_copy, start_copy_destination
from bot.requests import STEP_DONE, PlannedStep

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.distribute.command import DistributeCommand

TEMPORARY_ACTIONS = ("ec2.add_launch_permission", "ec2.add_snapshot_permission", "kms.create_grant")


def unit_key(alias: str, region: str) -> str:
    """How a target is named in the plan, the progress and the final message."""
    return f"{alias}:{region}"


def earlier_copies(ctx: PlanningContext, image_id: str) -> dict[tuple[str, str], tuple[str, str, str | None]]:
    """(account id, region) → (image id, request display id, key ARN) of copies of
    ``image_id`` that earlier requests made and checked (``verify.copy`` done)."""
    found: dict[tuple[str, str], tuple[str, str, str | None]] = {}
    for request in ctx.find_requests():
        if request.kind not in ("copy", "distribute") or request.params.get("image_id") != image_id:
            continue
        for step in request.steps:
            if step.action == "verify.copy" and step.state == STEP_DONE and step.result.get("image_id"):
                found.setdefault((step.account_id, step.region), (step.result["image_id"], request.display_id, step.result.get("kms_key_arn")))
    return found


def _renumber(steps: list[PlannedStep], offset: int) -> list[PlannedStep]:
    for step in steps:
        if "image_from_step" in step.params:
            step.params["image_from_step"] = int(step.params["image_from_step"]) + offset
    return steps


def merged_temporary_steps(facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig], request_uid: str) -> list[PlannedStep]:
    """The source-side steps every cross-account target needs, once for all of them."""
    ids = sorted({t.id for t in targets})
    if not ids:
        return []
    grantees = list({t.id: t for t in targets}.values())
    steps = [
        AddLaunchPermission.plan(source, region, AddLaunchPermission.Params(image_id=facts.image_id, account_ids=ids), grantees=grantees,
                                 note="temporary, removed after the copies"),
        AddSnapshotPermission.plan(source, region, AddSnapshotPermission.Params(snapshot_ids=facts.snapshot_ids, account_ids=ids),
                                   note="temporary: CopyImage from another account needs it"),
    ]
    for key in facts.keys:
        for account in ids:
            grant = CreateKmsGrant.Params(
                key_arn=key.arn, grantee_principal=account_root(account, region), operations=list(SHARE_GRANT_OPERATIONS),
                grant_name=grant_name(request_uid, account), retiring_principal=source.role_arn,
            )
            steps.append(CreateKmsGrant.plan(source, region, grant, key_label=key.arn, note="temporary: the copies decrypt with it"))
    return steps


def _start_copy_side(ctx: PlanningContext, command: DistributeCommand, target: AccountConfig, region: str) -> dict[str, Any]:
    """Start a target's copy reads: its key (``copy.plan.destination_key``) and its room and name."""
    return {"key": ctx.reads.start(f"destination key {target.id} {region}", lambda: destination_key(ctx, target, region, command.kms)),
            "room": start_copy_destination(ctx, target, region, command.name)}


def _start_target_side(ctx: PlanningContext, command: DistributeCommand, target: AccountConfig, region: str,
                       earlier: tuple[str, str, str | None] | None, share_with: list[AccountConfig]) -> dict[str, Any]:
    """Start every read of one target at once: the earlier copy (and its key, for
    share-with) or the copy's side, and the share-with accounts' Allowed AMIs there."""
    side: dict[str, Any] = {}
    if earlier:
        side["earlier"] = ctx.reads.start(f"earlier copy {earlier[0]}", lambda: find_image(ctx.sessions.client("ec2", target.id, region, ctx.tag), earlier[0]))
        if command.share_with and earlier[2]:
            side["earlier_key"] = ctx.reads.start(f"key {earlier[2]}", lambda: resolve_destination_key(ctx.sessions, target.id, region, earlier[2], ctx.tag))
    else:
        side.update(_start_copy_side(ctx, command, target, region))
    side["allowed"] = start_allowed_images(ctx, target, [(a, region) for a in share_with if a.id != target.id])
    return side


def prepare_distribute(ctx: PlanningContext, command: DistributeCommand) -> Prepared:
    """Preflight a distribution and plan it: per target its key, name and tags."""
    source = ctx.config.account(command.source.account)
    source_region = ctx.region_of(command.source.region)
    targets = [(ctx.config.account(t.account), ctx.region_of(t.region)) for t in command.targets]
    seen: set[tuple[str, str]] = set()
    for target, region in targets:
        if (target.id, region) in seen:
            raise PreflightError(f"`{target.alias}:{region}` is named twice.", fix="Name each account-region once after `to`.")
        seen.add((target.id, region))
        if target.id == source.id and region == source_region and not command.kms:
            raise PreflightError(
                f"`{target.alias}:{region}` is where the AMI already is.",
                fix="Leave it out, or add `kms <key>` to re-encrypt it in place.",
            )
        if target.id != source.id and not target.accept_shares:
            raise PreflightError(f"Account `{target.alias}` is configured not to receive shares or copies (accept_shares = false).",
                                 fix="Ask its owners to change the setting, or leave it out.")
    share_with = [ctx.config.account(a) for a in command.share_with]
    for account in share_with:
        if not account.accept_shares:
            raise PreflightError(f"Account `{account.alias}` is configured not to receive shares (accept_shares = false).",
                                 fix="Leave it out of `share-with`, or ask its owners to change the setting.")
    lt_target = None
    if command.update_lt:
        lt_target = (ctx.config.account(command.update_lt.target.account).id, ctx.region_of(command.update_lt.target.region))
        if lt_target not in seen:
            raise PreflightError(f"`update-lt {command.update_lt.template_id}` is in an account-region that is not a target.",
                                 fix="Name the launch template's account-region after `to` as well.")
        lt_ec2 = ctx.sessions.client("ec2", lt_target[0], lt_target[1], ctx.tag)
        refusal = preflight_read(f"Could not read launch template {command.update_lt.template_id}",
                                 lambda: template_refusal(lt_ec2, command.update_lt.template_id))
        if refusal:
            raise PreflightError(refusal[0], fix=refusal[1])
    approvers = [source.alias] + [a for a in dict.fromkeys(t.alias for t, _ in targets) if a != source.alias]
    ctx.check_approvers(approvers)
    # In parallel (aws.reads): the source image, the targets' Allowed AMIs, and each
    # target's side (an earlier copy, or the copy's key, room and name; the share-with
    # accounts' Allowed AMIs). Checked in the order they always were.
    image = ctx.start_image(source, source_region, command.image_id)
    accounts = list({t.id: t for t, _ in targets}.values())
    allowed = start_allowed_images(ctx, source, [(t, source_region) for t in accounts if t.id != source.id])
    done_before = earlier_copies(ctx, command.image_id)
    sides = {(target.id, region): _start_target_side(ctx, command, target, region, done_before.get((target.id, region)), share_with)
             for target, region in targets}
    facts = ctx.preflight_image(source, source_region, command.image_id, image)
    # The checks /ami copy runs, shared (bot/verbs/copy_checks.py): AWS's copy rules and
    # the source key's CreateGrant DryRun here, each copied destination's below.
    allowed_lines = check_copy_source(ctx, facts, source, source_region, accounts, allowed=allowed)
    check_required_tags(ctx, facts, source, source_region, "distributed")
    poll = ctx.config.bot.poll_interval_seconds

    units: list[tuple[str, list[PlannedStep], list[str]]] = []  # (unit, steps with seqs relative to the unit, plan lines)
    copy_targets: list[AccountConfig] = []
    skipped: list[str] = []
    unit_keys: dict[str, dict[str, Any]] = {}  # the key each new copy gets (the card warns of an AWS-managed one)
    for target, region in targets:
        key_name = unit_key(target.alias, region)
        earlier = done_before.get((target.id, region))
        side = sides[(target.id, region)]
        image_ref: dict[str, Any]
        dest_key = None
        if earlier and preflight_read(f"Could not look up {earlier[0]} in `{target.alias}` {region}", side["earlier"].result) is not None:
            steps: list[PlannedStep] = []
            image_ref = {"image_id": earlier[0]}
            lines = [f"already copied by {earlier[1]}: `{earlier[0]}` — not copied again"]
            if command.share_with and earlier[2]:
                # share-with needs the copy's key (a grant on it for a customer-managed key).
                dest_key = preflight_read(
                    f"Could not read the key {earlier[2]} of {earlier[0]} in `{target.alias}` {region}",
                    side["earlier_key"].result,
                )
        else:
            if "key" not in side:  # the earlier copy is gone: copy again
                side.update(_start_copy_side(ctx, command, target, region))
            key = dest_key = side["key"].result()
            unit_keys[key_name] = {"arn": key.arn, "aliases": key.aliases, "manager": key.manager}
            side["room"]()
            full = copy_steps(
                request_uid=ctx.uid, facts=facts, source=source, source_region=source_region, target=target, region=region,
                key=key, name=command.name, poll_seconds=poll, verify=command.verify,
            )
            first = next(i for i, s in enumerate(full) if s.action in ("verify.target_access", "ec2.copy_image"))
            steps = [s for s in full[first:] if s.action != "plan.remove_temporary"]
            _renumber(steps, -first)
            copy_step = next(s for s in steps if s.action == "ec2.copy_image")
            copy_step.params["client_token"] = unit_client_token(ctx.uid, target.id, region)
            copy_step.description = copy_step.description.replace(f"ClientToken=`amibot-copy-{ctx.uid}`", f"ClientToken=`{copy_step.params['client_token']}`")
            copy_seq = steps.index(copy_step) + 1
            image_ref = {"image_from_step": copy_seq}
            if target.id != source.id:
                copy_targets.append(target)
            tag_keys = sorted(k for k in facts.tags if not k.lower().startswith("aws:"))
            lines = [
                f"key {key.label()} ({key.source})",
                f"name `{command.name}`" if command.name else "name `<source name>-copy-<request id>`",
                "tags " + ", ".join(f"`{k}`" for k in tag_keys) + (" + " if tag_keys else "") + f"provenance + `region={region}`",
            ]
        if command.verify and not any(s.action == "verify.test_launch" for s in steps):
            launch = VerifyByTestLaunch.Params(**image_ref, subnet_id=target.verify_subnets.get(region), key_arns=[], poll_seconds=poll)
            steps.append(VerifyByTestLaunch.plan(target, region, launch, of="earlier copy"))
        recipients = [a for a in share_with if a.id != target.id]
        if recipients:
            check_shareable_copy(dest_key, target, region)
            allowed_lines += check_allowed_images(ctx, f"the copy of {facts.image_id}", target, [(a, region) for a in recipients],
                                                  started=side["allowed"])
            kms_arn = dest_key.arn if dest_key else None
            customer_key = bool(dest_key) and dest_key.manager != "AWS"
            share = ShareCopy.Params(**image_ref, account_ids=[a.id for a in recipients], kms_key_arn=kms_arn, key_is_customer_managed=customer_key)
            steps.append(ShareCopy.plan(target, region, share, recipients=recipients))
            lines.append("shared with " + ", ".join(f"`{a.alias}`" for a in recipients))
        if command.update_lt and lt_target == (target.id, region):
            lt = command.update_lt
            version = CreateLaunchTemplateVersion.Params(**image_ref, template_id=lt.template_id, make_default=lt.make_default)
            steps.append(CreateLaunchTemplateVersion.plan(target, region, version))
            lines.append(f"launch template {lt.template_id}: new version" + (" (default)" if lt.make_default else ""))
        if not steps:
            skipped.append({"unit": key_name, "image_id": earlier[0] if earlier else None, "by": earlier[1] if earlier else None})
        units.append((key_name, steps, lines))

    prelude = merged_temporary_steps(facts, source, source_region, copy_targets, ctx.uid)
    plan: list[PlannedStep] = list(prelude)
    for key_name, steps, _ in units:
        offset = len(plan)
        for step in _renumber(steps, offset):
            step.params["unit"] = key_name
            plan.append(step)
    if prelude:
        remove = RemoveTemporary.Params(steps=list(range(1, len(prelude) + 1)))
        plan.append(RemoveTemporary.plan(source, source_region, remove, grants=bool(facts.keys)))
    if len(skipped) == len(units):  # nothing left to do
        raise PreflightError(
            "Every target already has its copy: " + "; ".join(f"{u}: {', '.join(lines)}" for u, _, lines in units) + ".",
            fix="Nothing to do. `/ami audit` shows who can use each copy.",
        )
    checked = [f"{facts.image_id} `{facts.name}` is `{facts.state}` in {source_region}, owned by `{source.alias}` ({facts.owner_id})"]
    checked += [f"Target `{u}`: {'; '.join(lines)}" for u, _, lines in units] + allowed_lines
    after = [
        "Each target is its own unit: a failure in one does not stop the others; its unfinished copy is deregistered, a finished one is kept.",
        "To retry what failed, ask for the same distribution again: targets that already have their copy are not copied again.",
    ]
    return Prepared(
        kind="distribute",
        params={
            "image_id": facts.image_id, "source": source.alias, "source_region": source_region,
            "targets": [u for u, _, _ in units], "skipped": skipped, "share_with": [a.alias for a in share_with],
            "update_lt": command.update_lt.template_id if command.update_lt else None, "verify": command.verify,
            "keys": unit_keys,
        },
        checked=checked,
        approver_accounts=approvers,
        steps=plan,
        after=after,
        extra_facts={"image": facts_for_message(facts)},
    )
