"""Approvals that reach the owners where they are, over the real HTTP endpoint with
signed requests and the local Slack stand-in: DM copies, approval channels, every
copy updated on a decision, late clicks, reminders, a root message that cannot be
posted, confirm dialogs, the exact-changes modal, reasons and allowed channels."""

from __future__ import annotations


import pytest

from bot.requests import APPROVED, FAILED, PENDING_APPROVAL, SUCCEEDED
from offline import rehearsal
from offline.slack import FakeSlack
from offline.stack import start_stack
from tests.conftest import Harness, bot_options, has_decision_buttons
from offline.scenarios.stage import blocks_text

OWNER, CAROL, DEVOPS, BOB, MALLORY = rehearsal.OWNER, "U0CAROL", rehearsal.DEV_OWNER, rehearsal.REQUESTER, rehearsal.STRANGER
APPROVALS = "C0APPROVE"


@pytest.fixture
def stack(sandbox, tmp_path, clock):
    """Build a harness with extra config lines and fake-Slack options."""
    started = []

    def build(bot_toml: str = "", prod_toml: str = "", command: str = "/ami", **fake_options) -> Harness:
        fake = FakeSlack(usergroups=rehearsal.USERGROUPS, channels_bot_cannot_post={"G0PRIVATE"}, **fake_options)
        fake.start()
        toml = rehearsal.SANDBOX_TOML.replace("approval_ttl_hours = 24\n", "approval_ttl_hours = 24\n" + bot_toml + "\n", 1)
        toml = toml.replace('command = "/ami"', f'command = "{command}"', 1)
        toml = toml.replace('owners = ["U0ALICE", "S0PLATFORM"]\n', 'owners = ["U0ALICE", "S0PLATFORM"]\n' + prod_toml + "\n", 1)
        env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret"}
        try:
            harness = start_stack(sandbox, fake, str(tmp_path / f"amibot{len(started)}.db"), toml=toml, env=env, enforce_iam=False, **bot_options(clock))
        except BaseException:
            fake.stop()
            raise
        started.append((harness.bot, fake))
        return harness

    yield build
    for bot, fake in started:
        bot.stop()
        fake.stop()


def dm_cards(h: Harness, user: str) -> list[dict]:
    channel = h.fake.dm_channel(user)
    return [m for m in h.fake.messages(channel) if m.get("blocks")] if channel else []


def ask(h: Harness, text: str, user: str = BOB, channel: str | None = None) -> dict:
    assert h.slash(text, user=user, channel=channel).status == 200
    h.bot.worker.drain()
    h.settle()
    return h.root_for(text.split()[1])


def test_an_owner_outside_the_channel_approves_from_a_dm(stack):
    h = stack()
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    # Every eligible owner of prod got the card with its buttons; the requester did not.
    for owner in (OWNER, CAROL):
        cards = dm_cards(h, owner)
        assert len(cards) == 1 and has_decision_buttons(cards[0]), h.fake.dump()
    assert h.fake.dm_channel(BOB) is None
    assert not h.fake.calls_to("conversations.open") or all(c.params["users"] != BOB for c in h.fake.calls_to("conversations.open"))
    # Carol is not in the channel: she approves from her DM.
    dm = h.fake.dm_channel(CAROL)
    card = dm_cards(h, CAROL)[0]
    assert h.slack.click(CAROL, dm, card["ts"], "amibot_approve", "R-1").status == 200
    h.final_reply(root)
    h.settle()
    request = h.bot.store.get(1)
    assert request.state == SUCCEEDED and request.approvals == {"prod": CAROL}
    # Every copy, and the root, now shows who decided and has no buttons.
    for message in [h.fake.message(h.channel, root["ts"]), *dm_cards(h, OWNER), *dm_cards(h, CAROL)]:
        assert not has_decision_buttons(message)
        assert f"approved by <@{CAROL}>" in blocks_text(message)
    # The requester is told by DM that it was approved, then that it ended.
    bob_dm = h.fake.messages(h.fake.dm_channel(BOB))
    assert len(bob_dm) == 2 and "approved by" in bob_dm[0]["text"] and "R-1 is done" in bob_dm[1]["text"]


def test_without_approval_dms_the_owners_and_their_group_are_mentioned_in_the_channel(stack):
    h = stack(prod_toml="approval_dm = false")
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    waiting = next(line for line in blocks_text(root).splitlines() if line.startswith("`prod`"))
    assert waiting == "`prod`: waiting for <@U0ALICE>, <!subteam^S0PLATFORM>"
    h.settle()
    assert dm_cards(h, OWNER) == [] and dm_cards(h, CAROL) == []


