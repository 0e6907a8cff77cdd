"""Copies in flight: polled in one batch per account and region per tick, progress
shown on the root message at most once a minute, many requests at once."""

from __future__ import annotations

import threading

from offline import rehearsal
from bot.requests import SUCCEEDED
from offline.scenarios.stage import blocks_text

DST = rehearsal.OTHER_REGION


def start_copies(harness, count: int) -> list[dict]:
    """``count`` copies of prod's AMI within prod into eu-west-1, each approved."""
    roots = []
    for _ in range(count):
        harness.slash(f"copy {harness.world.plain_image} from prod to prod:{DST}")
    harness.settle()
    roots = [m for m in harness.fake.messages(harness.channel) if "copy" in m.get("text", "")]
    assert len(roots) == count
    for root in roots:
        harness.click("U0CAROL", root)  # an owner of prod through the S0PLATFORM group
    # Clicks are acknowledged before the listener hands the run to the worker: wait
    # until every copy has started and is waiting, so no first poll lands later.
    harness.fake.wait_for(lambda: all(harness.bot.store.get(n).wake_at for n in range(1, count + 1)), 20)
    harness.settle()
    return roots


def test_one_describe_images_per_account_and_region_per_tick(harness):
    sandbox = harness.world.sandbox
    sandbox.hold_pending(True)
    roots = start_copies(harness, 5)
    pending = [i for i in sandbox.session(rehearsal.PROD, DST).client("ec2").describe_images(Owners=["self"])["Images"]]
    assert len(pending) == 5 and {i["State"] for i in pending} == {"pending"}

    before_images = sandbox.calls("DescribeImages", account=rehearsal.PROD)
    before_snapshots = sandbox.calls("DescribeSnapshots", account=rehearsal.PROD)
    harness.clock.advance(61)
    harness.tick()
    assert sandbox.calls("DescribeImages", account=rehearsal.PROD) - before_images == 1
    assert sandbox.calls("DescribeSnapshots", account=rehearsal.PROD) - before_snapshots == 1

    for image in pending:
        sandbox.complete(image["ImageId"])
    harness.clock.advance(61)
    harness.tick()
    harness.settle()
    for number in range(1, 6):
        assert harness.bot.store.get(number).state == SUCCEEDED
    assert len([m for root in roots for m in harness.fake.thread(harness.channel, root["ts"]) if m.get("reply_broadcast")]) == 5


def test_progress_is_edited_at_most_once_a_minute(harness):
    sandbox = harness.world.sandbox
    sandbox.hold_pending(True)
    [root] = start_copies(harness, 1)
    [image] = sandbox.session(rehearsal.PROD, DST).client("ec2").describe_images(Owners=["self"])["Images"]

    def progress_edits():
        return [c for c in harness.fake.calls_to("chat.update") if c.params.get("ts") == root["ts"] and "%" in str(c.params.get("blocks"))]

    harness.clock.advance(61)
    sandbox.set_copy_progress(image["ImageId"], 20)
    harness.tick()
    edits = len(progress_edits())
    assert "20%" in blocks_text(harness.fake.message(harness.channel, root["ts"]))
    for percent in (30, 40, 50):  # three polls within the same minute
        harness.clock.advance(15)
        sandbox.set_copy_progress(image["ImageId"], percent)
        harness.tick()
    assert len(progress_edits()) == edits  # not edited again within the minute
    harness.clock.advance(61)
    sandbox.set_copy_progress(image["ImageId"], 70)
    harness.tick()
    assert len(progress_edits()) == edits + 1
    assert "70%" in blocks_text(harness.fake.message(harness.channel, root["ts"]))


def test_many_requests_at_once_all_land(harness):
    image = harness.world.plain_image
    results = []
    barrier = threading.Barrier(12)

    def ask(i):
        barrier.wait()
        results.append(harness.slash(f"share {image} from prod to dev", user=f"U0USER{i:02d}").status)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    harness.settle()
    assert results == [200] * 12
    created = harness.bot.store.find(limit=100)
    assert len(created) == 12 and len({r.id for r in created}) == 12
    assert len([m for m in harness.fake.messages(harness.channel) if image in m.get("text", "")]) == 12
