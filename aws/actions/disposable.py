"""What amibot may delete: ``amibot:disposable = true``, set at creation, removed when
the resource becomes a deliverable.

The member policy allows ``DeregisterImage``, ``DeleteSnapshot`` and
``TerminateInstances`` only on resources carrying this tag
(``aws:ResourceTag/amibot:disposable``), and no direct ``CreateTags`` may set an
``amibot:*`` key: the tag can only come from a creation call's TagSpecifications.
It is on a test-launch instance (its whole life), a copy not yet verified and a
migration image until the migration is reported (with their snapshots). The last
step of a copy, a distribution's target and a migration removes it
(:class:`DeliverImage`); from then on the policy cannot delete that image, and a
migrated instance never carries it (docs/least-privilege.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws.actions.base import Action, ActionParams, image_of, register
from aws.actions.images import find_image

DISPOSABLE_TAG = "amibot:disposable"
DISPOSABLE = {DISPOSABLE_TAG: "true"}


def disposable_tags() -> list[dict[str, str]]:
    """The tag, in a TagSpecifications' ``Tags`` form."""
    return [{"Key": k, "Value": v} for k, v in DISPOSABLE.items()]


@register
class DeliverImage(Action):
    """``DeleteTags amibot:disposable`` on the image and its snapshots: the image is
    a deliverable now, and amibot's role can no longer delete it.

    params: ``image_id`` or ``image_from_step``. Not undone: the tag cannot be put
    back (CreateTags never sets ``amibot:*`` keys), and an available image is never
    deleted by an undo anyway (``images.discard_unfinished_image``)."""

    name = "ec2.deliver_image"
    permissions = ("ec2:DeleteTags", "ec2:DescribeImages")
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The image (``image_id``, or made by step ``image_from_step``)."""

        image_id: str | None = None
        image_from_step: int | None = None

    @classmethod
    def describe(cls, params, *, account, region, of: str = "copy"):
        """``of``: what the image is, in words (the copy, the migration image)."""
        return (f"DeleteTags `{DISPOSABLE_TAG}` on the {of} and its snapshots as `{account.alias}` in {region}: "
                "it is a deliverable now, amibot can no longer delete it")

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = image_of(params, ctx.results)
        image = find_image(ec2, image_id) or {"ImageId": image_id}
        snapshots = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
        ec2.delete_tags(Resources=[image_id, *snapshots], Tags=[{"Key": DISPOSABLE_TAG}])
        return {"image_id": image_id, "summary": f"{image_id} delivered: `{DISPOSABLE_TAG}` removed from it and {len(snapshots)} snapshot(s)"}