def test_a_late_click_anywhere_says_who_decided(stack):
    h = stack()
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    h.click(OWNER, root)
    h.final_reply(root)
    h.settle()
    dm = h.fake.dm_channel(CAROL)
    card = dm_cards(h, CAROL)[0]
    before = len(h.fake.ephemerals(CAROL))
    h.slack.click(CAROL, dm, card["ts"], "amibot_approve", "R-1")
    note = h.ephemeral_for(CAROL, after=before)
    assert f"<@{OWNER}>" in note and "Nothing was changed" in note
    assert h.bot.store.get(1).approvals == {"prod": OWNER}


def test_approval_channel_gets_a_copy_and_a_click_there_decides(stack):
    h = stack(bot_toml="approval_dm = false", prod_toml=f'approval_channel = "{APPROVALS}"')
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    assert not h.fake.calls_to("conversations.open")  # approval_dm = false
    copies = [m for m in h.fake.messages(APPROVALS) if m.get("blocks")]
    assert len(copies) == 1 and has_decision_buttons(copies[0])
    assert f"<#{h.channel}>" in blocks_text(copies[0])  # says where it was asked
    h.slack.click(OWNER, APPROVALS, copies[0]["ts"], "amibot_deny", "R-1")
    h.settle()
    form = next(v for v in h.fake.views.values() if v["callback_id"] == "amibot_deny_reason")
    h.slack.submit_view(OWNER, "amibot_deny_reason", {"reason": {"reason": "not this week"}}, private_metadata=form["private_metadata"])
    h.settle()
    assert h.bot.store.get(1).state == "denied"
    for message in (h.fake.message(APPROVALS, copies[0]["ts"]), h.fake.message(h.channel, root["ts"])):
        assert not has_decision_buttons(message) and "denied" in blocks_text(message)


def test_copies_are_posted_once_across_repeated_sends(stack):
    h = stack(prod_toml=f'approval_channel = "{APPROVALS}"')
    ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    h.bot.service.ask_owners_elsewhere(h.bot.store.get(1))  # a retried submit asks again: dedupe keys
    h.settle()
    assert len(h.fake.messages(APPROVALS)) == 1
    assert len(dm_cards(h, OWNER)) == 1 and len(dm_cards(h, CAROL)) == 1
    assert {(m["role"], m["target"]) for m in h.bot.store.posted_messages(1)} == {("copy", APPROVALS), ("copy", OWNER), ("copy", CAROL)}


def test_reminders_by_dm_on_the_schedule_with_the_buttons(stack, clock):
    h = stack(bot_toml="reminder_hours_before_expiry = [12, 1]")
    ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    h.tick()
    assert len(dm_cards(h, OWNER)) == 1  # nothing due yet
    clock.advance(12.5 * 3600)
    h.tick()
    h.tick()  # the same entry is sent once
    reminders = [m for m in dm_cards(h, OWNER) if "Reminder" in blocks_text(m)]
    assert len(reminders) == 1 and has_decision_buttons(reminders[0])
    assert len([m for m in dm_cards(h, CAROL) if "Reminder" in blocks_text(m)]) == 1
    clock.advance(10.7 * 3600)  # 0.8 h before expiry
    h.tick()
    reminders = [m for m in dm_cards(h, OWNER) if "Reminder" in blocks_text(m)]
    assert len(reminders) == 2 and "about 1 h" in blocks_text(reminders[1])
    # A reminder's button decides, and every card, reminders included, is updated.
    h.slack.click(OWNER, h.fake.dm_channel(OWNER), reminders[1]["ts"], "amibot_approve", "R-1")
    h.settle()
    assert h.bot.store.get(1).state in (APPROVED, "running", SUCCEEDED)
    assert not any(has_decision_buttons(m) for m in dm_cards(h, OWNER) + dm_cards(h, CAROL))


def test_the_requester_gets_a_dm_when_the_request_expires(stack, clock):
    h = stack()
    ask(h, f"share {h.world.plain_image} from prod to dev")
    h.settle()
    clock.advance(25 * 3600)
    h.tick()
    assert h.bot.store.get(1).state == "expired"
    assert any("expired" in m["text"] for m in h.fake.messages(h.fake.dm_channel(BOB)))
    assert not any(has_decision_buttons(m) for m in dm_cards(h, OWNER))


