"""The fake Slack must behave like Slack where the bot relies on it: checked with slack_sdk and Bolt."""

from __future__ import annotations

import json
import threading
import time
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from offline.slack import FakeSlack, SignedSlackClient

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BUTTONS = [
    {"type": "section", "block_id": "plan", "text": {"type": "mrkdwn", "text": "R-1: share ami-1"}},
    {"type": "actions", "block_id": "decision", "elements": [
        {"type": "button", "action_id": "approve", "value": "R-1", "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": "deny", "value": "R-1", "style": "danger",
         "text": {"type": "plain_text", "text": "Deny"}}]},
]


@pytest.fixture
def fake():
    with FakeSlack(usergroups={"S0PLATFORM": ["U0ALICE", "U0BOB"]},
                   channels_bot_cannot_post={"G0SECRET"}) as f:
        yield f


@pytest.fixture
def client(fake):
    return WebClient(base_url=fake.api_url, token="xoxb-test")


class Recorder:
    """A tiny endpoint standing in for the bot: records each request, answers 200."""

    def __init__(self):
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"

    def form(self, i=-1) -> dict:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.requests[i]["body"].decode()).items()}


@pytest.fixture
def endpoint():
    rec = Recorder()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_auth_test_answers_what_bolt_needs(fake, client):
    resp = client.auth_test()
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == ("UAMIBOT", "BAMIBOT", "T0SANDBOX")
    assert resp["user"] and resp["team"] and resp["url"]
    assert fake.calls_to("auth.test")[0].token == "xoxb-test"


def test_post_reply_broadcast_and_update(fake, client):
    root = client.chat_postMessage(channel="C0OPS", text="R-1 pending", blocks=BUTTONS)
    reply = client.chat_postMessage(channel="C0OPS", thread_ts=root["ts"], text="step 1")
    final = client.chat_postMessage(channel="C0OPS", thread_ts=root["ts"], text="done",
                                    reply_broadcast=True)
    assert root["channel"] == "C0OPS" and root["message"]["text"] == "R-1 pending"
    assert root["ts"] < reply["ts"] < final["ts"]
    assert float(root["ts"]) < float(reply["ts"]) and len(root["ts"].split(".")[1]) == 6

    client.chat_update(channel="C0OPS", ts=root["ts"], text="R-1 approved", blocks=BUTTONS[:1])
    shown = fake.messages("C0OPS")
    assert [m["text"] for m in shown] == ["R-1 approved", "done"]  # the broadcast shows in the channel
    assert shown[0]["blocks"] == BUTTONS[:1] and shown[0]["thread_ts"] == root["ts"]
    assert shown[0]["user"] == "UAMIBOT" and shown[1]["reply_broadcast"] is True
    assert [m["text"] for m in fake.thread("C0OPS", root["ts"])] == ["step 1", "done"]

    client.chat_update(channel="C0OPS", ts=root["ts"], text="R-1 done")  # blocks kept when omitted
    assert fake.message("C0OPS", root["ts"])["blocks"] == BUTTONS[:1]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_form_encoded_call_decodes_json_fields_and_token_param(fake):
    plain = WebClient(base_url=fake.api_url)  # no token: sent as a form field instead
    plain.api_call("chat.postMessage", params={"token": "xoxb-form", "channel": "C0OPS", "text": "hi",
                                               "blocks": json.dumps(BUTTONS), "reply_broadcast": "false"})
    call = fake.calls_to("chat.postMessage")[0]
    assert call.token == "xoxb-form" and call.params["blocks"] == BUTTONS and "token" not in call.params
    assert fake.messages("C0OPS")[0]["blocks"] == BUTTONS


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_errors_slack_would_give(fake, client):
    def error(fn, **kw):
        with pytest.raises(SlackApiError) as err:
            fn(**kw)
        return err.value.response["error"]

    assert error(client.chat_postMessage, channel="G0SECRET", text="x") == "not_in_channel"
    assert error(client.chat_postMessage, channel="C0OPS") == "no_text"
    assert error(client.chat_postMessage, channel="C0OPS", text="x",
                 blocks=[{"type": "divider"}] * 51) == "invalid_blocks"
    dup = [{"type": "actions", "elements": [BUTTONS[1]["elements"][0]] * 2}]
    assert error(client.chat_postMessage, channel="C0OPS", text="x", blocks=dup) == "invalid_blocks"
    assert error(client.api_call, api_method="files.upload") == "unknown_method"
    assert error(WebClient(base_url=fake.api_url).auth_test) == "not_authed"
    assert error(client.usergroups_users_list, usergroup="S0NOPE") == "no_such_subteam"
    assert [c.method for c in fake.calls][-2:] == ["auth.test", "usergroups.users.list"]
    assert fake.messages("C0OPS") == [] and fake.messages("G0SECRET") == []


