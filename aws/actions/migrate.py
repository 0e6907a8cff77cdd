"""Migrating an instance to another Availability Zone: an image of the instance, then
a new instance from it in a subnet of the target zone (same VPC, type, security
groups, key pair, instance profile and tags).

The source instance is never stopped or terminated by amibot. On failure, an image
that is still unfinished is deregistered (with its snapshots); a finished image and a
launched instance are kept, because a person may need them (design.md §3).

The read-only preflight of a migration (``inspect_instance``, ``describe_subnet``,
``subnets_in_zone``) is in ``aws.actions.instance_facts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.actions.base import Action, ActionParams, Kept, StepContext, StepWaiting, image_of, register
from aws.actions.disposable import DISPOSABLE, DISPOSABLE_TAG
from aws.actions.images import OWNER_PROOF_TAG, discard_unfinished_image, look_up_image, proves_ownership
from aws.actions.visibility import until_visible
from aws.actions.instance_settings import SETTINGS_PREFLIGHT_PERMISSIONS, InstanceSettings
from aws.errors import MISSING, AwsFailure, read_outcome

# AWS allows 50 user tags per resource; keys starting with "aws:" are AWS's own
# (e.g. aws:autoscaling:groupName) and are refused by CreateTags/TagSpecifications.
MAX_TAGS = 50

# What the migrate preflight reads in the instance's account. aws.iam builds the
# member policy from the actions' declarations, so the actions below declare these too.
MIGRATE_PREFLIGHT_PERMISSIONS = (
    "iam:GetInstanceProfile",  # the roles the launch passes (instance_facts.instance_profile_roles)
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
    """Tags that can be copied: AWS refuses keys with the reserved ``aws:`` prefix;
    ``amibot:disposable`` is never carried to what amibot delivers."""
    return {k: v for k, v in tags.items() if not k.lower().startswith("aws:") and k != DISPOSABLE_TAG}


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
        if read_outcome(error) == MISSING:  # InvalidInstanceID.NotFound (aws.errors decides)
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

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The instance, the image's name and description, whether to reboot, and its tags."""

        instance_id: str
        image_name: str
        description: str = ""
        no_reboot: bool = False
        tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def describe(cls, params, *, account, region, instance_label: str, reboot: str, tags_text: str):
        """``instance_label``, ``tags_text``: the instance's name and tags as shown
        (escaped by the caller); ``reboot``: what NoReboot means for this instance."""
        return (
            f"CreateImage from {params.instance_id}{instance_label}: Name=`{params.image_name}`, {reboot}; tags on the image and its snapshots: "
            f"{tags_text} + `amibot:request`={{request-label}}, `amibot:source-instance`={params.instance_id}"
        )

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        name = params.image_name
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
                params.tags,
                # disposable until the migration is reported (aws.actions.disposable)
                {"amibot:request": _request_label(ctx), "amibot:source-instance": params.instance_id, OWNER_PROOF_TAG: token, **DISPOSABLE},
            )
        )
        created_at = ctx.clock()
        try:
            image_id = ec2.create_image(
                InstanceId=params.instance_id,
                Name=name,
                Description=params.description[:255],
                # AWS reboots the instance by default so the file systems are consistent;
                # NoReboot keeps it up at the risk of an inconsistent image.
                NoReboot=bool(params.no_reboot),
                TagSpecifications=[{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
            )["ImageId"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidAMIName.Duplicate":
                raise
            # Two attempts raced: the other one's image is this request's image. AWS
            # knows it exists; DescribeImages may not show it yet (eventual consistency).
            found = until_visible(ctx, ctx.clock(), lambda: _images_named(ec2, name) or None, f"image `{name}`")
            if not found:
                raise
            return self._reuse(found, name, token, account_id, region)
        ctx.checkpoint({"image_id": image_id, "image_name": name, "created_at": created_at})
        return {"image_id": image_id, "image_name": name, "created": True, "rebooted": not params.no_reboot, "created_at": created_at}

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

    def revert(self, ctx, account_id, region, params, result):
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

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The image (``image_id``, or made by step ``image_from_step``) and the new instance's settings."""

        image_id: str | None = None
        image_from_step: int | None = None
        subnet_id: str
        availability_zone: str | None = None
        vpc_id: str | None = None
        instance_type: str
        security_group_ids: list[str]
        key_name: str | None = None
        iam_instance_profile_arn: str | None = None
        tags: dict[str, str] = field(default_factory=dict)
        source_instance_id: str
        client_token: str
        poll_seconds: float = 30
        settings: dict[str, Any] | None = None

    @classmethod
    def describe(cls, params, *, account, region, groups: str, tags_text: str, carried: str):
        """``groups``, ``tags_text``: the security groups and tags as shown (escaped by
        the caller); ``carried``: the instance settings carried over."""
        return (
            f"RunInstances from that image in {params.subnet_id} ({params.availability_zone}, {params.vpc_id}): InstanceType={params.instance_type}, "
            f"SecurityGroupIds={groups or 'none'}, KeyName={params.key_name or 'none'}, IamInstanceProfile={params.iam_instance_profile_arn or 'none'}, "
            f"ClientToken=`{params.client_token}`; tags {tags_text} + `amibot:migrated-from`={params.source_instance_id}, `amibot:request`={{request-label}}; "
            f"carried: {carried}"
        )

    def run_parameters(self, ctx: StepContext, params: "LaunchMigratedInstance.Params | dict[str, Any]") -> dict[str, Any]:
        """The exact RunInstances parameters (also what the plan shows)."""
        params = self.typed(params)
        tags = with_provenance(
            params.tags,
            {"amibot:migrated-from": params.source_instance_id, "amibot:request": _request_label(ctx)},
        )
        call: dict[str, Any] = {
            "ImageId": image_of(params, ctx.results),
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": params.instance_type,
            # A subnet fixes the zone and the VPC; the security groups must be of that VPC.
            "SubnetId": params.subnet_id,
            "SecurityGroupIds": list(params.security_group_ids),
            "ClientToken": params.client_token,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": _tag_list(tags)}],
        }
        settings = InstanceSettings.from_params(params.settings)
        call.update(settings.run_parameters())
        if settings.volume_tags:
            call["TagSpecifications"].append({"ResourceType": "volume", "Tags": _tag_list(settings.volume_tags)})
        if params.key_name:
            call["KeyName"] = params.key_name
        if params.iam_instance_profile_arn:
            call["IamInstanceProfile"] = {"Arn": params.iam_instance_profile_arn}
        return call

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        instance_id = ctx.previous.get("instance_id")
        # An instance recorded without the time (an older checkpoint) counts as new.
        launched_at = ctx.previous.get("launched_at") or ctx.clock()
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
            poll_seconds=float(params.poll_seconds),
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
            "migrated_from": params.source_instance_id,
            "launched_at": launched_at,
        }
        if state == "running":
            # Instance id and IP change with a migration: the thread reply says them
            # (the final reply too, see bot.verbs.migrate.plan).
            said = (
                f"New instance `{instance_id}`, private IP `{found['private_ip']}` in {found['availability_zone']}, "
                f"from image `{found['image_id']}` (kept); the source `{params.source_instance_id}` is left as it was."
            )
            return {**found, "summary": said}
        if state == "pending":
            raise StepWaiting(f"{instance_id} pending", retry_after=float(params.poll_seconds), result=found)
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

    def revert(self, ctx, account_id, region, params, result):
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
