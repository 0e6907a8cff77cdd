"""Tags: the owner, region, app, version convention.

``bot.required_tags`` (optional) names tag keys an AMI must carry before amibot
shares, copies or distributes it; a request for an AMI missing one is refused before
anyone is asked, naming the missing keys and the two ways to add them (the AWS CLI's
``create-tags``, or ``/ami tag``, itself an approved operation planned here).
"""

from __future__ import annotations

import shlex

from aws.actions import ImageFacts
from aws.actions.tags import TagImage
from bot import grammar
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.operations import PlanningContext, Prepared, preparer
from bot.operations.share import facts_for_message


def check_required_tags(ctx: PlanningContext, facts: ImageFacts, source: AccountConfig, region: str, verb: str) -> None:
    """Refuse an AMI that lacks a tag of ``bot.required_tags`` (empty values count as
    missing), with the exact commands that add them."""
    required = ctx.config.bot.required_tags
    missing = [key for key in required if not (facts.tags.get(key) or "").strip()]
    if not missing:
        return
    resources = " ".join([facts.image_id, *facts.snapshot_ids])
    cli_tags = " ".join(f"Key={shlex.quote(key)},Value=…" for key in missing)
    slash = " ".join(f"{key}=…" for key in missing)
    raise PreflightError(
        f"{facts.image_id} lacks the tag{'s' if len(missing) > 1 else ''} {', '.join(f'`{k}`' for k in missing)} "
        f"that this workspace requires before an AMI is {verb} (`bot.required_tags` = {', '.join(required)}).",
        fix=(
            f"Tag it, then ask again: `aws ec2 create-tags --region {region} --resources {resources} --tags {cli_tags}` "
            f"(as `{source.alias}`), or `/ami tag {facts.image_id} from {source.alias}:{region} {slash}` (approved by `{source.alias}`'s owners)."
        ),
    )


@preparer(grammar.TagCommand)
def prepare_tag(ctx: PlanningContext, command: grammar.TagCommand) -> Prepared:
    """Plan ``/ami tag``: one CreateTags on the AMI and its snapshots, approved by the
    owners of the AMI's account; the undo restores the earlier values."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    ctx.check_approvers([source.alias])
    facts = ctx.preflight_image(source, region, command.image_id)
    if facts.owner_id != source.id:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}, not by `{source.alias}` ({source.id}): only the owner can tag it for everyone.",
            fix="Name the owning account after `from`.",
        )
    tags = dict(command.tags)
    step = TagImage.plan(source, region, TagImage.Params(image_id=facts.image_id, snapshot_ids=facts.snapshot_ids, tags=tags), current_tags=facts.tags)
    missing = [k for k in ctx.config.bot.required_tags if not (tags.get(k) or facts.tags.get(k))]
    checked = [
        f"{facts.image_id} `{facts.name}` in {region}, owned by `{source.alias}` ({facts.owner_id})",
        "Tags now: " + (", ".join(f"`{k}={v}`" for k, v in sorted(facts.tags.items())) or "none"),
    ]
    if ctx.config.bot.required_tags:
        checked.append("Required tags after this: " + ("all present" if not missing else "still missing " + ", ".join(f"`{k}`" for k in missing)))
    return Prepared(
        kind="tag",
        params={"image_id": facts.image_id, "source": source.alias, "region": region, "tags": tags},
        checked=checked,
        approver_accounts=[source.alias],
        steps=[step],
        after=["If it fails, the earlier values are put back."],
        extra_facts={"image": facts_for_message(facts)},
    )