def test_ephemeral_views_users_groups_channels(fake, client):
    eph = client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
    assert eph["message_ts"] and fake.calls_to("chat.postEphemeral")[0].params["user"] == "U0ALICE"
    assert fake.ephemerals("U0ALICE")[0]["text"] == "only you" and fake.ephemerals("U0BOB") == []

    modal = {"type": "modal", "callback_id": "deny_reason", "title": {"type": "plain_text", "text": "Deny"},
             "blocks": [], "private_metadata": "R-1"}
    opened = client.views_open(trigger_id="t-unknown", view=modal)["view"]
    assert opened["id"] and opened["callback_id"] == "deny_reason"
    updated = client.views_update(view_id=opened["id"], view={**modal, "private_metadata": "R-2"})["view"]
    assert updated["id"] == opened["id"] and fake.views[opened["id"]]["private_metadata"] == "R-2"
    home = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []})["view"]
    assert home["id"] and fake.views[home["id"]]["type"] == "home"

    assert client.usergroups_users_list(usergroup="S0PLATFORM")["users"] == ["U0ALICE", "U0BOB"]
    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE" and user["name"] and user["tz"]
    assert client.conversations_info(channel="C0OPS")["channel"]["is_member"] is True
    assert client.conversations_info(channel="G0SECRET")["channel"]["is_member"] is False


def test_rate_limit_is_retried_by_slack_sdk(fake, monkeypatch):
    slept: list[float] = []
    # Honour Retry-After without spending the 2-4 s: record the handler's sleeps instead.
    monkeypatch.setattr(builtin_handlers, "time", types.SimpleNamespace(sleep=slept.append))
    fake.script_rate_limit("chat.postMessage", times=2, retry_after=1)
    client = WebClient(base_url=fake.api_url, token="xoxb-test",
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    assert client.chat_postMessage(channel="C0OPS", text="hello")["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert all(c.response == {"ok": False, "error": "ratelimited"} for c in fake.calls[:2])
    assert len(slept) == 2 and all(1 <= s < 2 for s in slept)
    assert len(fake.messages("C0OPS")) == 1


def test_rate_limit_without_handler_raises_with_retry_after(fake, client):
    fake.script_rate_limit("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts="1.0", text="x")
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "7"
    fake.script_error("chat.update", "internal_error", status=500)
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C0OPS", ts="1.0", text="x")
    assert [c.status for c in fake.calls] == [429, 500]


def test_signature_verifies_with_slack_sdk(fake):
    now = 1_700_000_000
    signer = SignedSlackClient("http://127.0.0.1:9/", SECRET, fake, clock=lambda: now)
    body = b"command=%2Fami&text=help"
    headers = signer.sign(body)
    assert headers["X-Slack-Request-Timestamp"] == str(now)
    assert SignatureVerifier(SECRET, clock=types.SimpleNamespace(now=lambda: now)).is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)  # a replay from 2023
    assert not SignatureVerifier("other").is_valid_request(body, signer.sign(body, int(time.time())))
    assert not SignatureVerifier(SECRET).is_valid_request(body + b"x", signer.sign(body, int(time.time())))


def test_slash_is_form_encoded_and_signed(fake, endpoint):
    signer = SignedSlackClient(endpoint.url, SECRET, fake)
    result = signer.slash("U0ALICE", "C0OPS", "share ami-1 from prod to dev", user_name="alice")
    assert result.status == 200 and result.body == "{}" and result.elapsed > 0
    req = endpoint.requests[0]
    assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert SignatureVerifier(SECRET).is_valid_request(req["body"], req["headers"])
    form = endpoint.form()
    assert {k: form[k] for k in ("command", "text", "user_id", "user_name", "channel_id", "team_id")} == {
        "command": "/ami", "text": "share ami-1 from prod to dev", "user_id": "U0ALICE",
        "user_name": "alice", "channel_id": "C0OPS", "team_id": "T0SANDBOX"}
    assert {"token", "team_domain", "channel_name", "api_app_id", "trigger_id"} <= form.keys()
    assert form["response_url"] == signer.last_response_url and form["response_url"].startswith(fake.base_url)


def test_click_carries_the_latest_message(fake, client, endpoint):
    ts = client.chat_postMessage(channel="C0OPS", text="R-1 pending", blocks=BUTTONS)["ts"]
    client.chat_update(channel="C0OPS", ts=ts, text="R-1 waiting for dev", blocks=BUTTONS)
    signer = SignedSlackClient(endpoint.url, SECRET, fake)
    assert signer.click("U0BOB", "C0OPS", ts, "approve", "R-1").status == 200
    req = endpoint.requests[0]
    assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert SignatureVerifier(SECRET).is_valid_request(req["body"], req["headers"])
    payload = json.loads(endpoint.form()["payload"])
    assert payload["type"] == "block_actions" and payload["user"]["id"] == "U0BOB"
    assert payload["container"] == {"type": "message", "message_ts": ts, "channel_id": "C0OPS",
                                    "is_ephemeral": False}
    assert payload["message"]["text"] == "R-1 waiting for dev" and payload["message"]["blocks"] == BUTTONS
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "approve", "decision", "R-1", "button")
    assert action["text"]["text"] == "Approve" and action["action_ts"]
    assert payload["channel"]["id"] == "C0OPS" and payload["team"]["id"] == "T0SANDBOX"
    assert payload["response_url"] == signer.last_response_url and payload["trigger_id"]


def test_response_urls_record_and_act_like_slack(fake, client, endpoint):
    ts = client.chat_postMessage(channel="C0OPS", text="R-1 pending", blocks=BUTTONS)["ts"]
    signer = SignedSlackClient(endpoint.url, SECRET, fake)
    signer.click("U0EVE", "C0OPS", ts, "approve", "R-1")
    WebhookClient(signer.last_response_url).send(text="You are not an owner of prod.")
    assert fake.responses_to(signer.last_response_url)[0].params["text"].startswith("You are not")
    assert fake.ephemerals("U0EVE")[0]["text"] == "You are not an owner of prod."
    WebhookClient(signer.last_response_url).send(text="approved", replace_original=True)
    assert fake.message("C0OPS", ts)["text"] == "approved" and fake.message("C0OPS", ts)["blocks"] == []


def test_views_trigger_once_and_submission_returns_metadata(fake, client, endpoint, monkeypatch):
    signer = SignedSlackClient(endpoint.url, SECRET, fake)
    signer.slash("U0ALICE", "C0OPS", "")
    modal = {"type": "modal", "callback_id": "request", "title": {"type": "plain_text", "text": "AMI"},
             "blocks": [], "private_metadata": "C0OPS"}
    client.views_open(trigger_id=signer.last_trigger_id, view=modal)
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(trigger_id=signer.last_trigger_id, view=modal)
    monkeypatch.setattr("offline.slack.views.TRIGGER_TTL_SECONDS", -1.0)
    signer.slash("U0ALICE", "C0OPS", "")
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=signer.last_trigger_id, view=modal)

    signer.submit_view("U0ALICE", "request", {"op": {"op": {"type": "static_select", "selected_option":
                                                            {"value": "copy"}}}, "ami": {"ami": "ami-1"}})
    view = json.loads(endpoint.form()["payload"])["view"]
    assert view["callback_id"] == "request" and view["private_metadata"] == "C0OPS"
    assert view["state"]["values"]["ami"]["ami"] == {"type": "plain_text_input", "value": "ami-1"}
    assert view["state"]["values"]["op"]["op"]["selected_option"]["value"] == "copy"


