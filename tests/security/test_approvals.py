"""The attacker's view of approvals (issue 17, finding 9): a correctly signed Approve
that claims another workspace, enterprise or app is refused before anything reads it."""

from __future__ import annotations

import json
import urllib.parse

from offline import rehearsal
from bot.requests import PENDING_APPROVAL
from bot.slack_identity import PayloadIds, SlackIdentity


def _approve_payload(harness, root, **claims):
    payload = {"type": "block_actions", "user": {"id": rehearsal.OWNER, "team_id": "T0SANDBOX"}, "api_app_id": "A0AMIBOT",
               "team": {"id": "T0SANDBOX", "domain": "sandbox"}, "enterprise": None, "is_enterprise_install": False,
               "trigger_id": "1.2.3", "container": {"type": "message", "message_ts": root["ts"], "channel_id": harness.channel},
               "channel": {"id": harness.channel}, "message": {"ts": root["ts"], "text": root["text"]},
               "actions": [{"action_id": "amibot_approve", "block_id": "decision", "value": harness.request_id(root), "type": "button"}]}
    payload.update(claims)
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return harness.slack.post_raw(body, {"Content-Type": "application/x-www-form-urlencoded", **harness.slack.sign(body)})


def test_an_approve_claiming_another_team_enterprise_or_app_is_refused(harness):
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.settle()
    assert harness.fake.calls_to("auth.test")  # asked once at start
    for claims in ({"team": {"id": "T0OTHER"}, "enterprise": {"id": "E0OTHER"}, "user": {"id": rehearsal.OWNER, "team_id": "T0OTHER"}},
                   {"api_app_id": "A0OTHERAPP"},
                   {"enterprise": {"id": "E0OTHER"}}):
        assert _approve_payload(harness, root, **claims).status == 403, claims
    harness.settle()
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    slash = harness.slack._post_form({"command": "/ami", "text": "help", "user_id": rehearsal.OWNER, "channel_id": harness.channel,
                                      "team_id": "T0OTHER", "api_app_id": "A0AMIBOT"})
    assert slash.status == 403
    assert _approve_payload(harness, root).status == 200  # the real one still works


def test_org_wide_installs_compare_the_enterprise_and_unknown_identity_refuses():
    answers = [RuntimeError("unreachable"), {"team_id": "T0A", "enterprise_id": "E0ORG", "app_id": "A0APP"}]
    now = [0.0]

    def auth_test():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    identity = SlackIdentity(auth_test, org_wide=True, clock=lambda: now[0])
    assert identity.learn() is False
    try:
        identity.problem(PayloadIds("T0A", "E0ORG", "A0APP"))
    except Exception as error:
        assert "auth.test" in str(error)
    else:
        raise AssertionError("an unknown identity must refuse")
    now[0] += 31
    assert identity.problem(PayloadIds("T0OTHERWS", "E0ORG", "A0APP")) is None  # another workspace of the org
    assert identity.problem(PayloadIds("T0A", "E0ELSE", "A0APP"))
    assert identity.problem(PayloadIds("T0A", None, "A0APP"))
    assert identity.problem(PayloadIds("T0A", "E0ORG", "A0ELSE"))
