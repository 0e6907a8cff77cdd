"""Retire a golden image: the preflight (read-only) and the plan.

One AMI, or with ``with-copies`` the AMI and every copy amibot made of it (found by
the requests in the store and by the copies' provenance tags, ``amibot:source-ami``),
each its own group of steps (``params["unit"]`` = ``alias:region``): one failing
does not stop the others. Approved by the owners of every account touched.

Refused before anyone is asked, with the fix: an account without ``retire = true``
(amibot's role there may not retire), an image without the account's ``retire_tag``,
an AMI the account named does not own, deregistration protection (or its cooldown)
for ``deregister``, a launch template's default version or an Auto Scaling group
using it for ``disable``/``deregister``. Running instances launched from it are a
warning with the count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws.actions.images import find_image
from aws.actions.retire import DeprecateImage, DeregisterImage, DisableImage, RetireFacts, retire_facts
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.requests import PlannedStep
from bot.verbs.common import PlanningContext, Prepared, facts_for_message, preflight_read
from bot.verbs.distribute.plan import earlier_copies, unit_key

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.retire.command import RetireCommand

SOURCE_TAG = "amibot:source-ami"  # set on every copy (aws.actions.copy)


@dataclass
class Target:
    """One AMI to retire: the original or a copy."""

    account: AccountConfig
    region: str
    image_id: str
    found_by: str  # "the AMI named", "R-3", "its provenance tags"


def _copies(ctx: PlanningContext, source: AccountConfig, region: str, image_id: str) -> list[Target]:
    """Every copy amibot made of ``image_id``: from the store, then by the provenance
    tag in each configured account's regions (the default, the source's, its key regions)."""
    found: dict[tuple[str, str], Target] = {}
    for (account_id, copy_region), (copy_id, by, _key) in earlier_copies(ctx, image_id).items():
        account = ctx.config.account_by_id(account_id)
        if account is not None:
            found[(account_id, copy_region)] = Target(account, copy_region, copy_id, by)
    for account in ctx.config.accounts.values():
        for where in sorted({ctx.config.bot.default_region, region, *account.kms_keys}):
            if (account.id, where) in found or (account.id == source.id and where == region):
                continue
            images = preflight_read(
                f"Could not look for copies of {image_id} in `{account.alias}` {where}",
                lambda: ctx.sessions.client("ec2", account.id, where, f"preflight-{ctx.uid}").describe_images(
                    Owners=["self"], Filters=[{"Name": f"tag:{SOURCE_TAG}", "Values": [image_id]}])["Images"],
            )
            for image in images:
                found.setdefault((account.id, where), Target(account, where, image["ImageId"], "its provenance tags"))
    return list(found.values())


def _who(ctx: PlanningContext, permissions: list[dict[str, str]]) -> list[str]:
    names = []
    for perm in permissions:
        if perm.get("Group") == "all":
            names.append("everyone (public)")
        elif perm.get("UserId"):
            account = ctx.config.account_by_id(perm["UserId"])
            names.append(f"`{account.alias}` ({perm['UserId']})" if account else perm["UserId"])
        else:
            names.append(perm.get("OrganizationArn") or perm.get("OrganizationalUnitArn") or str(perm))
    return names


def _deprecate_at(date: str | None) -> str | None:
    if date is None:
        return None
    at = dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc)
    if at.date() < dt.datetime.now(dt.timezone.utc).date():
        raise PreflightError(f"{date} is in the past: AWS refuses a deprecation time in the past.", fix="Give a date from today on, or none (now).")
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(ctx: PlanningContext, target: Target, mode: str) -> tuple[Any, RetireFacts, list[str]]:
    """The preflight of one AMI: refusals raised, the plan's lines returned."""
    account, region, image_id = target.account, target.region, target.image_id
    where = f"`{account.alias}` {region}"
    if not account.retire:
        raise PreflightError(f"Retiring images is not enabled for {where}: amibot's role there has no permission to {mode} images.",
                             fix=f"Its owners add `retire = true` to `[accounts.{account.alias}]` and deploy the policy `amibot iam-policy` prints.")
    facts = ctx.preflight_image(account, region, image_id)
    if facts.owner_id != account.id:
        raise PreflightError(f"{image_id} is owned by account {facts.owner_id}, not by `{account.alias}` ({account.id}): only the owner can {mode} it.",
                             fix="Name the owning account after `from`.")
    if account.retire_tag and facts.tags.get(account.retire_tag[0]) != account.retire_tag[1]:
        key, value = account.retire_tag
        raise PreflightError(f"{image_id} in {where} is not marked retirable: it lacks the tag `{key}={value}` (`retire_tag` of `{account.alias}`).",
                             fix=f"Tag it first: `/ami tag {image_id} from {account.alias}:{region} {key}={value}`.")
    if mode == "disable" and facts.state == "disabled":
        raise PreflightError(f"{image_id} in {where} is already disabled.", fix="Nothing to do; `deregister` removes it for good.")
    ec2 = ctx.sessions.client("ec2", account.id, region, f"preflight-{ctx.uid}")
    image = preflight_read(f"Could not read {image_id} in {where}", lambda: find_image(ec2, image_id)) or {}
    found = preflight_read(f"Could not read what uses {image_id} in {where}",
                           lambda: retire_facts(ctx.sessions, account.id, region, {**image, "ImageId": image_id}, f"preflight-{ctx.uid}"))
    if mode == "deregister" and found.protection_blocks():
        cooldown = found.protection.startswith("disabled")
        raise PreflightError(
            f"{image_id} in {where} has deregistration protection ({found.protection}): AWS refuses to deregister it"
            + (" until its 24-hour cooldown ends." if cooldown else "."),
            fix=("Wait until the time shown (the protection was enabled with a cooldown), then ask again." if cooldown else
                 f"Its owners turn it off first: `aws ec2 disable-image-deregistration-protection --region {region} --image-id {image_id}` "
                 "(with a cooldown, deregistering waits 24 hours more)."))
    users = found.launch_templates + found.autoscaling_groups
    if mode in ("disable", "deregister") and users:
        raise PreflightError(
            f"{image_id} in {where} is still in use: "
            + "; ".join(([f"launch template default version: {', '.join(found.launch_templates)}"] if found.launch_templates else [])
                        + ([f"Auto Scaling groups: {', '.join(found.autoscaling_groups)}"] if found.autoscaling_groups else []))
            + f". After `{mode}` they could not launch instances.",
            fix="Point them at the image that replaces it (`/ami distribute … update-lt <lt-id>@<acct> default`), then ask again; or `deprecate` it for now.")
    lines = [f"{image_id} `{facts.name}` is `{facts.state}` in {where} (found by {target.found_by})"]
    if users:
        lines.append("still used by " + "; ".join(users) + " (deprecating leaves it launchable by id)")
    if found.running_instances:
        lines.append(f"warning: {found.running_instances} instance(s) launched from it still exist; they keep running")
    if mode == "disable":
        losing = _who(ctx, facts.launch_permissions)
        lines.append("loses launch permission: " + (", ".join(losing) if losing else "nobody (it is not shared)"))
    return facts, found, lines


