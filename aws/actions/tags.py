"""Tagging an AMI and its snapshots (``/ami tag``): the owner, region, app, version
convention. ``CreateTags`` overwrites a key's value, so the step records what each key
was before: the undo puts back exactly that (and removes the keys that were new)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws.actions.base import Action, ActionParams, register

# EC2: "Each resource can have a maximum of 50 tags" (CreateTags, Amazon EC2 API
# Reference); the sandbox (moto) answers TagLimitExceeded past it, as AWS does.
MAX_TAGS = 50


@register
class TagImage(Action):
    """Set tags on the AMI and each of its snapshots, in one ``CreateTags`` call.

    params: ``image_id``, ``snapshot_ids``, ``tags`` ({key: value})."""

    name = "ec2.tag_image"
    permissions = ("ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeImages")

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI, its snapshots, and the tags to set on all of them."""

        image_id: str
        snapshot_ids: list[str] = field(default_factory=list)
        tags: dict[str, str]

    @classmethod
    def describe(cls, params, *, account, region, current_tags: dict[str, str]):
        """``current_tags``: the AMI's tags now, to say what each key changes from."""
        def shown(text: str) -> str:  # a value inside a code span: no backtick may end it, no line break split it
            return " ".join(str(text).split()).replace("`", "\u02cb") or " "

        changes = [
            f"`{shown(k)}`: " + (f"`{shown(current_tags[k])}` → `{shown(v)}`" if k in current_tags and current_tags[k] != v else ("unchanged" if current_tags.get(k) == v else f"(none) → `{shown(v)}`"))
            for k, v in params.tags.items()
        ]
        return f"CreateTags on {', '.join([params.image_id, *params.snapshot_ids])}: " + "; ".join(changes)

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        before = ctx.previous.get("before")
        if before is None:
            image = ec2.describe_images(ImageIds=[params.image_id])["Images"][0]
            current = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
            before = {key: current.get(key) for key in params.tags}
            ctx.checkpoint({"before": before})
        resources = [params.image_id, *params.snapshot_ids]
        ec2.create_tags(Resources=resources, Tags=[{"Key": k, "Value": v} for k, v in params.tags.items()])
        changed = [f"{k}={v}" for k, v in params.tags.items() if before.get(k) != v]
        return {"before": before, "summary": f"tagged {', '.join(resources)}: " + (", ".join(changed) or "already so")}

    def revert(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        before = result.get("before") or {}
        resources = [params.image_id, *params.snapshot_ids]
        restore = [{"Key": k, "Value": v} for k, v in before.items() if v is not None]
        remove = [{"Key": k} for k, v in before.items() if v is None]
        if restore:
            ec2.create_tags(Resources=resources, Tags=restore)
        if remove:
            ec2.delete_tags(Resources=resources, Tags=remove)
        return f"put back the earlier tags of {params.image_id} ({', '.join(t['Key'] for t in restore + remove)})"
