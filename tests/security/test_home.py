"""The attacker's view of the App Home (issue 17): a Home event claiming another
workspace publishes nothing; a member's Unshare click on someone else's share asks
for nothing."""

from __future__ import annotations

import json

from offline import rehearsal
from bot import forms
from bot.requests import ACTIVE


def test_a_home_event_from_another_workspace_is_refused(harness):
    body = json.dumps({"type": "event_callback", "team_id": "T0OTHER", "api_app_id": "A0AMIBOT", "event_id": "Ev0FOREIGN",
                       "event": {"type": "app_home_opened", "user": rehearsal.OWNER, "tab": "home"}}).encode()
    result = harness.slack.post_raw(body, {"Content-Type": "application/json", **harness.slack.sign(body)})
    assert result.status == 403
    harness.settle()
    assert harness.fake.calls_to("views.publish") == []


def test_a_strangers_unshare_click_on_the_home_asks_for_nothing(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev for 2d")
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == ACTIVE
    harness.slack.home_opened(rehearsal.STRANGER)
    harness.settle()
    harness.slack.click_view(rehearsal.STRANGER, f"VHOME{rehearsal.STRANGER}", forms.HOME_UNSHARE_ACTION, "R-1")
    harness.settle()
    assert len(harness.bot.store.find()) == 1
    assert "Only the requester of R-1" in json.dumps(harness.fake.views[f"VHOME{rehearsal.STRANGER}"])
