"""Migrate an instance to another Availability Zone: the preflight rules, the subnet
choice and the exact plan (CreateImage → wait until available → RunInstances)."""

from __future__ import annotations

import fnmatch
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from aws.actions.instance_facts import InstanceFacts, SubnetFacts, describe_subnet, inspect_instance, instance_profile_roles, subnets_in_zone
from aws.actions.migrate import CreateImageFromInstance, LaunchMigratedInstance, client_token, image_name, user_tags
from aws.actions.disposable import DeliverImage
from aws.actions.images import WaitImageAvailable
from aws.errors import is_aws_error, translate
from aws.iam import configured_pass_roles, pass_role_resources
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.slacktext import escape
from bot.verbs.common import PlanningContext, Prepared, approver_accounts, preflight_read
from bot.verbs.common import key_label as _key_label
from bot.requests import PlannedStep, Request

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.migrate.command import MigrateCommand

MIGRATABLE_STATES = ("running", "stopped")
T = TypeVar("T")


def choose_subnet(
    facts: InstanceFacts, zone: str, candidates: list[SubnetFacts], named_id: str | None = None, named: SubnetFacts | None = None,
    *, where: str = "",
) -> tuple[SubnetFacts, str]:
    """The subnet of the target zone to launch in, and why it was chosen.

    ``subnet <id>`` wins when it is in the instance's VPC and the target zone; else
    the VPC's only subnet in that zone; else the one with most free addresses.
    Anything else is refused in plain words, saying how to fix it."""
    if named_id:
        if named is None:
            raise PreflightError(
                f"Subnet `{named_id}` does not exist in {where}.",
                fix=f"Name a subnet of {facts.vpc_id} in {zone}, or leave out `subnet` and amibot picks one.",
            )
        if named.vpc_id != facts.vpc_id:
            raise PreflightError(
                f"Subnet `{named_id}` is in {named.vpc_id}, not in the instance's VPC {facts.vpc_id}. "
                "A migrated instance stays in its VPC (its security groups belong to that VPC).",
                fix=f"Name a subnet of {facts.vpc_id} in {zone}, or leave out `subnet` and amibot picks one.",
            )
        if named.availability_zone != zone:
            raise PreflightError(
                f"Subnet `{named_id}` is in {named.availability_zone}, not in {zone}.",
                fix=f"Name a subnet of {facts.vpc_id} in {zone}, or leave out `subnet` and amibot picks one.",
            )
        chosen, why = named, "named with `subnet`"
    else:
        if not candidates:
            cidr = f" (VPC CIDR {facts.vpc_cidr})" if facts.vpc_cidr else ""
            raise PreflightError(
                f"The instance's VPC {facts.vpc_id} has no subnet in {zone}.",
                fix=(
                    f"Create one, e.g. `aws ec2 create-subnet --vpc-id {facts.vpc_id} --availability-zone {zone} "
                    f"--cidr-block <a free block of the VPC{cidr}>`, give it the route table the app needs, then ask again "
                    "(or pick another zone)."
                ),
            )
        ranked = sorted(candidates, key=lambda s: (-s.free_addresses, s.subnet_id))
        chosen = ranked[0]
        if len(ranked) == 1:
            why = f"the only subnet of {facts.vpc_id} in {zone}"
        else:
            others = ", ".join(f"{s.subnet_id} ({s.free_addresses} free)" for s in ranked[1:])
            why = f"most free addresses of the {len(ranked)} subnets of {facts.vpc_id} in {zone} (others: {others})"
    if chosen.free_addresses <= 0:
        raise PreflightError(
            f"Subnet `{chosen.subnet_id}` in {zone} has no free IP address left.",
            fix=f"Free addresses there, or name another subnet of {facts.vpc_id} in {zone} with `subnet <id>`.",
        )
    return chosen, why