def test_event_delivery_is_json_and_signed(fake, endpoint):
    signer = SignedSlackClient(endpoint.url, SECRET, fake)
    signer.event({"type": "app_home_opened", "user": "U0ALICE"}, retry_num=1)
    req = endpoint.requests[0]
    assert req["headers"]["Content-Type"] == "application/json" and req["headers"]["X-Slack-Retry-Num"] == "1"
    assert SignatureVerifier(SECRET).is_valid_request(req["body"], req["headers"])
    assert json.loads(req["body"])["event"]["type"] == "app_home_opened"


def test_post_raw_returns_errors_instead_of_raising(fake, endpoint):
    result = SignedSlackClient(fake.base_url + "/nowhere", SECRET, fake).post_raw(b"x", {})
    assert result.status == 404 and result.json()["error"] == "not_found"


def test_wait_for_returns_value_or_dumps_calls(fake, client):
    client.chat_postMessage(channel="C0OPS", text="hello")
    assert fake.wait_for(lambda: fake.messages("C0OPS"))[0]["text"] == "hello"
    with pytest.raises(AssertionError, match="chat.postMessage"):
        fake.wait_for(lambda: fake.messages("C0ELSE"), timeout=0.05)


def test_bolt_app_round_trip(fake):
    """Bolt, built as the bot builds it, talks to the fake and accepts the signed requests."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = App(signing_secret=SECRET, client=WebClient(base_url=fake.api_url, token="xoxb-test"),
              token_verification_enabled=False, process_before_response=True)

    @app.command("/ami")
    def ami(ack, say, respond, command):
        ack()
        say(f"R-1 requested by <@{command['user_id']}>", blocks=BUTTONS)
        respond("Request R-1 created.")

    @app.action("approve")
    def approve(ack, body, client):
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="R-1 approved")

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        signer = SignedSlackClient(f"http://127.0.0.1:{server.server_port}/slack/events", SECRET, fake)
        assert signer.slash("U0ALICE", "C0OPS", "share ami-1").status == 200
        assert fake.ephemerals("U0ALICE")[0]["text"] == "Request R-1 created."
        root = fake.messages("C0OPS")[0]
        assert signer.click("U0BOB", "C0OPS", root["ts"], "approve", "R-1").status == 200
        assert fake.message("C0OPS", root["ts"])["text"] == "R-1 approved"
        assert fake.calls_to("chat.update")[0].params["team_id"] == "T0SANDBOX"
        bad = signer.post_raw(b"command=%2Fami", {**signer.sign(b"other"),
                                                   "Content-Type": "application/x-www-form-urlencoded"})
        assert bad.status == 401
    finally:
        server.shutdown()
        server.server_close()


def test_dms_joins_and_refusals_answer_as_slack_does():
    """conversations.open / conversations.join shapes (docs.slack.dev reference pages),
    and the errors a root message can meet."""
    with FakeSlack(public_channels_not_joined={"C0PUB"}, archived_channels={"C0OLD"}, unknown_channels={"C0GONE"}) as fake:
        client = WebClient(base_url=fake.api_url, token="xoxb-test")
        opened = client.conversations_open(users="U0ALICE")
        assert opened["channel"]["id"] == "D0ALICE" and opened["no_op"] is False
        assert client.conversations_open(users="U0ALICE")["already_open"] is True
        assert client.chat_postMessage(channel="D0ALICE", text="hi")["ok"]
        assert client.conversations_info(channel="D0ALICE")["channel"]["is_im"] is True
        for channel, error in (("D0NOBODY", "channel_not_found"), ("C0PUB", "not_in_channel"), ("C0OLD", "is_archived"), ("C0GONE", "channel_not_found")):
            with pytest.raises(SlackApiError) as info:
                client.chat_postMessage(channel=channel, text="x")
            assert info.value.response["error"] == error
        assert client.conversations_join(channel="C0PUB")["channel"]["is_member"] is True
        assert client.chat_postMessage(channel="C0PUB", text="now in")["ok"]
        assert client.conversations_join(channel="C0PUB")["warning"] == "already_in_channel"
        with pytest.raises(SlackApiError) as info:
            client.conversations_join(channel="G0PRIVATE")
        assert info.value.response["error"] == "method_not_supported_for_channel_type"
        fake.scopes.discard("channels:join")
        with pytest.raises(SlackApiError) as info:
            client.conversations_join(channel="C0OTHER")
        assert info.value.response["error"] == "missing_scope" and info.value.response["needed"] == "channels:join"
        assert client.auth_test()["user"] == "amibot"


def test_files_upload_v2_goes_over_the_three_calls_with_slacks_checks(fake, client):
    """files_upload_v2 = files.getUploadURLExternal, the bytes to the upload URL,
    files.completeUploadExternal (docs.slack.dev/reference/methods/files.completeUploadExternal)."""
    import urllib.error
    import urllib.request

    def error(fn, **kw):
        with pytest.raises(SlackApiError) as err:
            fn(**kw)
        return err.value.response["error"]

    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    sent = client.files_upload_v2(channel=dm, content=b"a,b\n1,2\n", filename="x.csv", title="x.csv", initial_comment="here")
    assert sent["file"]["ims"] == [dm]
    (record,) = fake.files(dm)
    assert record["content"] == b"a,b\n1,2\n" and record["name"] == "x.csv" and record["initial_comment"] == "here"
    assert [c.method for c in fake.calls][-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    # What Slack refuses.
    assert error(client.files_getUploadURLExternal, filename="", length=3) == "invalid_arguments"
    assert error(client.files_getUploadURLExternal, filename="x.csv", length=0) == "missing_argument"
    got = client.files_getUploadURLExternal(filename="x.csv", length=3)
    assert error(client.files_completeUploadExternal, files=[{"id": got["file_id"]}], channel_id=dm) == "file_not_found"  # not uploaded yet
    urllib.request.urlopen(urllib.request.Request(got["upload_url"], data=b"abc", method="POST")).read()
    with pytest.raises(urllib.error.HTTPError):  # an upload URL works once
        urllib.request.urlopen(urllib.request.Request(got["upload_url"], data=b"abc", method="POST"))
    assert error(client.files_completeUploadExternal, files=[{"id": got["file_id"]}], channel_id="D0NOTOPENED") == "channel_not_found"
    assert error(client.files_completeUploadExternal, files=[{"id": got["file_id"]}], channel_id="G0SECRET") == "not_in_channel"
    assert error(client.api_call, api_method="files.completeUploadExternal", params={"channel_id": dm}) == "invalid_arguments"
    assert error(WebClient(base_url=fake.api_url).files_getUploadURLExternal, filename="x", length=1) == "not_authed"
    fake.scopes.discard("files:write")
    assert error(client.files_getUploadURLExternal, filename="x.csv", length=3) == "missing_scope"
    assert len(fake.files()) == 1
