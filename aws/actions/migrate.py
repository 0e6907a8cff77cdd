"""Migrating an instance to another Availability Zone: an image of the instance, then
a new instance from it in a subnet of the target zone (same VPC, type, security
groups, key pair, instance profile and tags).

The source instance is never stopped or terminated by amibot. On failure, an image
that is still unfinished is deregistered (with its snapshots); a finished image and a
launched instance are kept, because a person may need them (design.md §3).

Also the read-only preflight of a migration (``inspect_instance``, ``describe_subnet``,
``subnets_in_zone``): every AWS call lives under ``aws/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.actions import Action, Kept, StepContext, StepWaiting, register
from aws.actions.images import OWNER_PROOF_TAG, discard_unfinished_image, find_image, look_up_image, proves_ownership
from aws.actions.visibility import until_visible
from aws.actions.inspect import KeyFacts
from aws.actions.instance_settings import SETTINGS_PREFLIGHT_PERMISSIONS, InstanceSettings, read_instance_settings
from aws.errors import AwsFailure
from aws.sessions import AwsSessions

# AWS allows 50 user tags per resource; keys starting with "aws:" are AWS's own
# (e.g. aws:autoscaling:groupName) and are refused by CreateTags/TagSpecifications.
MAX_TAGS = 50

# What the migrate preflight reads in the instance's account. aws.iam builds the
# member policy from the actions' declarations, so the actions below declare these too.
MIGRATE_PREFLIGHT_PERMISSIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "kms:DescribeKey",
    "kms:ListAliases",
    *SETTINGS_PREFLIGHT_PERMISSIONS,
)


def image_name(instance_id: str, request_uid: str) -> str:
    """The deterministic name of a migration's image. AMI names are unique per account
    and region and CreateImage has no ClientToken, so after a crash the step finds
    the image it already made by this name instead of making a second one."""
    return f"amibot-migrate-{instance_id}-{request_uid}"


def client_token(request_uid: str) -> str:
    """The RunInstances ClientToken of a migration (at most 64 ASCII characters): a
    retry with it returns the instance already launched instead of a second one."""
    return f"amibot-migrate-{request_uid}"[:64]


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags that can be copied: AWS refuses keys with the reserved ``aws:`` prefix."""
    return {k: v for k, v in tags.items() if not k.lower().startswith("aws:")}


def with_provenance(tags: dict[str, str], provenance: dict[str, str]) -> dict[str, str]:
    """The instance's own tags plus amibot's provenance tags, as room allows (50 per
    resource; the instance's own tags come first, they are what "same tags" means)."""
    merged = dict(user_tags(tags))
    for key, value in provenance.items():
        if key in merged or len(merged) < MAX_TAGS:
            merged[key] = value
    return merged


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _request_label(ctx: StepContext) -> str:
    # R-17-<uid>: the id people read, and the random id that stays unique when a
    # database is replaced (the same form as the AssumeRole session names).
    return f"{ctx.request_id}-{ctx.request_uid}" if ctx.request_id else ctx.request_uid


def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance, or None when AWS answers InvalidInstanceID.NotFound."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
            return None
        raise
    return next((i for r in reservations for i in r["Instances"]), None)


def _images_named(ec2: Any, name: str) -> list[dict[str, Any]]:
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    # A deregistered image can linger in DescribeImages for a while; it is not ours to reuse.
    return [i for i in images if i.get("State") != "deregistered"]