def check_migratable(facts: InstanceFacts, zone: str, where: str) -> None:
    """Refuse, before anyone is asked, what AWS would refuse or what makes no sense."""
    if facts.state not in MIGRATABLE_STATES:
        raise PreflightError(
            f"{facts.instance_id} is `{facts.state}` in {where}; only a running or stopped instance can be migrated.",
            fix="Wait until it is running or stopped, then ask again." if facts.state in ("pending", "stopping") else "Check the instance id.",
        )
    if facts.availability_zone == zone:
        raise PreflightError(
            f"{facts.instance_id} is already in {zone}.",
            fix="Name another Availability Zone after `to`.",
        )
    if not facts.vpc_id:
        raise PreflightError(f"{facts.instance_id} is not in a VPC.", fix="amibot migrates instances within their VPC only.")
    if facts.root_device_type != "ebs":
        raise PreflightError(
            f"{facts.instance_id} has an instance-store root device; CreateImage works only for EBS-backed instances.",
            fix="Move it by hand (bundle an instance-store AMI), or rebuild it from an EBS-backed AMI.",
        )
    for key in facts.keys:
        if key.state != "Enabled":
            raise PreflightError(
                f"A volume of {facts.instance_id} is encrypted with {_key_label(key)}, which is `{key.state}`: "
                "neither the image nor the new instance could be made.",
                fix="Enable the key (or cancel its deletion), then ask again.",
            )


def check_passable(roles: list[str], allowed: list[str], source: AccountConfig) -> None:
    """Refuse, before anyone is asked, an instance whose role amibot's role may not
    pass to EC2 (iam:PassRole in the member policy: the configured ``pass_roles``)."""
    for role in roles:
        if not any(fnmatch.fnmatchcase(role, pattern) for pattern in allowed):
            raise PreflightError(
                f"The instance runs with the role `{role}`, which amibot's role may not pass to a new instance "
                f"(iam:PassRole only on {', '.join(f'`{a}`' for a in allowed)}).",
                fix=f"Add it to `accounts.{source.alias}.pass_roles`, apply the new member policy (`amibot iam-policy`), then ask again.",
            )


def migrate_steps(
    *, request_uid: str, facts: InstanceFacts, source: AccountConfig, region: str, zone: str, subnet: SubnetFacts,
    no_reboot: bool, poll_seconds: int,
) -> list[PlannedStep]:
    """The exact calls: CreateImage, wait until available, RunInstances."""
    tags = user_tags(facts.tags)
    name = image_name(facts.instance_id, request_uid)
    token = client_token(request_uid)
    label = f" ({escape(facts.name)})" if facts.name else ""
    if facts.state == "stopped":
        reboot = "NoReboot=" + str(no_reboot).lower() + " (the instance is stopped: no reboot happens)"
    elif no_reboot:
        reboot = "NoReboot=true (no reboot: the instance keeps running; files being written may be inconsistent in the image)"
    else:
        reboot = "NoReboot=false (*AWS reboots the instance* so its file systems are consistent: a short outage)"
    groups = ", ".join(f"{g['GroupId']} ({escape(g['GroupName'])})" if g.get("GroupName") else g["GroupId"] for g in facts.security_groups)
    profile = facts.iam_instance_profile_arn
    image = CreateImageFromInstance.Params(
        instance_id=facts.instance_id, image_name=name, description=f"amibot migrate {facts.instance_id} from {facts.availability_zone} to {zone}",
        no_reboot=no_reboot, tags=tags,
    )
    launch = LaunchMigratedInstance.Params(
        image_from_step=1, subnet_id=subnet.subnet_id, availability_zone=zone, vpc_id=facts.vpc_id, instance_type=facts.instance_type,
        security_group_ids=[g["GroupId"] for g in facts.security_groups], key_name=facts.key_name, iam_instance_profile_arn=profile,
        tags=tags, source_instance_id=facts.instance_id, client_token=token, poll_seconds=poll_seconds, settings=facts.settings.to_params(),
    )
    return [
        CreateImageFromInstance.plan(source, region, image, instance_label=label, reboot=reboot, tags_text=_tags_text(tags)),
        WaitImageAvailable.plan(source, region, WaitImageAvailable.Params(image_from_step=1, poll_seconds=poll_seconds)),
        LaunchMigratedInstance.plan(source, region, launch, groups=groups, tags_text=_tags_text(tags), carried=facts.settings.carried_text()),
        # The migration is reported: its image is kept, no longer something amibot may delete.
        DeliverImage.plan(source, region, DeliverImage.Params(image_from_step=1), of="migration image"),
    ]


