"""``amibot demo``: an offline rehearsal of a whole conversation.

It starts the sandbox (moto plus real AWS semantics), a local Slack Web API and the
real bot behind its real HTTP endpoint, then plays what people would do — every
request signed exactly as Slack signs it — and prints the conversation as a
transcript. It exits 0 only if every expected step happened, checked from the
target account's side where AWS is concerned.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from typing import Callable

from aws.sandbox import Sandbox
from bot import rehearsal
from bot.app import Amibot
from bot.fake_slack import FakeSlack, SignedSlackClient


class Transcript:
    """Prints the conversation and records which expectations held."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.lines = 0
        self.failures: list[str] = []
        self.checks = 0

    def say(self, who: str, text: str) -> None:
        first, *rest = (text or "").splitlines() or [""]
        print(f"{who:>14} │ {first}", file=self.out)
        for line in rest:
            print(f"{'':>14} │ {line}", file=self.out)
        self.lines += 1 + len(rest)

    def note(self, text: str) -> None:
        print(f"{'':>14} ┆ {text}", file=self.out)
        self.lines += 1

    def expect(self, what: str, ok: bool) -> bool:
        self.checks += 1
        mark = "✔" if ok else "✘"
        print(f"{mark:>14} │ {what}", file=self.out)
        self.lines += 1
        if not ok:
            self.failures.append(what)
        return ok


def _blocks_text(message: dict) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "actions":
            parts.append("   ".join(f"[ {e['text']['text']} ]" for e in block["elements"]))
        elif block.get("type") == "context":
            parts.append(" ".join(e.get("text", "") for e in block["elements"]))
    return "\n".join(parts) or message.get("text", "")


def _wait(predicate: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


def run_demo(out=sys.stdout) -> int:
    """Play the rehearsal; 0 if every expectation held."""
    logging.getLogger().setLevel(logging.WARNING)  # the transcript is the output
    t = Transcript(out)
    sandbox = Sandbox(rehearsal.REGION)
    sandbox.start()
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        config = rehearsal.sandbox_config(os.path.join(tmp, "amibot.db"), fake.api_url, env={})
        world = rehearsal.seed(sandbox)
        bot = Amibot(config, grant_wait_seconds=5, tick_seconds=1, notifier_poll_seconds=0.2)
        bot.start()
        url = bot.start_http(port=0)
        slack = SignedSlackClient(url + "/slack/events", config.slack.signing_secret, fake)
        channel = rehearsal.CHANNEL
        try:
            t.note(f"sandbox: prod={rehearsal.PROD} dev={rehearsal.DEV}; CMK {world.cmk_arn}")
            t.note(f"bot listening on {url}/slack/events (waitress); Slack stand-in at {fake.api_url}")
            _refused_aws_managed(t, slack, fake, world, channel)
            _share_encrypted(t, slack, fake, world, channel, sandbox)
        finally:
            bot.stop()
            fake.stop()
            sandbox.stop()
    print("", file=out)
    if t.failures:
        print(f"DEMO FAILED: {len(t.failures)} of {t.checks} expectations did not hold:", file=out)
        for failure in t.failures:
            print(f"  - {failure}", file=out)
        return 1
    print(f"DEMO OK: {t.checks} expectations held; transcript {t.lines} lines.", file=out)
    return 0


def _ephemeral_after(fake: FakeSlack, count_before: int, user: str) -> str | None:
    found = fake.ephemerals(user)
    return found[-1].get("text") if len(found) > count_before else None


def _refused_aws_managed(t: Transcript, slack: SignedSlackClient, fake: FakeSlack, world, channel: str) -> None:
    t.note("— a share the bot must refuse: the AMI uses the AWS-managed aws/ebs key —")
    text = f"share {world.aws_managed_image} from prod to dev"
    t.say("@bob", f"/ami {text}")
    before = len(fake.ephemerals(rehearsal.REQUESTER))
    result = slack.slash(rehearsal.REQUESTER, channel, text)
    t.say("amibot (only bob)", _ack_text(result))
    answer = _wait(lambda: _ephemeral_after(fake, before, rehearsal.REQUESTER))
    t.say("amibot (only bob)", str(answer))
    t.expect("the aws/ebs AMI is refused before anyone is asked, naming the fix", bool(answer and "aws/ebs" in answer and "copy" in answer))
    t.expect("no approval message was posted for it", not any(world.aws_managed_image in (m.get("text") or "") for m in fake.messages(channel)))


def _ack_text(result) -> str:
    try:
        return result.json().get("text", result.body)
    except Exception:
        return result.body


def _share_encrypted(t: Transcript, slack: SignedSlackClient, fake: FakeSlack, world, channel: str, sandbox: Sandbox) -> None:
    t.note("— sharing a CMK-encrypted AMI from prod with dev —")
    text = f"share {world.encrypted_image} from prod to dev"
    t.say("@bob", f"/ami {text}")
    started = time.perf_counter()
    result = slack.slash(rehearsal.REQUESTER, channel, text)
    ack_ms = (time.perf_counter() - started) * 1000
    t.say("amibot (only bob)", _ack_text(result))
    t.expect(f"the slash command was acknowledged with HTTP 200 in {ack_ms:.0f} ms (Slack allows 3,000)", result.status == 200 and ack_ms < 3000)
    root = _wait(lambda: next((m for m in fake.messages(channel) if world.encrypted_image in (m.get("text") or "")), None))
    if not t.expect("the approval message with the plan was posted in the channel", bool(root)):
        return
    t.say("amibot", _blocks_text(root))
    t.expect("the plan names the KMS grant to dev's root principal", f"arn:aws:iam::{rehearsal.DEV}:root" in _blocks_text(root))

    t.say("@mallory", "clicks [ Approve ]")
    before = len(fake.ephemerals(rehearsal.STRANGER))
    slack.click(rehearsal.STRANGER, channel, root["ts"], "amibot_approve", _request_id(root))
    refusal = _wait(lambda: _ephemeral_after(fake, before, rehearsal.STRANGER))
    t.say("amibot (only mallory)", str(refusal))
    t.expect("a click by someone who owns nothing changes nothing", bool(refusal) and "Nothing was changed" in str(refusal))

    t.say("@alice", "clicks [ Approve ]")
    slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", _request_id(root))
    final = _wait(lambda: next((m for m in fake.thread(channel, root["ts"]) if m.get("reply_broadcast")), None), timeout=30)
    for reply in fake.thread(channel, root["ts"]):
        t.say("amibot (thread)", reply.get("text", ""))
    t.expect("the last reply mentions the requester and is broadcast", bool(final) and f"<@{rehearsal.REQUESTER}>" in final.get("text", ""))
    updated = fake.message(channel, root["ts"])
    t.expect("the root message lost its buttons once decided", not any(b.get("type") == "actions" for b in updated.get("blocks") or []))

    dev = sandbox.session(rehearsal.DEV, rehearsal.REGION)
    visible = dev.client("ec2").describe_images(ImageIds=[world.encrypted_image])["Images"]
    t.expect("from dev's side: the AMI is visible", bool(visible))
    key = dev.client("kms").describe_key(KeyId=world.cmk_arn)["KeyMetadata"]
    t.expect("from dev's side: prod's CMK is usable through the grant", key.get("Arn") == world.cmk_arn)


def _request_id(message: dict) -> str:
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            return block["elements"][0]["value"]
    return ""
