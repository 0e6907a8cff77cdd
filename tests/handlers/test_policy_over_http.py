"""The approval policy (issue 19) over the real HTTP endpoint, on the test clock:
``[[policy]]`` rules evaluated in order (first match wins), approval by a rule, two
distinct owners, ``ami_tags``, the duration cap, break-glass; and the approvers'
choices: approve for less time, reassign, escalation."""

from __future__ import annotations

import pytest

from bot.requests import ACTIVE, APPROVED, PENDING_APPROVAL, REVOKED, SUCCEEDED
from offline import rehearsal
from offline.stack import offline_stack
from tests.conftest import bot_options, has_decision_buttons

OWNER, CAROL, REQUESTER, ESCALATION = rehearsal.OWNER, "U0CAROL", rehearsal.REQUESTER, "U0ONCALL"

POLICY = """
[[policy]]
name = "payments-to-dev"
from = ["prod"]
to = ["dev"]
operations = ["share"]
approve = "auto"
ami_tags = { app = "payments" }
max_duration_hours = 48

[[policy]]
name = "org-two-owners"
to = ["org"]
operations = ["share"]
approve = "two-owners"

[[policy]]
name = "prod-to-dev"
from = ["prod"]
to = ["dev"]
break_glass = true
"""


@pytest.fixture
def stack(sandbox, fake_slack, tmp_path, clock):
    """The offline stack with the rules above, and prod escalating to on-call after 4 h."""
    owners = f'owners = ["{OWNER}", "S0PLATFORM"]\n'
    toml = rehearsal.SANDBOX_TOML.replace(owners, owners + f'escalate_to = ["{ESCALATION}"]\nescalate_after_hours = 4\n') + POLICY
    with offline_stack(sandbox=sandbox, fake=fake_slack, db=str(tmp_path / "amibot.db"), toml=toml, **bot_options(clock)) as s:
        yield s


def answer_to(stack, text: str, user: str = REQUESTER) -> str:
    before = len(stack.fake.ephemerals(user))
    assert stack.slash(text, user=user).status == 200
    found = stack.ephemeral_for(user, after=before)
    stack.settle()
    return found


def card_text(root: dict) -> str:
    return root["text"] + "\n" + "\n".join(str(b) for b in root.get("blocks", []))


def current(stack, root: dict) -> dict:
    return stack.fake.message(stack.channel, root["ts"])


def dms(stack, user: str) -> list[str]:
    channel = stack.fake.dm_channel(user)
    return [m.get("text", "") + str(m.get("blocks", "")) for m in stack.fake.messages(channel)] if channel else []


def posted_dms(stack, user: str) -> list[str]:
    """The texts of the DMs posted to ``user`` (what their phone showed), oldest first."""
    channel = stack.fake.dm_channel(user)
    return [c.params.get("text", "") for c in stack.fake.calls_to("chat.postMessage") if channel and c.params.get("channel") == channel]


def test_first_match_auto_approval_tags_and_the_duration_cap(stack):
    world = stack.world
    # ami_tags matched (app=payments): the first rule approves by itself, and the share runs.
    stack.slash(f"share {world.encrypted_image} from prod to dev for 1d")
    root = stack.root_for(world.encrypted_image)
    final = stack.final_reply(root)
    stack.settle()
    auto = stack.bot.store.get(1)
    assert auto.state == ACTIVE and auto.facts["policy"] == {"rule": "payments-to-dev", "approve": "auto", "ami_tags": {"app": "payments"},
                                                              "break_glass": False, "max_duration_hours": 48}
    assert any(e["actor"] == "policy:payments-to-dev" and e["to_state"] == APPROVED for e in stack.bot.store.events(1))
    assert "payments-to-dev" in card_text(current(stack, root)) and "app=payments" in card_text(current(stack, root))
    assert "Policy `payments-to-dev`" not in final["text"]  # the final reply is the ending; the rule is on the card and in the plan
    assert "policy `payments-to-dev`" in stack.exact_changes(root)
    # ami_tags not matched (no tags): the first rule is passed over, the third applies (owners).
    stack.slash(f"share {world.plain_image} from prod to dev for 1d")
    plain = stack.root_for(world.plain_image)
    stack.settle()
    assert stack.bot.store.get(2).state == PENDING_APPROVAL and stack.bot.store.get(2).facts["policy"]["rule"] == "prod-to-dev"
    assert has_decision_buttons(plain) and "prod-to-dev" in card_text(plain)
    # The duration cap: longer than 48 h, or no end at all, is refused before anyone is asked.
    assert "at most 48 h" in answer_to(stack, f"share {world.encrypted_image} from prod to dev for 3d")
    assert "has no end" in answer_to(stack, f"share {world.encrypted_image} from prod to dev")
    # Auto-approval is still subject to every preflight check: an AWS-managed key is refused.
    managed = world.sandbox.create_image(rehearsal.PROD, rehearsal.REGION, name="payments-managed",
                                         kms_key_arn=world.sandbox.aws_managed_ebs_key(rehearsal.PROD, rehearsal.REGION), tags={"app": "payments"})
    assert "aws/ebs" in answer_to(stack, f"share {managed} from prod to dev for 1d").lower()
    assert len(stack.bot.store.find()) == 2


