"""Issue 18 over the real HTTP endpoint: what a phone shows. An approver's DM reads
on the lock screen (who asks you, what, from where to where, by when) and is the
one alert they get for the request (the channel card does not mention them again);
a reminder says it is one; the requester hears without following the thread
(approved, a long copy's progress, the ending as a short DM linking to the thread);
a copy's final message starts with the new AMI, linked to the EC2 console, and its
IAM statement is behind a button."""

from __future__ import annotations

import re

import pytest

from bot.requests import SUCCEEDED
from offline import rehearsal
from tests.handlers.test_copy_over_http import DEV, DST, copies, start

BOB, ALICE, CAROL, DEVOPS = rehearsal.REQUESTER, rehearsal.OWNER, "U0CAROL", rehearsal.DEV_OWNER


def posted_dms(stack, user: str) -> list[str]:
    """The texts of the DMs posted to ``user`` (what their phone showed), oldest first."""
    channel = stack.fake.dm_channel(user)
    return [c.params.get("text", "") for c in stack.fake.calls_to("chat.postMessage") if channel and c.params.get("channel") == channel]


def channel_posts(stack) -> list[str]:
    """Everything posted (not edited) in the request's channel, text and blocks."""
    return [c.params.get("text", "") + str(c.params.get("blocks") or "") for c in stack.fake.calls_to("chat.postMessage")
            if c.params.get("channel") == stack.channel]


def test_a_share_alerts_each_approver_once_with_a_lock_screen_text_and_tells_the_requester(harness, clock):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.settle()
    asks = "<@U0BOB> asks you to approve: share base-al2023 prod → dev, by "
    # One alert per approver: the DM, written for the lock screen; the card in the
    # channel counts the owners asked by DM instead of mentioning them (or their group).
    for owner in (ALICE, CAROL):
        [dm] = posted_dms(harness, owner)
        assert dm.startswith(asks) and dm.endswith(" UTC (R-1)"), dm
    assert not any(f"<@{ALICE}>" in p or f"<@{CAROL}>" in p or "<!subteam^S0PLATFORM>" in p for p in channel_posts(harness))
    assert "`prod`: waiting for 2 owners (asked by DM)" in str(root["blocks"])

    # A reminder says it is one.
    request = harness.bot.store.get(1)
    clock.advance(request.expires_at - 12 * 3600 - clock() + 1)
    harness.tick()
    harness.settle()
    assert posted_dms(harness, ALICE)[-1].startswith("Reminder: " + asks)

    harness.click(ALICE, root)
    final = harness.final_reply(root)
    harness.settle()
    assert f"<@{BOB}>" in final["text"]  # the thread's final reply keeps the contract's mention
    approved, ended = harness.fake.wait_for(lambda: (lambda d: d if len(d) == 2 else None)(posted_dms(harness, BOB)))
    assert approved.startswith(f":white_check_mark: R-1 approved by <@{ALICE}>: share base-al2023 prod → dev. Starting now")
    assert ended.startswith(":tada: R-1 is done: share base-al2023 prod → dev.")
    assert re.search(r"<https://sandbox\.slack\.com/archives/C0PLATFORM/p\d+\|the thread>", ended), ended
    assert f"<@{BOB}>" not in approved + ended and len(ended) < len(final["text"])  # a summary, not the whole text again


@pytest.fixture
def copy_harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    yield h
    h.bot.stop()


def test_a_long_copy_reports_progress_to_the_requester_and_ends_with_the_new_ami_first(copy_harness):
    harness = copy_harness
    image = harness.world.encrypted_image
    harness.world.sandbox.hold_pending(True)
    harness.slash(f"copy {image} from prod to dev:{DST}")
    root = harness.root_for(f"copy {image}")
    harness.settle()
    assert posted_dms(harness, DEVOPS) == [posted_dms(harness, DEVOPS)[0]]
    assert posted_dms(harness, DEVOPS)[0].startswith("<@U0BOB> asks you to approve: copy payments-api-2026.11 prod:us-east-1 → dev:eu-west-1, by ")
    harness.click(ALICE, root)
    harness.fake.wait_for(lambda: harness.bot.store.get(1).approvals or None)
    harness.click(DEVOPS, root)
    harness.fake.wait_for(lambda: copies(harness, DEV, DST) or None)
    harness.settle()
    [pending] = copies(harness, DEV, DST)

    # Progress reaches the requester only for a long copy, with elapsed time and an estimate.
    harness.world.sandbox.set_copy_progress(pending["ImageId"], 40)
    harness.poll()
    assert not [d for d in posted_dms(harness, BOB) if "running for" in d]
    harness.clock.advance(300)
    # A copy whose progress did not move is not even looked at again (issue 20's cheap
    # tick): the requester hears when it moved, here five minutes later.
    harness.world.sandbox.set_copy_progress(pending["ImageId"], 60)
    harness.poll()
    [progress] = [d for d in posted_dms(harness, BOB) if "running for" in d]
    assert re.search(r"running for \d+ min: 60 % copied, about \d+ min to go", progress), progress

    assert harness.world.sandbox.complete(pending["ImageId"]) == "available"
    harness.poll()
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    lines = final["text"].splitlines()
    # Results first: the new AMI is line 2, linked to the console in its region, with its account.
    assert lines[1].startswith(f"The copy is <https://{DST}.console.aws.amazon.com/ec2/home?region={DST}#ImageDetails:imageId={pending['ImageId']}|")
    assert f"({DEV}) {DST}" in lines[1] and lines[2].startswith("*Next:*")
    assert "Attach this policy" not in final["text"] and "View IAM statement" in str(final["blocks"])
    ended = harness.fake.wait_for(lambda: [d for d in posted_dms(harness, BOB) if " is done" in d])[0]
    assert pending["ImageId"] in ended and "|the thread>" in ended and f"<@{BOB}>" not in ended and len(ended.splitlines()) == 3