def checked_lines(facts: InstanceFacts, source: AccountConfig, region: str, zone: str, subnet: SubnetFacts, why: str) -> list[str]:
    """What the preflight checked, in the words the approver reads."""
    label = f" `{escape(facts.name)}`" if facts.name else ""
    lines = [
        f"{facts.instance_id}{label} is `{facts.state}` in {facts.availability_zone} ({facts.vpc_id}, {facts.subnet_id}, "
        f"private IP {facts.private_ip or 'none'}), in `{source.alias}` ({source.id}) {region}",
        f"Type {facts.instance_type}; security groups "
        + (", ".join(g["GroupId"] for g in facts.security_groups) or "none")
        + f"; key pair {facts.key_name or 'none'}; instance profile {facts.iam_instance_profile_arn or 'none'}",
        f"Carried to the new instance: {facts.settings.carried_text()}",
        f"Target subnet {subnet.subnet_id} ({subnet.cidr}, {subnet.free_addresses} free addresses) in {zone}: {why}",
    ]
    for key in facts.keys:
        devices = ", ".join(v.device or v.volume_id for v in facts.volumes if v.kms_key_arn == key.arn)
        if key.manager == "AWS":
            lines.append(
                f"Volumes {devices} are encrypted with the AWS-managed key {_key_label(key)}: fine within this account "
                "(the image could not be shared with another account later)"
            )
        else:
            lines.append(
                f"Volumes {devices} are encrypted with the customer-managed key {_key_label(key)}, {key.state}: "
                "the image's snapshots and the new instance's volumes use this same key (same account: no grant needed)"
            )
    plain = [v.device or v.volume_id for v in facts.volumes if not v.encrypted]
    if plain:
        lines.append(f"Unencrypted volumes: {', '.join(plain)} (they stay unencrypted)")
    group = facts.tags.get("aws:autoscaling:groupName")
    if group:
        lines.append(f"*The instance belongs to Auto Scaling group `{escape(group)}`*: the new instance will not be in the group, and the group may replace the source")
    dropped = len(user_tags(facts.tags)) + 2 - 50
    if dropped > 0:
        lines.append(f"The instance has {len(user_tags(facts.tags))} tags; AWS allows 50, so some of amibot's provenance tags are left out")
    return lines


def after_lines(facts: InstanceFacts, zone: str, subnet: SubnetFacts) -> list[str]:
    """What the approver must know beyond the calls."""
    old_ip = f" and private IP {facts.private_ip}" if facts.private_ip else ""
    started = ["The source is stopped, but the new instance starts running (RunInstances always starts it)."] if facts.state == "stopped" else []
    return started + [
        f"*The instance id and private IP change*: the new instance gets a new id and an address of {subnet.cidr}; "
        f"update whatever points at {facts.instance_id}{old_ip} (DNS, load-balancer targets, allow-lists).",
        f"*The source {facts.instance_id} is left {facts.state}*: amibot never stops or terminates it; do that yourself once the new one serves.",
        "Not carried over: " + ", ".join(
            ["user data", "Elastic IPs and public IPs", "extra network interfaces", "placement group", "load-balancer registrations"]
            + facts.settings.not_carried()
        ) + ".",
        "The image stays afterwards (a backup of the source); deregister it when no longer needed. If a step fails, an unfinished "
        "image is deregistered, but a finished image and a launched instance are kept and named in the thread.",
    ]


