"""Retiring a golden image (``/ami retire``): deprecate, disable or deregister it.

Three actions, each one AWS call on one AMI, and the read-only facts the preflight
needs (:func:`retire_facts`). AWS's rules, as the EC2 API Reference states them
(docs/aws-rules.md names each page):

* ``EnableImageDeprecation``: ``DeprecateAt`` may not be in the past; the AMI stays
  launchable by id, hidden from listings after the date. Undo: ``DisableImageDeprecation``.
* ``DisableImage``: only the owner; the AMI can no longer launch instances and AWS
  removes *every* launch permission (public, accounts, organisations, OUs). Undo:
  ``EnableImage`` (the permissions stay gone).
* ``DeregisterImage`` with ``DeleteAssociatedSnapshots``: a snapshot another AMI also
  uses is kept; an AMI with deregistration protection on (or in its 24-hour cooldown
  after ``DisableImageDeregistrationProtection``) is refused; an image matching a
  Recycle Bin retention rule stays restorable for the rule's period. No undo.

The permissions of these actions are Retire's own IAM statement
(``aws.iam.retire_statements``), generated only for accounts with ``retire = true``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from aws.actions.base import Action, ActionParams, register
from aws.sessions import AwsSessions

# What the preflight reads beyond the shared image inspection (in Retire's statement).
RETIRE_READ_PERMISSIONS = (
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "rbin:ListRules",
)
MODES = ("deprecate", "disable", "deregister")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?")


@dataclass(frozen=True)
class RetireFacts:
    """What stands in the way of retiring an AMI, or goes with it."""

    protection: str  # DescribeImages' DeregistrationProtection ("disabled" when absent)
    launch_templates: list[str] = field(default_factory=list)  # "lt-… (name) version N" whose default version uses it
    autoscaling_groups: list[str] = field(default_factory=list)  # "name (launch template lt-… / configuration …)"
    running_instances: int = 0
    shared_snapshots: dict[str, list[str]] = field(default_factory=dict)  # snapshot -> other AMIs using it
    recycle_bin: list[str] = field(default_factory=list)  # "rule <id>: N days" that will keep the image
    recycle_bin_unknown: str | None = None  # why the rules could not be read

    def protection_blocks(self) -> bool:
        """Whether AWS would refuse DeregisterImage now (protection on, or its cooldown running)."""
        return self.protection.startswith("enabled") or bool(_TIMESTAMP.search(self.protection))


def _tags_match(rule_tags: list[dict[str, str]], tags: dict[str, str]) -> bool:
    return not rule_tags or any(tags.get(t.get("ResourceTagKey")) == t.get("ResourceTagValue", tags.get(t.get("ResourceTagKey"))) for t in rule_tags)


def retire_facts(sessions: AwsSessions, account_id: str, region: str, image: dict[str, Any], tag: str) -> RetireFacts:
    """Read (never change) what the preflight of a retire needs for ``image`` (a
    DescribeImages entry) in ``account_id``/``region``."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    image_id = image["ImageId"]
    templates: list[str] = []
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        for lt in page.get("LaunchTemplates", []):
            versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Default"]).get("LaunchTemplateVersions", [])
            for v in versions:
                if v.get("LaunchTemplateData", {}).get("ImageId") == image_id:
                    templates.append(f"{lt['LaunchTemplateId']} (`{lt.get('LaunchTemplateName', '')}`) default version {v.get('VersionNumber')}")
    autoscaling = sessions.client("autoscaling", account_id, region, tag)
    groups: list[str] = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page.get("AutoScalingGroups", []):
            name = group["AutoScalingGroupName"]
            lc = group.get("LaunchConfigurationName")
            if lc:
                found = autoscaling.describe_launch_configurations(LaunchConfigurationNames=[lc]).get("LaunchConfigurations", [])
                if any(c.get("ImageId") == image_id for c in found):
                    groups.append(f"`{name}` (launch configuration `{lc}`)")
                continue
            spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
            if spec and spec.get("LaunchTemplateId"):
                version = spec.get("Version") or "$Default"
                found = ec2.describe_launch_template_versions(LaunchTemplateId=spec["LaunchTemplateId"], Versions=[version]).get("LaunchTemplateVersions", [])
                if any(v.get("LaunchTemplateData", {}).get("ImageId") == image_id for v in found):
                    groups.append(f"`{name}` (launch template {spec['LaunchTemplateId']} version {version})")
    running = 0
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "image-id", "Values": [image_id]},
                                                                            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
        running += sum(len(r.get("Instances", [])) for r in page.get("Reservations", []))
    snapshots = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    shared: dict[str, list[str]] = {}
    if snapshots:
        others = ec2.describe_images(Owners=["self"], IncludeDisabled=True).get("Images", [])  # every own AMI: which share a snapshot
        for other in others:
            if other["ImageId"] == image_id:
                continue
            for m in other.get("BlockDeviceMappings", []):
                snap = m.get("Ebs", {}).get("SnapshotId")
                if snap in snapshots:
                    shared.setdefault(snap, []).append(other["ImageId"])
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    kept: list[str] = []
    unknown = None
    try:
        rules = sessions.client("rbin", account_id, region, tag).list_rules(ResourceType="EC2_IMAGE").get("Rules", [])
        for rule in rules:
            if rule.get("LockState") == "pending_unlock" or not _tags_match(rule.get("ResourceTags", []), tags):
                continue
            period = rule.get("RetentionPeriod", {})
            kept.append(f"rule {rule.get('Identifier')}: {period.get('RetentionPeriodValue')} {str(period.get('RetentionPeriodUnit', 'DAYS')).lower()}")
    except Exception as error:  # the plan says it could not tell; it does not refuse for this
        unknown = f"{type(error).__name__}: {str(error)[:160]}"
    return RetireFacts(
        protection=image.get("DeregistrationProtection") or "disabled", launch_templates=templates, autoscaling_groups=groups,
        running_instances=running, shared_snapshots=shared, recycle_bin=kept, recycle_bin_unknown=unknown,
    )


