"""The App Home over the real HTTP endpoint: published when opened, a retried event
delivery has no second effect, refreshed after each change through the outbox, the
same Approve button as the root message, and Unshare asking for the usual approval."""

from __future__ import annotations

import json

from offline import rehearsal
from bot import forms
from bot.requests import ACTIVE, APPROVED, PENDING_APPROVAL, RUNNING, SUCCEEDED

OWNER, REQUESTER = rehearsal.OWNER, rehearsal.REQUESTER


def _publishes(harness, user):
    return [c for c in harness.fake.calls_to("views.publish") if c.params.get("user_id") == user]


def _home(harness, user) -> dict:
    return harness.fake.views[f"VHOME{user}"]


def _open_home(harness, user, **kwargs):
    result = harness.slack.home_opened(user, **kwargs)
    assert result.status == 200
    harness.settle()
    return result


def test_opening_the_home_publishes_it_and_a_retried_delivery_does_nothing(harness):
    _open_home(harness, OWNER, event_id="Ev0HOME1")
    assert len(_publishes(harness, OWNER)) == 1
    text = json.dumps(_home(harness, OWNER))
    assert "Waiting on you" in text and "Your recent requests" in text and "Active time-boxed shares" in text
    # Slack did not get our 200 in time and redelivers the same event.
    _open_home(harness, OWNER, event_id="Ev0HOME1", retry_num=1)
    _open_home(harness, OWNER, event_id="Ev0HOME1", retry_num=2)
    assert len(_publishes(harness, OWNER)) == 1
    assert harness.bot.store.first_delivery("Ev0HOME1") is False
    # The Messages tab is not the Home.
    _open_home(harness, OWNER, event_id="Ev0MSGS", tab="messages")
    assert len(_publishes(harness, OWNER)) == 1
    _open_home(harness, OWNER, event_id="Ev0HOME2")
    assert len(_publishes(harness, OWNER)) == 2
    # Its New request button opens the form.
    harness.slack.click_view(OWNER, f"VHOME{OWNER}", forms.OPEN_FORM_ACTION, "")
    harness.settle()
    assert [c.response["view"]["callback_id"] for c in harness.fake.calls_to("views.open")] == [forms.REQUEST_FORM_VIEW]


def test_the_home_shows_what_waits_and_its_approve_button_decides(harness):
    _open_home(harness, OWNER)
    _open_home(harness, REQUESTER)
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.settle()
    owner_home = _home(harness, OWNER)
    buttons = [e for b in owner_home["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {"amibot_approve", "amibot_deny", "amibot_view_changes"}  # the root message's ids
    assert all(b["value"] == "R-1" for b in buttons)
    # The same decision as on the card (issue 18): the Approve confirm with the risk line, the risk on the Home too.
    card_approve = next(e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "amibot_approve")
    home_approve = next(b for b in buttons if b["action_id"] == "amibot_approve")
    assert home_approve["confirm"] == card_approve["confirm"] and "Risk: dev gains launch access" in home_approve["confirm"]["text"]["text"]
    assert "*Risk:* `dev` gains launch access" in json.dumps(owner_home)
    requester_home = json.dumps(_home(harness, REQUESTER))
    assert "R-1" in requester_home and "amibot_approve" not in requester_home  # never their own
    assert "<!date^" in requester_home and "archives/" in requester_home  # date and thread link
    before = len(_publishes(harness, OWNER))
    # View exact changes from the Home (a click without a channel) opens the same modal.
    harness.slack.click_view(OWNER, f"VHOME{OWNER}", "amibot_view_changes", "R-1")
    harness.fake.wait_for(lambda: any(v.get("callback_id") == "amibot_exact_changes" for v in harness.fake.views.values()))

    result = harness.slack.click_view(OWNER, f"VHOME{OWNER}", "amibot_approve", "R-1")
    assert result.status == 200
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert len(_publishes(harness, OWNER)) > before
    assert "amibot_approve" not in json.dumps(_home(harness, OWNER))

    # Coalesced: however many changes wait in the outbox, one publish per person.
    notifier = harness.bot.notifier
    with notifier._lock:  # hold the sender while the changes pile up
        for _ in range(5):
            notifier.refresh_homes(1)
        notifier.publish_home(OWNER)
        before = len(_publishes(harness, OWNER)), len(_publishes(harness, REQUESTER))
    harness.settle()
    assert (len(_publishes(harness, OWNER)), len(_publishes(harness, REQUESTER))) == (before[0] + 1, before[1] + 1)
    assert not [r for r in harness.bot.store.outbox() if r["kind"] == "home" and r["state"] != "sent"]

    # A second click from a stale Home changes nothing and says why, on the Home.
    harness.slack.click_view(OWNER, f"VHOME{OWNER}", "amibot_approve", "R-1")
    harness.settle()
    assert "already" in json.dumps(_home(harness, OWNER))


def test_a_stranger_sees_nothing_to_decide(harness):
    _open_home(harness, rehearsal.STRANGER)
    harness.slash(f"share {harness.world.plain_image} from prod to dev")
    harness.root_for(harness.world.plain_image)
    harness.settle()
    # Not an owner, not the requester: their Home is not republished, and shows nothing to decide.
    assert len(_publishes(harness, rehearsal.STRANGER)) == 1
    _open_home(harness, rehearsal.STRANGER)
    assert "amibot_approve" not in json.dumps(_home(harness, rehearsal.STRANGER))


def test_unshare_on_the_home_asks_for_the_usual_approval(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev for 2d")
    root = harness.root_for(image)
    harness.click(OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == ACTIVE
    _open_home(harness, REQUESTER)
    home = _home(harness, REQUESTER)
    unshare = [b["accessory"] for b in home["blocks"] if (b.get("accessory") or {}).get("action_id") == forms.HOME_UNSHARE_ACTION]
    assert [u["value"] for u in unshare] == ["R-1"]

    harness.slack.click_view(REQUESTER, f"VHOME{REQUESTER}", forms.HOME_UNSHARE_ACTION, "R-1")
    harness.fake.wait_for(lambda: len(harness.bot.store.find()) == 2, timeout=20)
    harness.settle()
    unshare_request = harness.bot.store.get(2)
    assert unshare_request.kind == "unshare" and unshare_request.state == PENDING_APPROVAL
    assert unshare_request.command_text == f"unshare {image} from prod:{rehearsal.REGION} to dev"
    assert unshare_request.channel == harness.channel
    assert harness.bot.store.get(1).state == ACTIVE  # nothing removed before an owner approves
    assert "Asked: `unshare" in json.dumps(_home(harness, REQUESTER))