def _recycle_bin(found: RetireFacts) -> str:
    if found.recycle_bin:
        return "restorable from the Recycle Bin (" + "; ".join(found.recycle_bin) + ")"
    if found.recycle_bin_unknown:
        return "Recycle Bin rules could not be read: count on it being gone for good"
    return "no Recycle Bin rule keeps it: gone for good"


def _step(target: Target, mode: str, deprecate_at: str | None, facts: Any, found: RetireFacts, ctx: PlanningContext) -> PlannedStep:
    account, region, image_id = target.account, target.region, target.image_id
    if mode == "deprecate":
        return DeprecateImage.plan(account, region, DeprecateImage.Params(image_id=image_id, deprecate_at=deprecate_at), current=facts.deprecation_time)
    if mode == "disable":
        return DisableImage.plan(account, region, DisableImage.Params(image_id=image_id), losing=_who(ctx, facts.launch_permissions))
    return DeregisterImage.plan(account, region, DeregisterImage.Params(image_id=image_id, delete_snapshots=True),
                                kept=found.shared_snapshots, recycle_bin=_recycle_bin(found))


def prepare_retire(ctx: PlanningContext, command: RetireCommand) -> Prepared:
    """Preflight ``/ami retire`` and plan it: one step per AMI (a group per AMI with ``with-copies``)."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    deprecate_at = _deprecate_at(command.date)
    original = Target(source, region, command.image_id, "the AMI named")
    targets = [original] + (_copies(ctx, source, region, command.image_id) if command.with_copies else [])
    approvers = list(dict.fromkeys(t.account.alias for t in targets))
    ctx.check_approvers(approvers)
    steps: list[PlannedStep] = []
    checked: list[str] = []
    first_facts = None
    for target in targets:
        facts, found, lines = _check(ctx, target, command.mode)
        first_facts = first_facts or facts
        step = _step(target, command.mode, deprecate_at, facts, found, ctx)
        key = unit_key(target.account.alias, target.region)
        if command.with_copies:
            step.params["unit"] = key
        if command.mode == "deregister":
            lines.append(_recycle_bin(found))
            if found.shared_snapshots:
                lines.append("snapshots kept (another AMI uses them): " + ", ".join(f"{s} ({', '.join(a)})" for s, a in found.shared_snapshots.items()))
        steps.append(step)
        checked.append(f"`{key}`: " + "; ".join(lines))
    if command.with_copies and len(targets) == 1:
        checked.append("No copies made by amibot were found (requests in the store, `amibot:source-ami` tags).")
    when = f"at {deprecate_at}" if deprecate_at else "now (when approved)"
    after = {
        "deprecate": [f"Deprecated {when}: still launchable by id, hidden from listings. Undo: `aws ec2 disable-image-deprecation`."],
        "disable": ["Disabled: no new launches; AWS removes every launch permission (`aws ec2 enable-image` re-enables it, not the shares)."],
        "deregister": ["Deregistered with its snapshots (a snapshot another AMI uses is kept). This cannot be undone, except from the Recycle Bin."],
    }[command.mode]
    if command.with_copies:
        after.append("Each AMI is its own group: a failure in one does not stop the others; the final message lists each.")
    return Prepared(
        kind="retire",
        params={"image_id": command.image_id, "source": source.alias, "region": region, "mode": command.mode,
                "deprecate_at": deprecate_at, "with_copies": command.with_copies,
                "targets": [unit_key(t.account.alias, t.region) for t in targets]},
        checked=checked,
        approver_accounts=approvers,
        steps=steps,
        after=after,
        extra_facts={"image": facts_for_message(first_facts)} if first_facts else {},
    )