@pytest.mark.parametrize("channel, fake_options, words", [
    ("G0PRIVATE", {}, ["private channel", "/invite @ami-bot"]),
    ("C0GONE", {"unknown_channels": {"C0GONE"}}, ["private channel", "/invite @ami-bot"]),
    ("C0OLD", {"archived_channels": {"C0OLD"}}, ["archived"]),
    ("C0PUBLIC", {"public_channels_not_joined": {"C0PUBLIC"}, "scopes": {"chat:write", "im:write"}}, ["channels:join", "/invite @ami-bot"]),
    ("D0OTHER", {}, ["direct message", "in a channel"]),
])
def test_a_root_message_that_cannot_be_posted_ends_the_request_and_says_why(stack, channel, fake_options, words):
    h = stack(bot_name="ami-bot", **fake_options)
    assert h.slash(f"share {h.world.plain_image} from prod to dev", channel=channel).status == 200
    url = h.slack.last_response_url
    h.bot.worker.drain()
    h.settle()
    request = h.bot.store.get(1)
    assert request.state == FAILED and "could not be posted" in request.error
    told = [r.params["text"] for r in h.fake.responses_to(url) if "was not asked" in r.params.get("text", "")]
    assert len(told) == 1, h.fake.dump()
    for word in words:
        assert word in told[0], told[0]
    assert "Nothing was changed in AWS" in told[0]
    # Owners are not asked to decide a request nobody can see.
    assert not any(has_decision_buttons(m) for m in dm_cards(h, OWNER))
    assert any("was not asked" in m["text"] for m in h.fake.messages(h.fake.dm_channel(BOB)))


def test_msg_too_long_ends_the_request_and_says_it_is_a_bug(stack):
    h = stack()
    h.fake.script_error("chat.postMessage", "msg_too_long", times=1)
    h.slash(f"share {h.world.plain_image} from prod to dev", channel=h.channel)
    url = h.slack.last_response_url
    h.bot.worker.drain()
    h.settle()
    assert h.bot.store.get(1).state == FAILED
    told = [r.params["text"] for r in h.fake.responses_to(url) if "was not asked" in r.params.get("text", "")]
    assert told and "msg_too_long" in told[0] and "bug in amibot" in told[0]


def test_a_public_channel_not_joined_is_joined_when_allowed(stack):
    h = stack(public_channels_not_joined={"C0PUBLIC"})
    h.slash(f"share {h.world.plain_image} from prod to dev", channel="C0PUBLIC")
    h.bot.worker.drain()
    h.settle()
    assert h.fake.calls_to("conversations.join")
    assert h.bot.store.get(1).state == PENDING_APPROVAL
    roots = [m for m in h.fake.messages("C0PUBLIC") if m.get("blocks")]
    assert len(roots) == 1 and has_decision_buttons(roots[0])
    assert h.bot.store.get(1).root_ts == roots[0]["ts"]


def test_a_root_refused_is_rerouted_to_the_approval_channel(stack):
    h = stack(bot_toml="approval_dm = false", prod_toml=f'approval_channel = "{APPROVALS}"')
    h.slash(f"share {h.world.plain_image} from prod to dev", channel="G0PRIVATE")
    url = h.slack.last_response_url
    h.bot.worker.drain()
    h.settle()
    request = h.bot.store.get(1)
    assert request.state == PENDING_APPROVAL and request.channel == APPROVALS and request.root_ts
    roots = [m for m in h.fake.messages(APPROVALS) if m.get("blocks")]
    assert len(roots) == 1 and has_decision_buttons(roots[0])  # the root, not a second copy
    told = " ".join(r.params.get("text", "") for r in h.fake.responses_to(url))
    assert f"<#{APPROVALS}>" in told and "private channel" in told
    h.slack.click(OWNER, APPROVALS, roots[0]["ts"], "amibot_approve", "R-1")
    final = h.fake.wait_for(lambda: next((m for m in h.fake.thread(APPROVALS, roots[0]["ts"]) if m.get("reply_broadcast")), None), 20)
    assert "R-1 is done" in final["text"]


