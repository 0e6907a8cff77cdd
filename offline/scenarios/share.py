"""Demo scenarios: sharing a CMK-encrypted AMI, and a share the bot must refuse."""

from __future__ import annotations

import time

from offline import rehearsal
from offline.scenarios.stage import Stage, ack_text, blocks_text, ephemeral_after, request_id, wait


def refused_aws_managed(stage: Stage) -> None:
    """An AMI encrypted with aws/ebs cannot be shared: refused before anyone is asked."""
    t, fake, world = stage.t, stage.fake, stage.world
    t.note("— a share the bot must refuse: the AMI uses the AWS-managed aws/ebs key —")
    text = f"share {world.aws_managed_image} from prod to dev"
    answer = stage.ask_refused(text)
    t.expect("the aws/ebs AMI is refused before anyone is asked, naming the fix", bool(answer and "aws/ebs" in answer and "copy" in answer))
    t.expect("no approval message was posted for it", not any(world.aws_managed_image in (m.get("text") or "") for m in fake.messages(stage.channel)))


def play(stage: Stage) -> None:
    """Share a CMK-encrypted AMI from prod with dev; a stranger's click is refused;
    an owner approves; checked from dev's side."""
    t, fake, world, channel = stage.t, stage.fake, stage.world, stage.channel
    t.note("— sharing a CMK-encrypted AMI from prod with dev —")
    text = f'share {world.encrypted_image} from prod to dev reason "payments load tests in dev this week"'
    t.say("@bob", f"/ami {text}")
    started = time.perf_counter()
    result = stage.slack.slash(rehearsal.REQUESTER, channel, text)
    ack_ms = (time.perf_counter() - started) * 1000
    t.say("amibot (only bob)", ack_text(result))
    t.expect(f"the slash command was acknowledged with HTTP 200 in {ack_ms:.0f} ms (Slack allows 3,000)", result.status == 200 and ack_ms < 3000)
    root = stage.root_for(world.encrypted_image)
    if not t.expect("the approval message with the plan was posted in the channel", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    card = blocks_text(root)
    t.expect(f"the approval card has labelled fields ({len(card.splitlines())} lines, at most 16) and says why once",
             len(card.splitlines()) <= 16 and "*Why*: payments load tests" in card and card.count("payments load tests") == 1)
    t.expect("the risk names the account that gains access, the card names no account id",
             "`dev` gains launch access" in card and rehearsal.DEV not in card and rehearsal.PROD not in card)
    changes = stage.exact_changes(root)
    t.expect("the exact changes name the KMS grant to dev's root principal", f"arn:aws:iam::{rehearsal.DEV}:root" in changes)

    t.say("@mallory", "clicks [ Approve ]")
    before = len(fake.ephemerals(rehearsal.STRANGER))
    stage.slack.click(rehearsal.STRANGER, channel, root["ts"], "amibot_approve", request_id(root))
    refusal = wait(lambda: ephemeral_after(fake, before, rehearsal.STRANGER))
    t.say("amibot (only mallory)", str(refusal))
    t.expect("a click by someone who owns nothing changes nothing", bool(refusal) and "Nothing was changed" in str(refusal))

    t.say("@alice", "clicks [ Approve ]")
    stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
    final = stage.final_reply(root, timeout=30)
    stage.show_thread(root)
    t.expect("the last reply mentions the requester and is broadcast", bool(final) and f"<@{rehearsal.REQUESTER}>" in final.get("text", ""))
    updated = fake.message(channel, root["ts"])
    t.expect("the root message lost its Approve/Deny buttons once decided", not any(
        e.get("action_id") in ("amibot_approve", "amibot_deny") for b in updated.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]))
    thread = fake.thread(channel, root["ts"])
    t.expect(f"a quiet thread: approval, one progress message edited in place, final ({len(thread)} replies)", len(thread) == 3 and bool(thread[1].get("edited")))

    dev = stage.sandbox.session(rehearsal.DEV, rehearsal.REGION)
    visible = dev.client("ec2").describe_images(ImageIds=[world.encrypted_image])["Images"]
    t.expect("from dev's side: the AMI is visible", bool(visible))
    key = dev.client("kms").describe_key(KeyId=world.cmk_arn)["KeyMetadata"]
    t.expect("from dev's side: prod's CMK is usable through the grant", key.get("Arn") == world.cmk_arn)


def play_unencrypted(stage: Stage) -> None:
    """Share an unencrypted AMI from prod with dev: launch permission only, no grant."""
    t, fake, world = stage.t, stage.fake, stage.world
    t.note("— sharing an unencrypted AMI from prod with dev —")
    text = f"share {world.plain_image} from prod to dev"
    stage.ask(text)
    root = stage.root_for(f"share {world.plain_image}")
    if not t.expect("the approval message was posted", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    plan = stage.exact_changes(root)
    t.expect("no key, so no grant in the plan", "CreateGrant" not in plan and "ModifyImageAttribute" in plan)
    dm = stage.dm_card("U0CAROL")
    if not t.expect("carol (an owner of prod through @platform, not in this channel) got the card in a DM", bool(dm)):
        return
    dm_channel, card = dm
    t.say("amibot (DM to carol)", blocks_text(card))
    t.say("@carol", "clicks [ Approve ] in her DM with amibot (and confirms)")
    stage.slack.click("U0CAROL", dm_channel, card["ts"], "amibot_approve", request_id(root))
    final = stage.final_reply(root, timeout=30)
    stage.show_thread(root)
    t.expect("the last reply mentions the requester", bool(final) and f"<@{rehearsal.REQUESTER}>" in final.get("text", ""))
    updated = wait(lambda: (lambda m: m if "approved by <@U0CAROL>" in blocks_text(m) else None)(fake.message(dm_channel, card["ts"]) or {}))
    t.expect("carol's DM card was updated: who approved, no buttons", bool(updated) and not any(
        e.get("action_id") == "amibot_approve" for b in (updated or {}).get("blocks", []) if b.get("type") == "actions" for e in b["elements"]))
    if updated:
        t.say("amibot (DM to carol, edited)", blocks_text(updated))
    dev = stage.sandbox.session(rehearsal.DEV, rehearsal.REGION).client("ec2")
    t.expect("from dev's side: the AMI is visible", bool(dev.describe_images(ImageIds=[world.plain_image])["Images"]))