@register
class DeprecateImage(Action):
    """``EnableImageDeprecation`` (now, or at a date); undo: ``DisableImageDeprecation``.

    params: ``image_id``, ``deprecate_at`` (ISO 8601, UTC)."""

    name = "ec2.deprecate_image"
    permissions = ("ec2:EnableImageDeprecation", "ec2:DisableImageDeprecation", "ec2:DescribeImages")

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI and when AWS deprecates it."""

        image_id: str
        deprecate_at: str | None = None  # None: when the step runs

    @classmethod
    def describe(cls, params, *, account, region, current: str | None = None):
        """``current``: the deprecation time set now, if any."""
        was = f" (now `{current}`)" if current else ""
        at = f"at `{params.deprecate_at}`" if params.deprecate_at else "now (when approved)"
        return f"EnableImageDeprecation on {params.image_id} in `{account.alias}` {region} {at}{was}"

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        before = ctx.previous.get("before")
        if "before" not in ctx.previous:
            before = ec2.describe_images(ImageIds=[params.image_id])["Images"][0].get("DeprecationTime")
            ctx.checkpoint({"before": before})
        at = params.deprecate_at or ctx.previous.get("at") or (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:00Z")
        ctx.checkpoint({"before": before, "at": at})
        ec2.enable_image_deprecation(ImageId=params.image_id, DeprecateAt=at)
        return {"before": before, "at": at, "summary": f"{params.image_id} deprecated at {at}"}

    def revert(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        before = result.get("before")
        if before:
            ec2.enable_image_deprecation(ImageId=params.image_id, DeprecateAt=before)
            return f"put back the deprecation time of {params.image_id} ({before})"
        ec2.disable_image_deprecation(ImageId=params.image_id)
        return f"cancelled the deprecation of {params.image_id}"


@register
class DisableImage(Action):
    """``DisableImage``: no new launches; AWS removes every launch permission. Undo:
    ``EnableImage`` (the launch permissions are not given back).

    params: ``image_id``."""

    name = "ec2.disable_image"
    permissions = ("ec2:DisableImage", "ec2:EnableImage")

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI to disable."""

        image_id: str

    @classmethod
    def describe(cls, params, *, account, region, losing: list[str]):
        """``losing``: who loses launch permission (AWS removes them all)."""
        who = ", ".join(losing) if losing else "nobody else had it"
        return f"DisableImage on {params.image_id} in `{account.alias}` {region}; launch permission removed for: {who}"

    def run(self, ctx, account_id, region, params):
        ctx.client("ec2", account_id, region).disable_image(ImageId=params.image_id)
        return {"summary": f"{params.image_id} disabled"}

    def revert(self, ctx, account_id, region, params, result):
        ctx.client("ec2", account_id, region).enable_image(ImageId=params.image_id)
        return f"enabled {params.image_id} again (its launch permissions are not restored)"


@register
class DeregisterImage(Action):
    """``DeregisterImage`` with ``DeleteAssociatedSnapshots``: cannot be undone (a
    Recycle Bin rule, if one matches, keeps it restorable for a while).

    params: ``image_id``, ``delete_snapshots``."""

    name = "ec2.deregister_image"
    permissions = ("ec2:DeregisterImage", "ec2:DeleteSnapshot")
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI, and whether its snapshots go with it."""

        image_id: str
        delete_snapshots: bool = True

    @classmethod
    def describe(cls, params, *, account, region, kept: dict[str, list[str]], recycle_bin: str):
        """``kept``: snapshots AWS keeps because other AMIs use them; ``recycle_bin``: what a retention rule does."""
        text = f"DeregisterImage on {params.image_id} in `{account.alias}` {region}"
        if params.delete_snapshots:
            text += " with DeleteAssociatedSnapshots"
            if kept:
                text += "; kept (used by other AMIs): " + ", ".join(f"{s} ({', '.join(a)})" for s, a in kept.items())
        return f"{text}; {recycle_bin}"

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        earlier = bool(ctx.previous.get("calling"))
        ctx.checkpoint({"calling": True})  # before the call: a restart after it knows "gone" means done
        try:
            answer = ec2.deregister_image(ImageId=params.image_id, DeleteAssociatedSnapshots=params.delete_snapshots)
        except Exception as error:  # a retry after the call went through: already gone
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if earlier and code in ("InvalidAMIID.Unavailable", "InvalidAMIID.NotFound"):
                return {"summary": f"{params.image_id} deregistered (on an earlier attempt)"}
            raise
        results = answer.get("DeleteSnapshotResults", [])
        deleted = [r["SnapshotId"] for r in results if r.get("ReturnCode") == "success"]
        kept = [r["SnapshotId"] for r in results if r.get("ReturnCode") != "success"]
        summary = f"{params.image_id} deregistered" + (f"; snapshots deleted: {', '.join(deleted)}" if deleted else "") + (f"; kept: {', '.join(kept)}" if kept else "")
        return {"summary": summary, "deleted_snapshots": deleted, "kept_snapshots": kept}