def prepare_migrate(ctx: PlanningContext, command: MigrateCommand) -> Prepared:
    """Preflight a migration and plan it."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    zone = command.availability_zone
    approvers = approver_accounts("migrate", source)
    ctx.check_approvers(approvers)
    where = f"`{source.alias}` ({source.id}) {region}"
    if not source.migrate:
        raise PreflightError(f"Migrating instances is not enabled for `{source.alias}`: amibot's role there has no permission to image an instance or pass its role.",
                             fix=f"Its owners remove `migrate = false` from `[accounts.{source.alias}]` and attach the policy amibot-migrate that `amibot iam-policy` prints.")
    tag = f"preflight-{ctx.uid}"
    facts = _read(lambda: inspect_instance(ctx.sessions, source.id, region, command.instance_id, tag), command.instance_id, where)
    check_migratable(facts, zone, where)
    if facts.iam_instance_profile_arn:
        profile = facts.iam_instance_profile_arn
        roles = _read(lambda: instance_profile_roles(ctx.sessions, source.id, region, profile, tag), f"instance profile {profile}", where)
        check_passable(roles, pass_role_resources(configured_pass_roles(a for a in ctx.config.accounts.values() if a.migrate)), source)
    named = None
    candidates: list[SubnetFacts] = []
    if command.subnet_id:
        named = _read(lambda: describe_subnet(ctx.sessions, source.id, region, command.subnet_id, tag), command.subnet_id, where)
    else:
        candidates = _read(lambda: subnets_in_zone(ctx.sessions, source.id, region, facts.vpc_id, zone, tag), facts.vpc_id or "", where)
    subnet, why = choose_subnet(facts, zone, candidates, command.subnet_id, named, where=where)
    steps = migrate_steps(
        request_uid=ctx.uid, facts=facts, source=source, region=region, zone=zone, subnet=subnet,
        no_reboot=command.no_reboot, poll_seconds=ctx.config.bot.poll_interval_seconds,
    )
    return Prepared(
        kind="migrate",
        params={
            "instance_id": command.instance_id, "source": source.alias, "region": region, "availability_zone": zone,
            "subnet_id": subnet.subnet_id, "no_reboot": command.no_reboot,
        },
        checked=checked_lines(facts, source, region, zone, subnet, why),
        approver_accounts=approvers,
        steps=steps,
        after=after_lines(facts, zone, subnet),
        extra_facts={"instance": asdict(facts), "subnet": asdict(subnet), "subnet_reason": why},
    )


def report_new_instance(request: Request, store: Any, notifier: Any) -> list[str]:
    """Lines for the final reply: the new instance id and private IP (both change
    with a migration, so the requester must see them without opening the thread)."""
    return [s.result["summary"] for s in request.steps if s.result.get("migrated_from") and s.result.get("summary")]


def _read(call: Callable[[], T], what: str, where: str) -> T:
    """Run a preflight read; AWS errors become a PreflightError in plain words (an
    unknown instance id gets its own)."""
    try:
        return preflight_read(f"Could not read {what} in {where}", call)
    except PreflightError as error:
        if is_aws_error(error.__cause__) and translate(error.__cause__).code.startswith("InvalidInstanceID"):
            raise PreflightError(
                f"{what} does not exist in {where}.",
                fix="Check the instance id, the account and the region (`from prod:eu-west-1`).",
            ) from error.__cause__
        raise


def _tags_text(tags: dict[str, str], limit: int = 1200) -> str:
    text = ", ".join(f"`{escape(k)}`={escape(v)}" for k, v in tags.items()) or "no tags of its own"
    if len(text) > limit:
        # Slack sections hold 3,000 characters; the step keeps every tag.
        text = text[:limit].rsplit(", ", 1)[0] + f", … ({len(tags)} tags in all)"
    return text
