"""The fake Slack's modal, Home and lookup methods, and the payloads the signed client
sends for the form and the Home, as Slack sends them."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from offline.slack import FakeSlack, SignedSlackClient
from tests.offline.test_slack import SECRET, endpoint  # noqa: F401 (a fixture)


@pytest.fixture
def fake():
    with FakeSlack(channel_members={"C0OPS": [f"U{i:04d}" for i in range(2500)]}) as f:
        yield f


@pytest.fixture
def client(fake):
    return WebClient(base_url=fake.api_url, token="xoxb-test")


def test_permalink_of_a_posted_message(fake, client):
    root = client.chat_postMessage(channel="C0OPS", text="R-1")
    link = client.chat_getPermalink(channel="C0OPS", message_ts=root["ts"])
    assert link["permalink"] == f"https://sandbox.slack.com/archives/C0OPS/p{root['ts'].replace('.', '')}"
    with pytest.raises(SlackApiError) as err:
        client.chat_getPermalink(channel="C0OPS", message_ts="1.000001")
    assert err.value.response["error"] == "message_not_found"


def test_conversations_members_paginates_like_slack(client):
    first = client.conversations_members(channel="C0OPS", limit=1000)
    assert len(first["members"]) == 1000 and first["response_metadata"]["next_cursor"]
    everyone = [m for page in client.conversations_members(channel="C0OPS", limit=1000) for m in page["members"]]
    assert len(everyone) == 2500 and len(set(everyone)) == 2500
    with pytest.raises(SlackApiError) as err:
        client.conversations_members(channel="C0NOPE")
    assert err.value.response["error"] == "channel_not_found"


def test_views_refuse_options_over_slacks_limits(client):
    too_long = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": [
        {"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "l"}, "element": {
            "type": "static_select", "action_id": "a", "options": [{"text": {"type": "plain_text", "text": "x" * 76}, "value": "v"}]}}]}
    with pytest.raises(SlackApiError) as err:
        client.views_publish(user_id="U0ALICE", view={**too_long, "type": "home"})
    assert "option text over 75" in json.dumps(err.value.response["errors"])
    too_many = json.loads(json.dumps(too_long))
    too_many["blocks"][0]["element"]["options"] = [{"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)]
    with pytest.raises(SlackApiError):
        client.views_publish(user_id="U0ALICE", view={**too_many, "type": "home"})


def _payload(rec) -> dict:
    return json.loads(urllib.parse.parse_qs(rec.requests[-1]["body"].decode())["payload"][0])


def test_shortcut_suggest_and_submission_payloads(fake, client, endpoint):  # noqa: F811
    slack = SignedSlackClient(endpoint.url, SECRET, fake)
    slack.shortcut("U0BOB", "amibot_request")
    shortcut = _payload(endpoint)
    assert shortcut["type"] == "shortcut" and shortcut["callback_id"] == "amibot_request" and shortcut["trigger_id"]
    assert "channel" not in shortcut  # a global shortcut has no conversation

    view = client.views_open(trigger_id=shortcut["trigger_id"], view={
        "type": "modal", "callback_id": "form", "title": {"type": "plain_text", "text": "Form"}, "submit": {"type": "plain_text", "text": "Send"}, "blocks": [
            {"type": "input", "block_id": "channel", "label": {"type": "plain_text", "text": "Channel"},
             "element": {"type": "conversations_select", "action_id": "channel", "response_url_enabled": True}}]})["view"]
    slack.suggest("U0BOB", "ami", "web", view_id=view["id"], values={"source": {"source": {"type": "static_select", "selected_option": {"value": "prod"}}}})
    suggestion = _payload(endpoint)
    assert suggestion["type"] == "block_suggestion" and suggestion["value"] == "web"
    assert suggestion["container"] == {"type": "view", "view_id": view["id"]}
    assert suggestion["view"]["state"]["values"]["source"]["source"]["selected_option"]["value"] == "prod"

    slack.submit_view("U0BOB", "form", {"channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0OPS"}}})
    submission = _payload(endpoint)
    assert submission["type"] == "view_submission" and submission["view"]["id"] == view["id"]
    urls = submission["response_urls"]
    assert [(u["block_id"], u["action_id"], u["channel_id"]) for u in urls] == [("channel", "channel", "C0OPS")]
    assert urls[0]["response_url"].startswith(fake.base_url)


def test_home_opened_event_and_its_retry(fake, client, endpoint):  # noqa: F811
    slack = SignedSlackClient(endpoint.url, SECRET, fake)
    slack.home_opened("U0ALICE", event_id="Ev01")
    first = json.loads(endpoint.requests[-1]["body"])
    assert first["type"] == "event_callback" and first["event_id"] == "Ev01"
    assert first["event"]["type"] == "app_home_opened" and first["event"]["tab"] == "home" and "view" not in first["event"]
    assert "X-Slack-Retry-Num" not in endpoint.requests[-1]["headers"]
    client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []})
    slack.home_opened("U0ALICE", event_id="Ev01", retry_num=1)
    again = json.loads(endpoint.requests[-1]["body"])
    assert again["event_id"] == "Ev01" and again["event"]["view"]["id"] == "VHOMEU0ALICE"
    assert endpoint.requests[-1]["headers"]["X-Slack-Retry-Num"] == "1"


def test_views_update_is_hash_checked_limited_and_triggers_expire_on_the_test_clock():
    """What Slack enforces for views (https://api.slack.com/methods/views.update): an
    update naming an old hash fails hash_conflict, each stored view gets a new hash, 100
    blocks at most, an initial option must be one of the options, an unknown view is
    not_found; a trigger_id expires 3 s after it was issued, on the fake's clock."""
    from offline.clock import Clock

    clock = Clock(at=1_700_000_000.0)
    with FakeSlack(clock=clock) as fake:
        client = WebClient(base_url=fake.api_url, token="xoxb-test")
        menu = {"type": "static_select", "action_id": "op", "options": [{"text": {"type": "plain_text", "text": "share"}, "value": "share"}]}
        view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "submit": {"type": "plain_text", "text": "Go"},
                "blocks": [{"type": "input", "block_id": "op", "dispatch_action": True, "label": {"type": "plain_text", "text": "Op"}, "element": menu}]}
        opened = client.views_open(trigger_id=fake.new_trigger_id(), view=view)["view"]
        updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=view)["view"]
        assert updated["hash"] != opened["hash"]
        with pytest.raises(SlackApiError, match="hash_conflict"):
            client.views_update(view_id=opened["id"], hash=opened["hash"], view=view)  # the older look at it
        assert client.views_update(view_id=opened["id"], view=view)["ok"]  # no hash: no check, as in Slack
        with pytest.raises(SlackApiError, match="not_found"):
            client.views_update(view_id="V0NOPE", view=view)
        too_many = {**view, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": str(i)}} for i in range(101)]}
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            client.views_update(view_id=opened["id"], view=too_many)
        stray = {**view, "blocks": [{**view["blocks"][0], "element": {**menu, "initial_option": {"text": {"type": "plain_text", "text": "tag"}, "value": "tag"}}}]}
        with pytest.raises(SlackApiError) as err:
            client.views_update(view_id=opened["id"], view=stray)
        assert "initial option is not one of the options" in json.dumps(err.value.response["errors"])
        trigger = fake.new_trigger_id()
        clock.advance(3.5)  # no real time passes: only the test clock moves
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            client.views_open(trigger_id=trigger, view=view)
        fresh = fake.new_trigger_id()
        clock.advance(2.5)
        assert client.views_open(trigger_id=fresh, view=view)["ok"]


def test_views_refuse_what_the_modal_reference_refuses(client):
    """https://docs.slack.dev/reference/views/modal-views: private_metadata at most 3000
    characters, a modal with inputs needs submit; a button's value at most 2000."""
    field = {"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "l"}, "element": {"type": "plain_text_input", "action_id": "a"}}
    base = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "submit": {"type": "plain_text", "text": "Go"}, "blocks": [field]}
    assert client.views_publish(user_id="U0ALICE", view={**base, "type": "home", "private_metadata": "x" * 3000})["ok"]
    for bad, words in (({**base, "private_metadata": "x" * 3001}, "private_metadata over 3000"),
                       ({k: v for k, v in base.items() if k != "submit"}, "needs submit"),
                       ({**base, "blocks": [{"type": "actions", "elements": [{"type": "button", "action_id": "b", "value": "v" * 2001,
                                                                             "text": {"type": "plain_text", "text": "b"}}]}]}, "value over 2000")):
        with pytest.raises(SlackApiError) as err:
            client.views_update(view_id="VHOMEU0ALICE", view=bad)
        assert words in json.dumps(err.value.response["errors"])