def test_confirm_dialogs_name_the_biggest_effect(stack):
    h = stack()
    root = ask(h, f"migrate {h.world.instance_id} from prod to us-east-1b")
    buttons = {e["action_id"]: e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"]}
    approve = buttons["amibot_approve"]["confirm"]
    assert "confirm" not in buttons["amibot_deny"]  # Deny opens its reason form at once (issue 18)
    assert f"reboots web-1 ({h.world.instance_id}) in prod" in approve["text"]["text"]  # plain_text: no backticks
    assert approve["title"]["text"] == "Approve R-1?" and approve["confirm"]["text"] == "Approve"
    assert all(part["type"] == "plain_text" for part in (approve["title"], approve["text"], approve["confirm"], approve["deny"]))
    assert len(approve["title"]["text"]) <= 100 and len(approve["text"]["text"]) <= 300  # Block Kit's limits
    assert len(approve["confirm"]["text"]) <= 30 and len(approve["deny"]["text"]) <= 30
    assert "*Risk:* reboots web-1" in blocks_text(root)
    changes = h.exact_changes(root)
    assert f"`amibot:request`=R-1-{h.bot.store.get(1).uid}" in changes and "this request's id" not in changes


def test_the_card_is_compact_and_the_modal_holds_every_change(stack):
    h = stack()
    root = ask(h, f'copy {h.world.encrypted_image} from prod to dev reason "release 2.3 for dev"')
    card = blocks_text(root)
    assert len(card.splitlines()) <= 16, card
    assert "CopyImage" not in card and "*Why*: release 2.3 for dev" in card and card.count("release 2.3 for dev") == 1
    assert f"<@{BOB}>" in card and card.count(f"<@{BOB}>") == 1  # the requester asks, and is no possible approver
    changes = h.exact_changes(root)
    assert "CopyImage" in changes and "Checked before asking you" in changes
    assert "payments-api-2026.11-copy-R-1" in changes and "this request's number" not in changes
    assert "1. [prod]" in changes
    assert any("reason: release 2.3 for dev" in (a["detail"] or "") for a in h.bot.store.events(1))
    h.click(OWNER, root)
    h.click(DEVOPS, root)
    h.final_reply(root, timeout=60)
    h.settle()
    progress = next(m for m in h.fake.thread(h.channel, root["ts"]) if m["text"].startswith(":gear:"))
    assert "Why: release 2.3 for dev" in progress["text"]  # the reason shows in the thread too


def test_a_modal_too_long_points_to_status(stack):
    from bot import cards
    h = stack()
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    request = h.bot.store.get(1)
    request.facts["after"] = [f"line {i} " + "x" * 900 for i in range(400)]
    view = cards.changes_view(request, "/ami")
    assert len(view["blocks"]) <= 100 and all(len(b["text"]["text"]) <= 3000 for b in view["blocks"])
    assert "`/ami status R-1`" in view["blocks"][-1]["text"]["text"]
    assert root


def test_if_the_deny_form_cannot_open_nothing_is_decided(stack):
    h = stack()
    root = ask(h, f"share {h.world.plain_image} from prod to dev")
    h.fake.script_error("views.open", "expired_trigger_id")
    before = len(h.fake.ephemerals(OWNER))
    h.click(OWNER, root, "amibot_deny")
    note = h.ephemeral_for(OWNER, after=before)
    assert "nothing was decided" in note and "Click *Deny* again" in note
    assert h.bot.store.get(1).state == PENDING_APPROVAL
    assert has_decision_buttons(h.fake.message(h.channel, root["ts"]))


def test_allowed_channels_refuse_elsewhere_naming_them(stack):
    h = stack(bot_toml='allowed_channels = ["C0PLATFORM", "C0OPS"]')
    result = h.slash(f"share {h.world.plain_image} from prod to dev", channel="C0RANDOM")
    text = result.json()["text"]
    assert "<#C0PLATFORM>" in text and "<#C0OPS>" in text and "Nothing was changed" in text
    h.bot.worker.drain()
    assert h.bot.store.find() == []


def test_require_reason_says_how_to_add_one(stack):
    h = stack(bot_toml="require_reason = true")
    text = h.slash(f"share {h.world.plain_image} from prod to dev").json()["text"]
    assert 'reason "' in text and "bot.require_reason" in text
    h.bot.worker.drain()
    assert h.bot.store.find() == []
    assert h.slash(f'share {h.world.plain_image} from prod to dev reason “for the demo”').status == 200
    h.bot.worker.drain()
    h.settle()
    assert h.bot.store.get(1).params["reason"] == "for the demo"


def test_the_configured_command_and_bot_name_are_used(stack):
    h = stack(command="/images", bot_name="platform-bot")
    text = h.slash("help").json()["text"]
    assert "/images share" in text and "/ami " not in text
    h.slash(f"share {h.world.plain_image} from prod to dev", channel="G0PRIVATE")
    url = h.slack.last_response_url
    h.bot.worker.drain()
    h.settle()
    told = " ".join(r.params.get("text", "") for r in h.fake.responses_to(url))
    assert "/invite @platform-bot" in told and "@amibot" not in told
    missing = h.slash("status R-99").json()["text"]
    assert "`/images list all`" in missing and "/ami" not in missing


def test_the_requester_is_not_among_the_possible_approvers(stack):
    h = stack()
    root = ask(h, f"share {h.world.plain_image} from prod to dev", user=OWNER)  # Alice owns prod, and asks
    waiting = next(line for line in blocks_text(root).splitlines() if line.startswith("`prod`"))
    # Carol (through @platform) is asked by DM: counted on the card, not mentioned (one alert per approver).
    assert f"<@{OWNER}>" not in waiting and "<!subteam^S0PLATFORM>" not in waiting and "waiting for 1 owner (asked by DM)" in waiting
    h.settle()
    assert dm_cards(h, OWNER) == [] and len(dm_cards(h, CAROL)) == 1
