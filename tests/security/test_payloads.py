"""The attacker's view of the endpoint with Slack's signature in hand (issue 17,
finding 6): signed payloads of the wrong shape get 400, never 500."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import payload_shape

USER = {"id": "U0BOB", "team_id": "T0SANDBOX"}
TEAM = {"id": "T0SANDBOX"}

# The nine shapes that gave 500 before (of the 22 the security pass tried).
MALFORMED = [
    {"type": "block_actions", "user": USER, "team": TEAM, "actions": []},
    {"type": "view_submission", "team": TEAM, "view": {"id": "V1", "callback_id": "amibot_request_form", "state": {"values": {}}}},
    {"type": "view_submission", "user": USER, "team": TEAM, "view": {"id": "V1", "callback_id": "amibot_request_form", "state": "x"}},
    {"type": "view_submission", "user": USER, "team": TEAM, "view": {"id": "V1", "callback_id": "amibot_deny_form", "private_metadata": None, "state": {"values": {"reason": "x"}}}},
    {"type": "block_suggestion", "user": USER, "team": TEAM, "action_id": "ami", "block_id": "ami", "value": "", "view": []},
    {"type": "block_suggestion", "user": USER, "team": TEAM, "action_id": "ami", "block_id": "ami", "value": 7, "view": {"id": "V1"}},
    {"type": "block_actions", "user": USER, "team": TEAM, "actions": [{"action_id": "amibot_approve", "value": ["R-1"]}]},
    {"type": "view_submission", "user": "U0BOB", "team": TEAM, "view": {"id": "V1"}},
    {"type": "view_submission", "user": USER, "team": TEAM, "view": {"id": "V1", "callback_id": "amibot_deny_reason", "state": {"values": {}}}},
]


def _post(harness, payload=None, *, events_body=None):
    if events_body is not None:
        body = json.dumps(events_body).encode()
        headers = {"Content-Type": "application/json", **harness.slack.sign(body)}
    else:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **harness.slack.sign(body)}
    return harness.slack.post_raw(body, headers)


@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_signed_interactions_get_400(harness, payload):
    result = _post(harness, payload)
    assert result.status == 400, result.body


def test_an_event_that_is_a_string_gets_400(harness):
    result = _post(harness, events_body={"type": "event_callback", "team_id": "T0SANDBOX", "event": "app_home_opened", "event_id": "Ev1"})
    assert result.status == 400
    assert harness.slash("help").status == 200  # still serving


json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=8)
KEYS = ["type", "user", "team", "actions", "view", "value", "action_id", "trigger_id", "container", "message", "response_urls", "channel"]
payload = st.fixed_dictionaries({"type": st.sampled_from(["block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "other"])},
                                optional={k: st.one_of(json_value, st.just(USER), st.just([{"action_id": "amibot_approve", "value": "R-1"}]),
                                                       st.just({"id": "V1", "callback_id": "amibot_request_form", "state": {"values": {}}}))
                                          for k in KEYS if k != "type"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=payload)
def test_signed_payloads_of_any_shape_never_get_500(harness, payload):
    """The property over payload shapes (not only command texts): signed, any shape,
    the answer is Slack's 200, or 400/404 (or 403 for a payload claiming another
    workspace, bot.slack_identity), never 500."""
    result = _post(harness, {**payload, "token": secrets.token_hex(8)})  # distinct bodies: no replay refusal
    assert result.status in (200, 400, 403, 404), (result.status, payload)


@given(value=json_value)
def test_the_shape_checks_never_raise(value):
    if isinstance(value, dict):
        payload_shape.interactive_problem(value)
        payload_shape.events_problem(value)
