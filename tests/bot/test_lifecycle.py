"""Approvals over time and politeness: expiry and reminders, time-boxed shares,
cancel, AWS throttling, Slack 429s — with a controllable clock, over HTTP."""

from __future__ import annotations

from botocore.exceptions import ClientError

from offline import rehearsal
from tests.conftest import has_decision_buttons
from bot.requests import ACTIVE, CANCELLED, EXPIRED, FAILED, PENDING_APPROVAL, REVOKED, SUCCEEDED

HOUR = 3600


def dev_sees(harness, image_id) -> bool:
    try:
        return bool(harness.world.sandbox.session(rehearsal.DEV).client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        return False


def reminder_cards(harness, user):
    channel = harness.fake.dm_channel(user)
    return [m for m in harness.fake.messages(channel) if "Reminder" in str(m.get("blocks"))] if channel else []


def thread_texts(harness, root):
    return [m["text"] for m in harness.fake.thread(harness.channel, root["ts"])]


def test_pending_request_is_reminded_halfway_then_expires(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.tick()
    assert not reminder_cards(harness, rehearsal.OWNER)
    harness.clock.advance(12 * HOUR + 60)  # approval_ttl_hours = 24; reminders 12 h and 1 h before expiry
    harness.tick()
    harness.tick()  # the reminder is sent once
    reminders = reminder_cards(harness, rehearsal.OWNER)
    assert len(reminders) == 1 and has_decision_buttons(reminders[0])  # by DM, with the buttons
    assert not reminder_cards(harness, rehearsal.REQUESTER)
    assert not any("still waiting" in t for t in thread_texts(harness, root))  # the thread stays quiet
    harness.clock.advance(12 * HOUR)
    harness.tick()
    assert harness.bot.store.get(1).state == EXPIRED
    final = harness.final_reply(root)
    assert "expired" in final["text"] and f"<@{rehearsal.REQUESTER}>" in final["text"]
    assert not has_decision_buttons(harness.fake.message(harness.channel, root["ts"]))
    assert not any(has_decision_buttons(m) for m in reminder_cards(harness, rehearsal.OWNER))  # copies updated too
    harness.click(rehearsal.OWNER, root)
    assert "already expired" in harness.ephemeral_for(rehearsal.OWNER)
    assert not dev_sees(harness, image)


def test_time_boxed_share_is_removed_at_expiry_without_second_approval(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.slash(f"share {image} from prod to dev for 2d")
    root = harness.root_for(image)
    assert "removed automatically" in harness.exact_changes(root)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert "ends automatically" in final["text"]
    request = harness.bot.store.get(1)
    assert request.state == ACTIVE and dev_sees(harness, image)
    harness.clock.advance(24 * HOUR + 60)
    harness.tick()
    assert any("share ends at" in t for t in thread_texts(harness, root))
    assert harness.bot.store.get(1).state == ACTIVE
    harness.clock.advance(24 * HOUR)
    harness.tick()
    assert harness.bot.store.get(1).state == REVOKED
    assert not dev_sees(harness, image)
    grants = harness.world.sandbox.session(rehearsal.PROD).client("kms").list_grants(KeyId=cmk)["Grants"]
    assert grants == []
    assert any("share ended and was removed" in t for t in thread_texts(harness, root))
    # The progress reply ends in the final state too, whatever ended the request.
    assert [t.splitlines()[0] for t in thread_texts(harness, root) if t.startswith(":gear:")] == [":gear: R-1 · share removed"]
    # Exactly one approval in the audit trail: the removal needed none.
    assert [a["actor"] for a in harness.bot.store.events(1) if (a["detail"] or "").startswith("approved for")] == [rehearsal.OWNER]
    assert [a["actor"] for a in harness.bot.store.events(1) if a["to_state"] == REVOKED] == ["amibot"]


def test_cancel_before_execution(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    refused = harness.slash("cancel R-1", user=rehearsal.STRANGER).json()["text"]
    assert "Only the requester or an owner" in refused
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    assert "cancelled" in harness.slash("cancel R-1").json()["text"]
    harness.settle()
    assert harness.bot.store.get(1).state == CANCELLED
    harness.click(rehearsal.OWNER, root)
    assert "already cancelled" in harness.ephemeral_for(rehearsal.OWNER)
    assert not dev_sees(harness, image)


def test_throttled_steps_wait_and_resume_without_the_user_seeing_it(harness):
    image = harness.world.plain_image
    harness.world.sandbox.inject_fault("ModifyImageAttribute", "RequestLimitExceeded", times=3)
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert harness.world.sandbox.calls("ModifyImageAttribute") >= 4
    assert not any("RequestLimitExceeded" in t for t in thread_texts(harness, root))
    assert dev_sees(harness, image)


def test_throttling_past_retries_fails_in_plain_words_and_undoes(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    # After the plan (whose CreateGrant DryRun on the source key must pass): the
    # grant step itself is throttled past its retries.
    harness.world.sandbox.inject_fault("CreateGrant", "RequestLimitExceeded", times=100)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == FAILED
    assert "CreateGrant" in final["text"] and "retries" in final["text"]
    assert "removed launch permission" in final["text"]  # the launch permission was undone
    assert not dev_sees(harness, image)


def test_slack_429s_delay_messages_but_drop_none(harness):
    image = harness.world.plain_image
    harness.fake.script_rate_limit("chat.postMessage", times=2, retry_after=1)
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root, timeout=30)
    harness.settle()
    assert final is not None
    statuses = [c.status for c in harness.fake.calls_to("chat.postMessage")]
    assert statuses.count(429) == 2
    assert all(row["state"] in ("sent", "superseded") for row in harness.bot.store.outbox())


def test_share_longer_than_max_share_days_is_refused(harness):
    import dataclasses

    harness.bot.service.config = dataclasses.replace(harness.bot.config, bot=dataclasses.replace(harness.bot.config.bot, max_share_days=7))
    harness.slash(f"share {harness.world.plain_image} from prod to dev for 30d")
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "longer than this workspace allows (7d)" in answer and "max_share_days" in answer
    harness.settle()
    assert harness.bot.store.find() == []


def _running_share_with_first_step_done(harness):
    """A share whose first step ran in AWS, as a process that then died left it."""
    from aws.actions import get_action
    from bot.requests import APPROVED, PENDING_APPROVAL, RUNNING, STEP_DONE, PlannedStep

    store, image = harness.bot.store, harness.world.plain_image
    params = {"image_id": image, "account_ids": [rehearsal.DEV]}
    request = store.create_request(
        kind="share", uid="feedfacecafebeef", requester=rehearsal.REQUESTER, channel=harness.channel,
        command_text=f"share {image} from prod to dev", params={}, facts={}, approver_accounts=["prod"],
        steps=[
            PlannedStep("ec2.add_launch_permission", "prod", rehearsal.PROD, rehearsal.REGION, params, "add launch permission"),
            PlannedStep("verify.target_access", "dev", rehearsal.DEV, rehearsal.REGION, {"image_id": image, "key_arns": []}, "check from dev"),
        ],
        ttl_seconds=3600, state=PENDING_APPROVAL,
    )
    harness.bot.notifier.post_root(request.id)
    store.transition(request.id, PENDING_APPROVAL, APPROVED, rehearsal.OWNER)
    store.transition(request.id, APPROVED, RUNNING, "amibot")
    result = get_action("ec2.add_launch_permission").execute(harness.bot.runner.context(store.get(request.id), 1), rehearsal.PROD, rehearsal.REGION, params)
    store.mark_step(request.id, 1, STEP_DONE, result=result)
    assert dev_sees(harness, image)
    return request


def test_a_failure_interrupted_by_a_crash_is_finished_on_restart(harness):
    from bot.requests import STEP_FAILED

    request = _running_share_with_first_step_done(harness)
    harness.bot.store.mark_step(request.id, 2, STEP_FAILED, error="the check from dev failed (plain words)")
    harness.bot.clockwork.resume_unfinished()  # what a restart does
    harness.settle()
    assert harness.bot.store.get(request.id).state == FAILED
    assert not dev_sees(harness, harness.world.plain_image)
    finals = [m for m in harness.fake.messages(harness.channel) if m.get("reply_broadcast")]
    assert len(finals) == 1 and "the check from dev failed (plain words)" in finals[0]["text"] and "removed launch permission" in finals[0]["text"]


def test_a_cancel_interrupted_by_a_crash_is_cleaned_up_on_restart(harness):
    from bot.requests import RUNNING

    request = _running_share_with_first_step_done(harness)
    harness.bot.store.transition(request.id, RUNNING, CANCELLED, rehearsal.OWNER, "cancelled while running")
    harness.bot.clockwork.resume_unfinished()
    harness.settle()
    assert not dev_sees(harness, harness.world.plain_image)
    finals = [m for m in harness.fake.messages(harness.channel) if m.get("reply_broadcast")]
    assert len(finals) == 1 and "cancelled by <@U0ALICE>" in finals[0]["text"] and "removed launch permission" in finals[0]["text"]
    harness.bot.clockwork.resume_unfinished()  # a second restart does nothing more
    harness.settle()
    assert len([m for m in harness.fake.messages(harness.channel) if m.get("reply_broadcast")]) == 1
