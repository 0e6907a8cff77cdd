"""Tags: the owner, region, app, version convention.

``bot.required_tags`` (optional) names tag keys an AMI must carry before amibot
shares, copies or distributes it; a request for an AMI missing one is refused before
anyone is asked, naming the missing keys and the two ways to add them (the AWS CLI's
``create-tags``, or ``/ami tag``, itself an approved operation planned here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws.actions.tags import MAX_TAGS, TagImage
from bot.errors import PreflightError
from bot.slacktext import code
from bot.verbs.common import PlanningContext, Prepared, facts_for_message

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.tag.command import TagCommand


def prepare_tag(ctx: PlanningContext, command: TagCommand) -> Prepared:
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
    after_change = {k for k in facts.tags if not k.lower().startswith("aws:")} | set(tags)
    if len(after_change) > MAX_TAGS:
        raise PreflightError(
            f"{facts.image_id} has {len(facts.tags)} tags; with these it would have {len(after_change)}: an AMI or snapshot has at most {MAX_TAGS} (EC2 CreateTags would answer TagLimitExceeded).",
            fix="Set fewer new keys, or remove unused tags first (aws ec2 delete-tags).",
        )
    step = TagImage.plan(source, region, TagImage.Params(image_id=facts.image_id, snapshot_ids=facts.snapshot_ids, tags=tags), current_tags=facts.tags)
    missing = [k for k in ctx.config.bot.required_tags if not (tags.get(k) or facts.tags.get(k))]
    checked = [
        f"{facts.image_id} {code(facts.name, 128)} in {region}, owned by `{source.alias}` ({facts.owner_id})",
        "Tags now: " + (", ".join(code(f"{k}={v}", 120) for k, v in sorted(facts.tags.items())) or "none"),
    ]
    if ctx.config.bot.required_tags:
        checked.append("Required tags after this: " + ("all present" if not missing else "still missing " + ", ".join(code(k, 128) for k in missing)))
    return Prepared(
        kind="tag",
        params={"image_id": facts.image_id, "source": source.alias, "region": region, "tags": tags},
        checked=checked,
        approver_accounts=[source.alias],
        steps=[step],
        after=["If it fails, the earlier values are put back."],
        extra_facts={"image": facts_for_message(facts)},
    )
