"""Crash safety: a real `amibot serve` process is SIGKILLed at each step boundary
and restarted; every request ends, with one effect in AWS and one final message.

The sandbox runs as a moto server in this process (so AWS state outlives the bot);
the bot pauses at a named point (AMIBOT_PAUSE_AT) and writes a marker, then this
test kills it with SIGKILL and starts a fresh process on the same database.
"""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

import pytest

from offline.sandbox import Sandbox
from offline import rehearsal
from offline.replicas import Replica
from offline.slack import FakeSlack
from bot.store import Store
from tests.conftest import SUITE_CONSISTENCY_DELAY

SECRET = "crash-test-signing-secret"

# Each point: where the first process is killed.
KILL_POINTS = [
    "posted:root",  # the approval message reached Slack, its ts was not recorded
    "before:1",  # approved, nothing done in AWS yet
    "executed:1",  # launch permission added in AWS, not recorded
    "done:1",
    "executed:2",  # KMS grant created in AWS, not recorded: a retry must find it by name
    "done:2",
    "executed:3",  # snapshot permission added, not recorded
    "executed:4",  # verification done, not recorded
    "posted:reply",  # a thread reply reached Slack, not recorded as sent
    "posted:copy",  # an owner's DM copy of the approval reached Slack, its ts was not recorded
    "posted:progress",  # the one progress reply reached Slack, its ts was not recorded
    "posted:dm",  # the requester's end-of-request DM reached Slack, not recorded as sent
]
BEFORE_APPROVAL = ("posted:root", "posted:copy")


