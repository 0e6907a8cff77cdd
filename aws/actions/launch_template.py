"""``update-lt``: a new launch-template version that uses the new AMI, as EC2 Image
Builder's distribution settings do (AWS: "Launch template versions", EC2 User Guide:
a new version is created from a source version with only the changed data, and it
becomes the default only when ``ModifyLaunchTemplate`` says so).

The source version is the template's *default* version, not ``$Latest`` (which may
hold unreleased changes that ``default`` would then promote). Only templates their
owners tagged ``amibot:update-lt = true`` may be changed (the member policy's
condition), and a template whose default version takes its AMI from an SSM
parameter (``resolve:ssm:…``) is refused: a version with an AMI id would silently
replace that indirection (:func:`template_refusal`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws.actions.base import Action, ActionParams, image_of, register
from aws.errors import AwsFailure


MARK_TAG = "amibot:update-lt"  # aws.iam.LAUNCH_TEMPLATE_TAG
SSM_PREFIX = "resolve:ssm:"


def template_refusal(ec2: Any, template_id: str) -> tuple[str, str] | None:
    """(why, fix) when amibot must not add a version to the template, else None:
    not marked by its owners, or its default version resolves its AMI from SSM."""
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    # DescribeTags: the template's tags however they were set (moto's
    # DescribeLaunchTemplates shows only those given at creation).
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [template_id]}]).get("Tags", [])
    tags = {t["Key"]: t["Value"] for t in found}
    if tags.get(MARK_TAG) != "true":
        return (f"Launch template {template_id} is not marked for amibot (tag `{MARK_TAG}` = `true`).",
                f"Its owners mark it: `aws ec2 create-tags --resources {template_id} --tags Key={MARK_TAG},Value=true` (docs/least-privilege.md).")
    default = template.get("DefaultVersionNumber")
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[str(default)])["LaunchTemplateVersions"]
    image = ((versions[0] if versions else {}).get("LaunchTemplateData") or {}).get("ImageId") or ""
    if image.startswith(SSM_PREFIX):
        return (f"The default version ({default}) of {template_id} takes its AMI from an SSM parameter (`{image}`): "
                "a new version with an AMI id would silently replace that.",
                "Update the SSM parameter to the copy instead, or leave `update-lt` out.")
    return None


@register
class CreateLaunchTemplateVersion(Action):
    """``CreateLaunchTemplateVersion`` with ``SourceVersion`` = the default version and only the new
    ``ImageId``; with ``make_default``, ``ModifyLaunchTemplate`` makes it the default.

    params: ``template_id``, ``image_id`` or ``image_from_step``, ``make_default``. The
    version description names the request and the image, so a retry finds its version."""

    name = "ec2.launch_template_version"
    permissions = (
        "ec2:CreateLaunchTemplateVersion",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeTags",  # the preflight's template_refusal
        "ec2:ModifyLaunchTemplate",
        "ec2:DeleteLaunchTemplateVersions",  # undo
    )

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The template, and the AMI (``image_id``, or made by step ``image_from_step``) its new version uses."""

        image_id: str | None = None
        image_from_step: int | None = None
        template_id: str
        make_default: bool = False

    @classmethod
    def describe(cls, params, *, account, region):
        return (
            f"CreateLaunchTemplateVersion on {params.template_id} as `{account.alias}` in {region}: SourceVersion=<its default version>, ImageId=<the copy>"
            + ("; ModifyLaunchTemplate: make it the default version" if params.make_default else "; the default version is left as it is")
        )

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = image_of(params, ctx.results)
        template = params.template_id
        marker = f"amibot {ctx.request_uid} {image_id}"
        before = ctx.previous.get("default_before")
        if before is None:
            before = ec2.describe_launch_templates(LaunchTemplateIds=[template])["LaunchTemplates"][0]["DefaultVersionNumber"]
            ctx.checkpoint({"default_before": before})
        version = ctx.previous.get("version")
        if version is None:
            # After a crash between the call and the checkpoint: find the version by its description.
            found = [v for v in ec2.describe_launch_template_versions(LaunchTemplateId=template).get("LaunchTemplateVersions", [])
                     if v.get("VersionDescription") == marker]
            if found:
                version = found[0]["VersionNumber"]
            else:
                made = ec2.create_launch_template_version(
                    LaunchTemplateId=template, SourceVersion=str(before), VersionDescription=marker,
                    ClientToken=f"amibot-lt-{ctx.request_uid}-{image_id}"[:128],
                    LaunchTemplateData={"ImageId": image_id},
                )
                version = made["LaunchTemplateVersion"]["VersionNumber"]
            ctx.checkpoint({"default_before": before, "version": version})
        if params.make_default:
            ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion=str(version))
        said = f"launch template {template} version {version} uses {image_id}" + (" (now its default version)" if params.make_default else " (default version unchanged)")
        return {"version": version, "default_before": before, "image_id": image_id, "summary": said, "outcome": said}

    def revert(self, ctx, account_id, region, params, result):
        version = result.get("version")
        if version is None:
            return None
        ec2 = ctx.client("ec2", account_id, region)
        template = params.template_id
        if params.make_default and result.get("default_before") is not None:
            ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion=str(result["default_before"]))
        answer = ec2.delete_launch_template_versions(LaunchTemplateId=template, Versions=[str(version)])
        refused = [e for e in answer.get("UnsuccessfullyDeletedLaunchTemplateVersions", [])
                   if (e.get("ResponseError") or {}).get("Code") != "launchTemplateVersionDoesNotExist"]
        if refused:
            error = refused[0].get("ResponseError") or {}
            raise AwsFailure(error.get("Code", "Unknown"), error.get("Message", ""), cause=f"AWS kept version {version} of {template}.",
                             fix=f"Delete it by hand: `aws ec2 delete-launch-template-versions --launch-template-id {template} --versions {version}`.")
        return f"deleted version {version} of launch template {template}"
