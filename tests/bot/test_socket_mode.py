"""`amibot serve --socket-mode` offline: the bot's real Socket Mode path (Bolt's
SocketModeHandler on slack-sdk's built-in WebSocket client) against FakeSocketMode,
a loopback RFC 6455 server that speaks Slack's envelopes, with FakeSlack as the Web API."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest

from offline import rehearsal
from tests.conftest import bot_options, has_decision_buttons
from bot.app import Amibot
from offline.slack import FakeSlack, FakeSocketMode, HttpResult, SignedSlackClient
from bot.messages import APPROVE_ACTION
from bot.requests import SUCCEEDED

APP_TOKEN = "xapp-1-A0AMIBOT-1-test"


class SocketModeSlack(SignedSlackClient):
    """SignedSlackClient's payloads (slash, click, submit_view, suggest, event), delivered
    as Socket Mode envelopes instead of signed POSTs; the ack comes back as an HttpResult
    whose body is the ack's ``payload`` (empty for a bare ack)."""

    def __init__(self, server: FakeSocketMode, fake: FakeSlack):
        super().__init__("socket-mode:", "unused: Socket Mode is not signed", fake)
        self.server = server
        self.acks: list[dict] = []

    def post_raw(self, body: bytes, headers: dict) -> HttpResult:
        started = time.monotonic()
        if headers.get("Content-Type", "").startswith("application/json"):
            kind, payload, accepts = "events_api", json.loads(body), False
        else:
            fields = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
            if "payload" in fields:
                payload = json.loads(fields["payload"])
                kind, accepts = "interactive", payload["type"] in ("view_submission", "block_suggestion")
            else:  # a slash command: the form fields, as strings
                kind, payload, accepts = "slash_commands", fields, True
        ack = self.server.request(kind, payload, accepts_response_payload=accepts, timeout=3.0)
        self.acks.append(ack)
        text = json.dumps(ack["payload"]) if "payload" in ack else ""
        return HttpResult(200, text, {}, time.monotonic() - started)


@pytest.fixture
def socket_mode(sandbox, fake_slack, tmp_path):
    """The seeded sandbox, the bot serving Socket Mode in a thread, and Slack's side."""
    world = rehearsal.seed(sandbox)
    threads_before = set(threading.enumerate())
    server = FakeSocketMode(fake_slack).start()
    config = rehearsal.sandbox_config(str(tmp_path / "amibot.db"), fake_slack.api_url,
                                      env={"SLACK_APP_TOKEN": APP_TOKEN})
    assert config.slack.app_token == APP_TOKEN
    rehearsal.enforce_generated_policies(sandbox, config)
    bot = Amibot(config, **bot_options(time.time))  # on real time, as before
    bot.start()
    serving = threading.Thread(target=bot.serve_socket_mode, name="amibot-serve-socket-mode", daemon=True)
    serving.start()
    state = {"stopped": False}

    def shutdown() -> None:
        if state["stopped"]:
            return
        state["stopped"] = True
        bot.stop()  # closes the Socket Mode client (no reconnect), then the worker and notifier
        serving.join(5)
        bot.bolt.listener_runner.listener_executor.shutdown(wait=True)  # Bolt's own listener threads
        server.stop()

    slack = SocketModeSlack(server, fake_slack)
    try:
        server.wait_for_connection(timeout=5)
        yield dict(bot=bot, server=server, slack=slack, fake=fake_slack, world=world, serving=serving,
                   shutdown=shutdown, threads_before=threads_before)
    finally:
        shutdown()