@pytest.fixture(scope="module")
def server_sandbox(sandbox_session):
    sandbox = Sandbox(rehearsal.REGION, server=True, consistency_delay=SUITE_CONSISTENCY_DELAY, permission_delay=0, status_check_delay=0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def bot_process(tmp: Path, sandbox: Sandbox, fake: FakeSlack) -> Replica:
    """`amibot serve` in a child process, on the sandbox config as it is (its own
    lease and tick) and ``tmp``'s database."""
    return Replica("bot", tmp, sandbox, fake, str(tmp / "amibot.db"), lease_seconds=None, tick_seconds=None, secret=SECRET)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_boundary_then_restart(point, server_sandbox, tmp_path):
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    rehearsal.enforce_generated_policies(server_sandbox, rehearsal.sandbox_config(str(tmp_path / "policy.db"), env={}))
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    bot = bot_process(tmp_path, server_sandbox, fake)
    try:
        bot.start(pause_at=point)
        slack = bot.slack
        image = world.encrypted_image
        assert slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev allow-copy").status == 200
        if point in BEFORE_APPROVAL:
            bot.wait_paused(point)
            bot.kill()
            bot.start()
        root = fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "")), None), 30)
        slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        if point not in BEFORE_APPROVAL:
            bot.wait_paused(point)
            bot.kill()
            bot.start()
        final = fake.wait_for(lambda: [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")], 60)

        # One root message, one final message, no reply twice.
        assert len([m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "") and not m.get("reply_broadcast")]) == 1
        assert len(final) == 1 and f"<@{rehearsal.REQUESTER}>" in final[0]["text"]
        texts = [m["text"] for m in fake.thread(rehearsal.CHANNEL, root["ts"])]
        assert len(texts) == len(set(texts)), texts
        assert len([t for t in texts if t.startswith(":gear:")]) == 1  # one progress message, edited
        # The requester's DMs, each once: approved, then the end of the request (sent
        # after the cards' update); one approval card in each owner's DM, updated.
        fake.wait_for(lambda: fake.dm_channel(rehearsal.REQUESTER) and [m for m in fake.messages(fake.dm_channel(rehearsal.REQUESTER)) if " is done" in m["text"]], 30)
        requester_dms = [m["text"] for m in fake.messages(fake.dm_channel(rehearsal.REQUESTER))]
        assert len(requester_dms) == 2 and "approved by" in requester_dms[0] and " is done" in requester_dms[1], requester_dms
        # (A copy not yet sent when the owner approved in the channel is never sent.)
        for owner in (rehearsal.OWNER, "U0CAROL"):
            cards = [m for m in fake.messages(fake.dm_channel(owner) or "-") if m.get("blocks")]
            assert len(cards) <= 1 and all("approved by" in str(c["blocks"]) for c in cards), (owner, cards)
        if point == "posted:copy":  # the copy that reached Slack before the kill was found and updated
            assert [m for m in fake.messages(fake.dm_channel(rehearsal.OWNER)) if m.get("blocks")]
        # The request ended, every step once.
        store = Store(str(tmp_path / "amibot.db"))
        request = store.get(1)
        assert request.state == "succeeded", request.error
        assert all(s.state == "done" for s in request.steps)
        # One effect in AWS: one grant, one launch permission, one snapshot permission.
        prod = server_sandbox.session(rehearsal.PROD)
        assert len(prod.client("kms").list_grants(KeyId=world.cmk_arn)["Grants"]) == 1
        launch = prod.client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
        assert launch == [{"UserId": rehearsal.DEV}]
        dev_ec2 = server_sandbox.session(rehearsal.DEV).client("ec2")
        assert dev_ec2.describe_images(ImageIds=[image])["Images"]
    finally:
        bot.stop()
        fake.stop()


def test_sigterm_exits_cleanly_and_the_next_process_resumes(server_sandbox, tmp_path):
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    rehearsal.enforce_generated_policies(server_sandbox, rehearsal.sandbox_config(str(tmp_path / "policy.db"), env={}))
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    bot = bot_process(tmp_path, server_sandbox, fake)
    try:
        bot.start()
        slack = bot.slack
        image = world.plain_image
        slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev")
        root = fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "")), None), 30)
        bot.proc.send_signal(signal.SIGTERM)
        assert bot.proc.wait(timeout=20) == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{bot.port}/healthz", timeout=1)
        # Nothing was lost: the pending request is still there for the next process.
        bot.start()
        slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        fake.wait_for(lambda: [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")], 30)
        assert Store(str(tmp_path / "amibot.db")).get(1).state == "succeeded"
    finally:
        bot.stop()
        fake.stop()


# A cross-account, cross-region copy: 1 launch permission, 2 grant, 3 snapshot
# permission, 4 check from dev, 5 CopyImage, 6 wait, 7 verify copy, 8 remove temporaries.
COPY_KILL_POINTS = ["executed:5", "before:6", "done:7", "executed:8"]


@pytest.mark.parametrize("point", COPY_KILL_POINTS)
def test_sigkill_during_a_copy_makes_one_copy(point, server_sandbox, tmp_path):
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    rehearsal.enforce_generated_policies(server_sandbox, rehearsal.sandbox_config(str(tmp_path / "policy.db"), env={}))
    server_sandbox.hold_pending(True)  # the copy stays in flight until we complete it
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    bot = bot_process(tmp_path, server_sandbox, fake)
    dev_other = server_sandbox.session(rehearsal.DEV, rehearsal.OTHER_REGION).client("ec2")
    try:
        bot.start(pause_at=point)
        slack = bot.slack
        image = world.encrypted_image
        slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"copy {image} from prod to dev:{rehearsal.OTHER_REGION}")
        root = fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "")), None), 30)
        slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        slack.click(rehearsal.DEV_OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        if point in ("executed:5", "before:6"):
            bot.wait_paused(point)
            bot.kill()
            bot.start()
        copies = fake.wait_for(lambda: dev_other.describe_images(Owners=["self"])["Images"], 30)
        server_sandbox.complete(copies[0]["ImageId"])
        if point not in ("executed:5", "before:6"):
            bot.wait_paused(point)
            bot.kill()
            bot.start()
        final = fake.wait_for(lambda: [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")], 60)

        request = Store(str(tmp_path / "amibot.db")).get(1)
        assert [s.action for s in request.steps][4] == "ec2.copy_image"
        assert request.state == "succeeded", request.error
        assert len(final) == 1 and f"<@{rehearsal.REQUESTER}>" in final[0]["text"]
        # One copy per request, whatever the kill point: the ClientToken and the checkpoint.
        images = dev_other.describe_images(Owners=["self"])["Images"]
        assert len(images) == 1 and images[0]["State"] == "available"
        # The temporaries are gone from prod.
        prod = server_sandbox.session(rehearsal.PROD)
        assert prod.client("kms").list_grants(KeyId=world.cmk_arn)["Grants"] == []
        assert prod.client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []
    finally:
        server_sandbox.hold_pending(False)
        bot.stop()
        fake.stop()