@register
class CreateImageFromInstance(Action):
    """``CreateImage`` from the instance to migrate, tagged on the image and its
    snapshots with the instance's tags and amibot's provenance.

    params: ``instance_id``, ``image_name`` (deterministic, see ``image_name``),
    ``description``, ``no_reboot``, ``tags`` (the instance's tags at planning time).
    Idempotent: an image recorded by an earlier attempt, or one with the name, is
    reused. Undo deregisters the image only while it is unfinished; a finished one is
    kept (``Kept``: reported as what remains)."""

    name = "ec2.create_image_from_instance"
    permissions = (
        "ec2:CreateImage",
        "ec2:CreateTags",  # TagSpecifications on CreateImage need it
        "ec2:DescribeImages",
        "ec2:DeregisterImage",
        "ec2:DeleteSnapshot",
        *MIGRATE_PREFLIGHT_PERMISSIONS,
    )

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        name = params["image_name"]
        recorded = ctx.previous.get("image_id")
        if recorded and until_visible(ctx, ctx.previous.get("created_at"), lambda: look_up_image(ec2, recorded), f"image {recorded}"):
            return {"image_id": recorded, "image_name": name, "created": False, "created_at": ctx.previous.get("created_at")}
        token = client_token(ctx.request_uid)
        found = _images_named(ec2, name)
        if found:
            # The process died after CreateImage answered and before the id was saved:
            # the image is reused only if its tag proves it is this request's.
            return self._reuse(found, name, token, account_id, region)
        tags = _tag_list(
            with_provenance(
                params.get("tags", {}),
                {"amibot:request": _request_label(ctx), "amibot:source-instance": params["instance_id"], OWNER_PROOF_TAG: token},
            )
        )
        created_at = time.time()
        try:
            image_id = ec2.create_image(
                InstanceId=params["instance_id"],
                Name=name,
                Description=params.get("description", "")[:255],
                # AWS reboots the instance by default so the file systems are consistent;
                # NoReboot keeps it up at the risk of an inconsistent image.
                NoReboot=bool(params.get("no_reboot")),
                TagSpecifications=[{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
            )["ImageId"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidAMIName.Duplicate":
                raise
            # Two attempts raced: the other one's image is this request's image. AWS
            # knows it exists; DescribeImages may not show it yet (eventual consistency).
            found = until_visible(ctx, time.time(), lambda: _images_named(ec2, name) or None, f"image `{name}`")
            if not found:
                raise
            return self._reuse(found, name, token, account_id, region)
        ctx.checkpoint({"image_id": image_id, "image_name": name, "created_at": created_at})
        return {"image_id": image_id, "image_name": name, "created": True, "rebooted": not params.get("no_reboot"), "created_at": created_at}

    @staticmethod
    def _reuse(found: list[dict[str, Any]], name: str, token: str, account_id: str, region: str) -> dict[str, Any]:
        mine = [i for i in found if proves_ownership(i, token)]
        if not mine:
            raise AwsFailure(
                "InvalidAMIName.Duplicate",
                f"An image named {name} already exists in {account_id} {region} ({found[0]['ImageId']}) and is not this request's.",
                cause="Another image has the name amibot chose for this migration.",
                fix="Rename or deregister that image, then ask again.",
            )
        return {"image_id": mine[0]["ImageId"], "image_name": name, "created": False}

    def undo(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = result.get("image_id")
        # An image created moments ago may not be visible yet; it is not gone.
        image = until_visible(
            ctx, result.get("created_at"), lambda: look_up_image(ec2, image_id), f"image {image_id}",
            wait_in_place=ctx.consistency_window_seconds,
        ) if image_id else None
        if not image:
            return None
        if not proves_ownership(image, client_token(ctx.request_uid)) and not result.get("created"):
            raise Kept(f"image {image_id} in {account_id} {region} was left alone: nothing proves it is this request's")
        # design.md: undo never destroys something a user may need; a finished
        # image is a full backup of the source instance.
        return discard_unfinished_image(ec2, image, "image", f"{account_id} {region}")


@register
class LaunchMigratedInstance(Action):
    """``RunInstances`` from the migration's image in a subnet of the target zone with
    the source's type, security groups, key pair, instance profile and tags (plus
    ``amibot:migrated-from``), then wait until it runs.

    params: ``image_from_step`` (seq of the step whose result holds ``image_id``) or
    ``image_id``; ``subnet_id``, ``availability_zone``, ``instance_type``,
    ``security_group_ids``, ``key_name``, ``iam_instance_profile_arn``, ``tags``,
    ``source_instance_id``, ``client_token``, ``poll_seconds``.
    Idempotent through ``ClientToken``. Result: ``instance_id``, ``private_ip``, and a
    ``summary`` sentence naming them for the thread reply.
    Undo keeps the instance (``Kept``: a launched instance is never destroyed by undo)."""

    name = "ec2.launch_migrated_instance"
    permissions = (
        "ec2:RunInstances",
        "ec2:CreateTags",  # TagSpecifications on RunInstances need it
        "ec2:DescribeInstances",
        "iam:PassRole",  # launching with an instance profile passes its role
        # EBS creates the new volumes from CMK-encrypted snapshots with the caller's
        # KMS permissions (kms:ViaService ec2); without them the instance terminates
        # at once with Client.InternalError.
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        *MIGRATE_PREFLIGHT_PERMISSIONS,
    )

    def image_id(self, ctx: StepContext, params: dict[str, Any]) -> str:
        if params.get("image_id"):
            return params["image_id"]
        return ctx.results[int(params["image_from_step"])]["image_id"]

    def run_parameters(self, ctx: StepContext, params: dict[str, Any]) -> dict[str, Any]:
        """The exact RunInstances parameters (also what the plan shows)."""
        tags = with_provenance(
            params.get("tags", {}),
            {"amibot:migrated-from": params["source_instance_id"], "amibot:request": _request_label(ctx)},
        )
        call: dict[str, Any] = {
            "ImageId": self.image_id(ctx, params),
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": params["instance_type"],
            # A subnet fixes the zone and the VPC; the security groups must be of that VPC.
            "SubnetId": params["subnet_id"],
            "SecurityGroupIds": list(params["security_group_ids"]),
            "ClientToken": params["client_token"],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": _tag_list(tags)}],
        }
        settings = InstanceSettings.from_params(params.get("settings"))
        call.update(settings.run_parameters())
        if settings.volume_tags:
            call["TagSpecifications"].append({"ResourceType": "volume", "Tags": _tag_list(settings.volume_tags)})
        if params.get("key_name"):
            call["KeyName"] = params["key_name"]
        if params.get("iam_instance_profile_arn"):
            call["IamInstanceProfile"] = {"Arn": params["iam_instance_profile_arn"]}
        return call

    def execute(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        instance_id = ctx.previous.get("instance_id")
        # An instance recorded without the time (an older checkpoint) counts as new.
        launched_at = ctx.previous.get("launched_at") or time.time()
        private_ip = ctx.previous.get("private_ip")
        if not instance_id:
            # Same ClientToken, same parameters: AWS returns the instance of the first
            # call instead of launching another (a retry after a crash is safe).
            launched = ec2.run_instances(**self.run_parameters(ctx, params))["Instances"][0]
            instance_id, private_ip = launched["InstanceId"], launched.get("PrivateIpAddress")
            ctx.checkpoint({"instance_id": instance_id, "private_ip": private_ip, "launched_at": launched_at})
        # Right after RunInstances AWS may answer InvalidInstanceID.NotFound for a
        # while (eventual consistency): the instance exists, it is not visible yet.
        instance = until_visible(
            ctx, launched_at, lambda: describe_instance(ec2, instance_id), f"instance {instance_id}",
            result={"instance_id": instance_id, "private_ip": private_ip, "launched_at": launched_at},
            poll_seconds=float(params.get("poll_seconds", 30)),
        )
        if instance is None:
            raise AwsFailure(
                "InvalidInstanceID.NotFound",
                f"The instance ID '{instance_id}' does not exist",
                cause=f"The new instance {instance_id} is not visible in {account_id} {region}, long after RunInstances answered.",
                fix="Look for it in the EC2 console (tag amibot:migrated-from); ask again if it is not there.",
                operation="DescribeInstances",
            )
        state = instance["State"]["Name"]
        found = {
            "instance_id": instance_id,
            "private_ip": instance.get("PrivateIpAddress"),
            "availability_zone": instance.get("Placement", {}).get("AvailabilityZone"),
            "subnet_id": instance.get("SubnetId"),
            "image_id": instance.get("ImageId"),
            "state": state,
            "migrated_from": params["source_instance_id"],
            "launched_at": launched_at,
        }
        if state == "running":
            # Instance id and IP change with a migration: the thread reply says them
            # (the final reply too, see bot.operations.migrate).
            said = (
                f"New instance `{instance_id}`, private IP `{found['private_ip']}` in {found['availability_zone']}, "
                f"from image `{found['image_id']}` (kept); the source `{params['source_instance_id']}` is left as it was."
            )
            return {**found, "summary": said}
        if state == "pending":
            raise StepWaiting(f"{instance_id} pending", retry_after=float(params.get("poll_seconds", 30)), result=found)
        reason = instance.get("StateReason") or {}
        code = reason.get("Code") or "InstanceNotRunning"
        if "InternalError" in code or "InternalError" in (reason.get("Message") or ""):
            # AWS's answer when EBS cannot use the snapshots' KMS key: the instance is
            # created and terminated at once (RunInstances itself succeeds).
            raise AwsFailure(
                code,
                reason.get("Message") or "Client error on launch",
                cause=f"The new instance {instance_id} terminated at once: EBS could not use the KMS key of the image's snapshots "
                "(the key is disabled, or the bot's role lacks kms:CreateGrant/kms:Decrypt on it).",
                fix="Enable the key and attach the member-account policy from `amibot iam-policy`, then ask again.",
                operation="RunInstances",
            )
        raise AwsFailure(
            code,
            reason.get("Message") or f"{instance_id} is {state}",
            cause=f"The new instance {instance_id} is `{state}`, not running.",
            fix="Check the instance in the EC2 console (its state reason), then ask again.",
            operation="RunInstances",
        )

    def undo(self, ctx, account_id, region, params, result):
        instance_id = result.get("instance_id")
        if not instance_id:
            return None
        # design.md: undo never destroys something a user may need; a launched instance
        # may already serve traffic.
        where = f" ({result['private_ip']})" if result.get("private_ip") else ""
        raise Kept(
            f"the new instance {instance_id}{where} in {result.get('availability_zone') or params.get('availability_zone')} "
            "(kept: amibot never terminates an instance; terminate it yourself if it is not wanted)"
        )


# --------------------------------------------------------------------------- preflight


@dataclass
class VolumeFacts:
    """One EBS volume of the instance and its encryption."""

    device: str
    volume_id: str
    size: int
    encrypted: bool
    kms_key_arn: str | None


@dataclass
class SubnetFacts:
    """A subnet a migrated instance could be launched in."""

    subnet_id: str
    availability_zone: str
    vpc_id: str
    cidr: str
    free_addresses: int
    name: str = ""


@dataclass
class InstanceFacts:
    """What the migrate preflight saw of an instance, shown to the approver."""

    instance_id: str
    name: str
    state: str
    instance_type: str
    availability_zone: str
    vpc_id: str | None
    vpc_cidr: str | None
    subnet_id: str | None
    private_ip: str | None
    security_groups: list[dict[str, str]]  # [{"GroupId", "GroupName"}]
    key_name: str | None
    iam_instance_profile_arn: str | None
    tags: dict[str, str]
    root_device_type: str
    volumes: list[VolumeFacts] = field(default_factory=list)
    keys: list[KeyFacts] = field(default_factory=list)  # one per distinct volume key
    settings: InstanceSettings = field(default_factory=InstanceSettings)  # carried by RunInstances


def inspect_instance(sessions: AwsSessions, account_id: str, region: str, instance_id: str, tag: str) -> InstanceFacts:
    """Read the instance, its volumes and their keys, and its VPC, as its account sees them."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r.get("Instances", [])]
    if not instances:
        raise AwsFailure("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist", operation="DescribeInstances")
    instance = instances[0]
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("VolumeId")]
    volumes: list[VolumeFacts] = []
    keys: dict[str, KeyFacts] = {}
    described = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"] if volume_ids else []
    if volume_ids:
        for volume in described:
            device = next((a["Device"] for a in volume.get("Attachments", []) if a.get("InstanceId") == instance_id), "")
            key_id = volume.get("KmsKeyId") if volume.get("Encrypted") else None
            if key_id and key_id not in keys:
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
                aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=meta["KeyId"]).get("Aliases", [])]
                keys[key_id] = KeyFacts(arn=meta["Arn"], manager=meta["KeyManager"], state=meta["KeyState"], aliases=aliases)
            volumes.append(VolumeFacts(device, volume["VolumeId"], int(volume.get("Size", 0)), bool(volume.get("Encrypted")), keys[key_id].arn if key_id else None))
    vpc_id = instance.get("VpcId")
    vpc_cidr = None
    if vpc_id:
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        vpc_cidr = vpcs[0].get("CidrBlock") if vpcs else None
    profile = instance.get("IamInstanceProfile") or {}
    return InstanceFacts(
        instance_id=instance_id,
        name=tags.get("Name", ""),
        state=instance["State"]["Name"],
        instance_type=instance["InstanceType"],
        availability_zone=instance.get("Placement", {}).get("AvailabilityZone", ""),
        vpc_id=vpc_id,
        vpc_cidr=vpc_cidr,
        subnet_id=instance.get("SubnetId"),
        private_ip=instance.get("PrivateIpAddress"),
        security_groups=[{"GroupId": g["GroupId"], "GroupName": g.get("GroupName", "")} for g in instance.get("SecurityGroups", [])],
        key_name=instance.get("KeyName"),
        iam_instance_profile_arn=profile.get("Arn"),
        tags=tags,
        root_device_type=instance.get("RootDeviceType", "ebs"),
        volumes=volumes,
        keys=list(keys.values()),
        settings=read_instance_settings(ec2, instance, described),
    )


def _subnet_facts(subnet: dict[str, Any]) -> SubnetFacts:
    return SubnetFacts(
        subnet_id=subnet["SubnetId"],
        availability_zone=subnet["AvailabilityZone"],
        vpc_id=subnet["VpcId"],
        cidr=subnet.get("CidrBlock", ""),
        free_addresses=int(subnet.get("AvailableIpAddressCount", 0)),
        name=next((t["Value"] for t in subnet.get("Tags", []) if t["Key"] == "Name"), ""),
    )


def subnets_in_zone(sessions: AwsSessions, account_id: str, region: str, vpc_id: str, zone: str, tag: str) -> list[SubnetFacts]:
    """The VPC's subnets in one Availability Zone."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "availability-zone", "Values": [zone]}])["Subnets"]
    return [_subnet_facts(s) for s in subnets]


def describe_subnet(sessions: AwsSessions, account_id: str, region: str, subnet_id: str, tag: str) -> SubnetFacts | None:
    """One subnet by id, or None when the account has no such subnet in that region."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    try:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            return None
        raise
    return _subnet_facts(subnets[0]) if subnets else None