def test_two_distinct_owners(stack):
    image = stack.world.plain_image
    # The requester never counts: an owner asking leaves only one other owner of prod.
    assert "two distinct owners of `prod` besides you" in answer_to(stack, f"share {image} from prod to org", user=OWNER)
    stack.slash(f"share {image} from prod to org")
    root = stack.root_for(image)
    stack.settle()
    stack.click(OWNER, root)
    stack.settle()
    assert stack.bot.store.get(1).state == PENDING_APPROVAL
    # The same person twice (OWNER is named and is in S0PLATFORM too): counted once.
    before = len(stack.fake.ephemerals(OWNER))
    stack.click(OWNER, root)
    assert "already approved" in stack.ephemeral_for(OWNER, after=before)
    stack.settle()
    assert stack.bot.store.get(1).state == PENDING_APPROVAL and stack.bot.store.get(1).votes == {"prod": [OWNER]}
    assert "approved by" in card_text(current(stack, root)) and has_decision_buttons(current(stack, root))
    stack.click(CAROL, root)  # a second, different owner (through the group)
    stack.final_reply(root)
    stack.settle()
    done = stack.bot.store.get(1)
    assert done.state == SUCCEEDED and done.votes == {"prod": [OWNER, CAROL]} and done.approvals == {"prod": CAROL}


def test_break_glass_and_a_shorter_approval_ending_the_share_early(stack, clock):
    image = stack.world.plain_image
    stack.slash(f"share {image} from prod to dev for 2d", user=OWNER)
    root = stack.root_for(image)
    stack.settle()
    assert {"Approve for 1 h", "Approve for 1 d"} <= {e["text"]["text"] for b in root["blocks"] if b["type"] == "actions" for e in b["elements"] if "text" in e}
    stack.click(OWNER, root, action="amibot_approve_for_1h")  # their own request: break-glass, and for 1 h of the 2 d asked
    final = stack.final_reply(root)
    stack.settle()
    request = stack.bot.store.get(1)
    assert request.state == ACTIVE and request.params["break_glass_by"] == OWNER
    assert request.active_until - clock() <= 3600 and f"<@{OWNER}> approved it for 1 h (asked: 48 h)" in final["text"]
    assert any("break-glass" in (e["detail"] or "") for e in stack.bot.store.events(1))
    assert any("Break-glass" in text for text in dms(stack, CAROL))  # the other owner, told at once
    card = card_text(current(stack, root))
    assert "Break-glass" in card and "Shortened" in card
    clock.advance(3601)
    stack.tick()
    stack.settle()
    assert stack.bot.store.get(1).state == REVOKED


def test_reassign_and_escalation_once(stack, clock):
    image = stack.world.plain_image
    stack.slash(f"share {image} from prod to dev")
    root = stack.root_for(image)
    stack.settle()
    stack.slack.click(CAROL, stack.channel, root["ts"], "amibot_reassign", f"R-1|prod|{OWNER}")
    stack.settle()
    # One alert: the card copy, its lock-screen text saying why it comes (as posted; later edits keep the card current).
    assert [t for t in posted_dms(stack, OWNER) if t.startswith("Reassigned to you for prod: <@U0BOB> asks you to approve: share base-al2023 prod → dev")]
    assert len(posted_dms(stack, OWNER)) == 2  # the first ask, and the reassignment
    assert f"reassigned by <@{CAROL}> to <@{OWNER}>" in card_text(current(stack, root))
    # Escalation: nothing before 4 h; at 4 h once, with the same buttons; not again.
    clock.advance(3 * 3600)
    stack.tick()
    assert dms(stack, ESCALATION) == []
    clock.advance(3600 + 1)
    stack.tick()
    stack.tick()
    alerts = dms(stack, ESCALATION)  # one alert: the card with the same buttons, its lock-screen text saying why
    assert len(alerts) == 1 and "amibot_approve" in alerts[0]
    assert posted_dms(stack, ESCALATION)[0].startswith("Escalated (prod, nobody decided in 4 h): <@U0BOB> asks you to approve: share base-al2023")
    # The escalation group may decide.
    stack.click(ESCALATION, root)
    stack.final_reply(root)
    stack.settle()
    assert stack.bot.store.get(1).state == SUCCEEDED


def test_extend_an_active_time_boxed_share(stack, clock):
    image = stack.world.plain_image
    stack.slash(f"share {image} from prod to dev for 1d")
    root = stack.root_for(image)
    stack.settle()
    stack.click(OWNER, root)
    stack.final_reply(root)
    stack.settle()
    share = stack.bot.store.get(1)
    assert share.state == ACTIVE
    before = len(stack.fake.ephemerals(CAROL))
    stack.click(CAROL, current(stack, root), action="amibot_extend")  # not the requester
    assert "Only <@" in stack.ephemeral_for(CAROL, after=before)
    stack.click(REQUESTER, current(stack, root), action="amibot_extend")
    stack.settle()
    extension = stack.bot.store.get(2)
    assert extension.kind == "extend" and extension.state == PENDING_APPROVAL and extension.steps == []
    asked = stack.root_for("extend R-1")
    stack.click(OWNER, asked)  # approved like any other request
    stack.final_reply(asked)
    stack.settle()
    assert stack.bot.store.get(2).state == SUCCEEDED
    assert stack.bot.store.get(1).active_until == pytest.approx(share.active_until + 86400)
    clock.advance(86400 + 60)
    stack.tick()
    assert stack.bot.store.get(1).state == ACTIVE  # the old end passed; the share stays
