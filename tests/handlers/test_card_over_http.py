"""The approval card over the real HTTP endpoint (issue 18): labelled fields, Deny in
one click, and the requester's Nudge and Cancel, theirs alone."""

from __future__ import annotations

from bot.requests import CANCELLED, PENDING_APPROVAL
from offline import rehearsal
from offline.scenarios.stage import blocks_text
from tests.conftest import Harness


def _fields(root: dict) -> dict[str, str]:
    section = next(b for b in root["blocks"] if b.get("fields"))
    return {f["text"].split("\n", 1)[0].strip("*"): f["text"].split("\n", 1)[1] for f in section["fields"]}


def _buttons(message: dict) -> dict[str, dict]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


def _said_to(h: Harness, user: str, before: int) -> str:
    return str(h.fake.wait_for(lambda: h.fake.ephemerals(user)[before:] and h.fake.ephemerals(user)[-1].get("text")))


def test_a_share_card_has_its_fields_once_and_deny_opens_the_form_in_one_click(harness: Harness):
    image = harness.world.encrypted_image
    harness.slash(f'share {image} from prod to dev reason "load tests this week"')
    root = harness.root_for(image)
    assert root["blocks"][0]["type"] == "header" and "waiting for approval" in root["blocks"][0]["text"]["text"]
    fields = _fields(root)
    assert fields["Requester"] == f"<@{rehearsal.REQUESTER}>" and fields["AMI"].endswith(f"({image})") and fields["AMI"] != image
    assert fields["From → To"] == "prod (us-east-1) → dev" and fields["Access"].startswith("launch, use the key ")
    assert fields["Why"] == "load tests this week" and blocks_text(root).count("load tests this week") == 1
    assert "`dev` gains launch access" in blocks_text(root) and rehearsal.DEV not in blocks_text(root)  # names, not ids
    assert f"R-1-{harness.bot.store.get(1).uid}" in root["blocks"][-1]["elements"][0]["text"]  # the amibot:request value
    deny = _buttons(root)["amibot_deny"]
    assert "confirm" not in deny
    harness.click(rehearsal.OWNER, root, action="amibot_deny")
    form = harness.fake.wait_for(lambda: next((v for v in harness.fake.views.values() if v["callback_id"] == "amibot_deny_reason"), None))
    assert form["private_metadata"] == "R-1"
    harness.slack.submit_view(rehearsal.OWNER, "amibot_deny_reason", {"reason": {"reason": "not now"}}, private_metadata="R-1")
    denied = harness.fake.wait_for(lambda: "Denied by" in blocks_text(harness.fake.message(harness.channel, root["ts"])))
    assert denied and f"*Denied by* <@{rehearsal.OWNER}>" in blocks_text(harness.fake.message(harness.channel, root["ts"]))


def test_nudge_and_cancel_are_the_requesters_alone_and_nudge_is_rate_limited(harness: Harness, clock):
    harness.slash(f"share {harness.world.plain_image} from prod to dev")
    root = harness.root_for(harness.world.plain_image)
    assert {"amibot_nudge", "amibot_cancel"} <= set(_buttons(root))
    for user, action in ((rehearsal.STRANGER, "amibot_nudge"), (rehearsal.OWNER, "amibot_cancel")):
        before = len(harness.fake.ephemerals(user))
        harness.click(user, root, action=action)
        assert f"Only <@{rehearsal.REQUESTER}>" in _said_to(harness, user, before)
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    # View exact changes follows /ami status's rule: the stranger is no owner, and the
    # local Slack lists nobody as the channel's member (amibot fails closed).
    before = len(harness.fake.ephemerals(rehearsal.STRANGER))
    harness.click(rehearsal.STRANGER, root, action="amibot_view_changes")
    assert "shown only to its requester" in _said_to(harness, rehearsal.STRANGER, before)
    assert "Checked before asking you" in harness.exact_changes(root, user=rehearsal.OWNER)

    owner_dm = harness.fake.dm_channel(rehearsal.OWNER)
    before_dms = len(harness.fake.messages(owner_dm)) if owner_dm else 0
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.click(rehearsal.REQUESTER, root, action="amibot_nudge")
    assert "reminded" in _said_to(harness, rehearsal.REQUESTER, before)
    nudged = harness.fake.wait_for(lambda: [m for m in harness.fake.messages(harness.fake.dm_channel(rehearsal.OWNER))[before_dms:]
                                            if "Reminder from" in blocks_text(m)])
    assert len(nudged) == 1 and _buttons(nudged[0])["amibot_approve"]["confirm"]  # the card, with its buttons
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.click(rehearsal.REQUESTER, root, action="amibot_nudge")
    assert "Nothing was sent" in _said_to(harness, rehearsal.REQUESTER, before)
    clock.advance(31 * 60)
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.click(rehearsal.REQUESTER, root, action="amibot_nudge")
    assert "reminded" in _said_to(harness, rehearsal.REQUESTER, before)

    harness.click(rehearsal.REQUESTER, root, action="amibot_cancel")
    harness.fake.wait_for(lambda: harness.bot.store.get(1).state == CANCELLED)


def test_a_distribution_card_warns_of_the_aws_managed_keys_it_would_use(harness: Harness):
    image = harness.world.encrypted_image
    harness.slash(f"distribute {image} from prod to prod:eu-west-1,dev:us-west-2")
    root = harness.root_for(image)
    card = blocks_text(root)
    assert "cross-account: copies of" in card and "into `dev` (us-west-2)" in card and "also a copy in eu-west-1, same account `prod`" in card
    warnings = [line for line in card.splitlines() if line.startswith("*Warning:*")]
    assert len(warnings) == 1 and "`prod:eu-west-1`, `dev:us-west-2` get copies encrypted with the AWS-managed key alias/aws/ebs" in warnings[0], card
    assert _fields(root)["From → To"] == "prod (us-east-1) → prod (eu-west-1), dev (us-west-2)"