def test_socket_mode_help_share_and_approve(socket_mode):
    bot, server, slack, fake = (socket_mode[k] for k in ("bot", "server", "slack", "fake"))
    channel = rehearsal.CHANNEL

    # The connection: apps.connections.open with the app-level token through the fake's
    # base_url, a WebSocket handshake on the URL it returned, and pings answered.
    opens = fake.calls_to("apps.connections.open")
    assert len(opens) == 1 and opens[0].token == APP_TOKEN and opens[0].response["ok"]
    assert opens[0].response["url"].startswith(f"ws://127.0.0.1:{server.port}/link/?ticket=")
    assert server.connections == 1 and not server.rejected
    fake.wait_for(lambda: server.pings >= 1, timeout=3)
    assert bot.healthy()

    # /ami help, as Slack delivers a slash command over Socket Mode: the form fields
    # as strings in `payload`, and the ack carries the response in its own `payload`.
    envelope_id = server.deliver("slash_commands", {
        "token": slack.verification_token, "team_id": fake.team_id, "team_domain": "sandbox",
        "channel_id": channel, "channel_name": channel.lower(), "user_id": rehearsal.REQUESTER,
        "user_name": rehearsal.REQUESTER.lower(), "command": "/ami", "text": "help",
        "api_app_id": server.app_id, "is_enterprise_install": "false",
        "response_url": fake.new_response_url(channel, None, rehearsal.REQUESTER),
        "trigger_id": fake.new_trigger_id()}, accepts_response_payload=True)
    ack = server.wait_for_ack(envelope_id, timeout=3.0)
    assert ack["envelope_id"] == envelope_id
    assert "/ami share" in ack["payload"]["text"] and "/ami help" in ack["payload"]["text"], ack
    assert ack["payload"].get("response_type") == "ephemeral"

    # A real share, approved by prod's owner with a block_actions click over the socket.
    image = socket_mode["world"].plain_image
    result = slack.slash(rehearsal.REQUESTER, channel, f"share {image} from prod to dev")
    assert result.status == 200 and "Checking" in result.json()["text"], result.body
    root = fake.wait_for(lambda: next((m for m in fake.messages(channel)
                                       if image in (m.get("text") or "") and m.get("thread_ts") in (None, m["ts"])), None), 10)
    request_id = root["text"].split(":")[0]
    assert has_decision_buttons(root)

    click = slack.click(rehearsal.OWNER, channel, root["ts"], APPROVE_ACTION, request_id)
    assert click.status == 200 and click.body == ""  # a bare ack: {"envelope_id": ...}
    assert set(slack.acks[-1]) == {"envelope_id"}

    final = fake.wait_for(lambda: next((m for m in fake.thread(channel, root["ts"]) if m.get("reply_broadcast")), None), 30)
    assert f"<@{rehearsal.REQUESTER}>" in final["text"], final
    bot.worker.drain()
    assert bot.store.get(1).state == SUCCEEDED
    dev_ec2 = socket_mode["world"].sandbox.session(rehearsal.DEV, rehearsal.REGION).client("ec2")
    assert dev_ec2.describe_images(ImageIds=[image])["Images"]
    # Every envelope was acked once, on the one connection, with no reconnect.
    assert [m["envelope_id"] for m in server.received] == [envelope_id] + [a["envelope_id"] for a in slack.acks]
    assert len(fake.calls_to("apps.connections.open")) == 1 and server.connections == 1

    # Clean shutdown: serve_socket_mode returns, the client hangs up, and no thread
    # started for this test outlives it.
    socket_mode["shutdown"]()
    assert not socket_mode["serving"].is_alive()
    assert server.open_connections == 0
    deadline = time.monotonic() + 5
    while (leaked := [t for t in threading.enumerate() if t not in socket_mode["threads_before"] and t.is_alive()]) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not leaked, leaked


def test_socket_mode_envelopes_get_the_endpoints_shape_and_workspace_checks(socket_mode):
    """No signature over a WebSocket, but the same refusals as the HTTP endpoint: a
    slash command claiming another workspace (403) and a click without a user (400)
    reach no listener and are not acknowledged."""
    bot, server, fake = socket_mode["bot"], socket_mode["server"], socket_mode["fake"]

    def refused(status: str) -> float:
        return bot.metrics.http_requests.labels(status)._value.get()

    foreign = server.deliver("slash_commands", {
        "team_id": "T0FOREIGN", "channel_id": rehearsal.CHANNEL, "user_id": rehearsal.REQUESTER, "command": "/ami",
        "text": "help", "api_app_id": server.app_id, "response_url": fake.new_response_url(rehearsal.CHANNEL, None, rehearsal.REQUESTER),
        "trigger_id": fake.new_trigger_id()}, accepts_response_payload=True)
    fake.wait_for(lambda: refused("403") >= 1, timeout=10)
    userless = server.deliver("interactive", {"type": "block_actions", "team": {"id": fake.team_id}, "api_app_id": server.app_id,
                                              "actions": [{"action_id": APPROVE_ACTION, "value": "R-1"}]})
    fake.wait_for(lambda: refused("400") >= 1, timeout=10)
    acked = {m.get("envelope_id") for m in server.received}
    assert foreign not in acked and userless not in acked
    assert fake.ephemerals(rehearsal.REQUESTER) == [] and bot.store.find() == []
