"""A distribution runs on the one engine and ends through the one lifecycle: its
steps obey the request's lease like any plan's, its requester gets the final DM,
and its progress reply ends in the final state (never "running" after the end)."""

from __future__ import annotations

import pytest

from aws.actions import get_action
from bot.engine import request_lease
from bot.leases import Leases
from bot.plan_groups import group_name
from bot.requests import STEP_DONE, STEP_PENDING, SUCCEEDED
from offline import rehearsal
from tests.handlers.test_copy_over_http import copies, start
from tests.handlers.test_distribute_over_http import ask_and_approve

DEV = rehearsal.DEV
TARGETS = "dev:us-east-1,dev:eu-west-1"


@pytest.fixture
def harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    yield h
    h.bot.stop()


def progress_reply(harness, root: dict) -> str:
    """The one progress reply of the request's thread (it starts with the gear)."""
    return next(m["text"] for m in harness.fake.thread(harness.channel, root["ts"]) if m.get("text", "").startswith(":gear:"))


def done_by(store, request_id: int) -> dict[int, str | None]:
    """Which process (lease holder) recorded each step."""
    return dict(tuple(r) for r in store.db.execute("SELECT seq, done_by FROM steps WHERE request_id = ?", [request_id]).fetchall())


def test_a_finished_distribution_dms_its_requester_and_its_progress_reply_says_so(harness):
    sandbox = harness.world.sandbox
    sandbox.hold_pending(True)  # the copies wait, so the progress reply shows "running" first
    root = ask_and_approve(harness, f"distribute {harness.world.encrypted_image} from prod to {TARGETS}", 1)
    assert progress_reply(harness, root).splitlines()[0].startswith(":gear: R-1 · running")
    for region in ("us-east-1", "eu-west-1"):
        [pending] = copies(harness, DEV, region)
        sandbox.complete(pending["ImageId"])
    for _ in range(6):
        if harness.bot.store.get(1).is_final:
            break
        harness.poll()
    final = harness.final_reply(root)["text"]
    assert harness.bot.store.get(1).state == SUCCEEDED, final
    # Every target's step was recorded by the lease holder, as a plain plan's are.
    holders = done_by(harness.bot.store, 1)
    assert {holders[s.seq] for s in harness.bot.store.get(1).steps if group_name(s.params) and s.state == STEP_DONE} == {harness.bot.leases.holder}

    # The requester's DM carries the final message, once.
    dm = harness.fake.wait_for(lambda: [m for m in harness.fake.messages(harness.fake.dm_channel(rehearsal.REQUESTER))
                                        if "R-1 is done" in m.get("text", "")] or None)
    assert len(dm) == 1 and "2 of 2 targets" in dm[0]["text"]
    # The progress reply is brought to the final state: no stale "running · 1 of 2 available".
    head = progress_reply(harness, root).splitlines()[0]
    assert head == ":gear: R-1 · done", head


def test_a_distribution_step_is_not_recorded_and_the_next_not_started_once_its_lease_is_lost(harness, monkeypatch):
    """A process that stalled past its lease (another replica took the request) must
    neither record the step it was running nor start another: the new holder runs
    it again (steps are idempotent)."""
    bot, store = harness.bot, harness.bot.store
    harness.slash(f"distribute {harness.world.encrypted_image} from prod to {TARGETS}")
    root = harness.fake.wait_for(lambda: next((m for m in harness.fake.messages(harness.channel) if m.get("text", "").startswith("R-1:")), None))
    steps = store.get(1).steps
    stalled = next(s for s in steps if group_name(s.params))  # the first step of the first target
    following = next(s for s in steps if s.seq > stalled.seq and group_name(s.params) == group_name(stalled.params))
    action = get_action(stalled.action)
    real_execute = action.execute
    other = Leases(store, seconds=bot.leases.seconds)

    def stalls_past_the_lease(ctx, account_id, region, params):
        result = real_execute(ctx, account_id, region, params)
        if params == stalled.params:
            harness.clock.advance(bot.leases.seconds + 1)  # this process stalled past its lease …
            assert other.claim(request_lease(1))  # … and another replica took the request
            bot.leases.renew()  # the renewer notices
            assert bot.leases.lost(request_lease(1))
        return result

    monkeypatch.setattr(action, "execute", stalls_past_the_lease)
    try:
        harness.click(rehearsal.OWNER, root)
        harness.fake.wait_for(lambda: store.get(1).approvals or None)
        harness.click(rehearsal.DEV_OWNER, root)
        harness.fake.wait_for(lambda: store.get(1).state != "pending_approval" or None)
        harness.settle()
        after = {s.seq: s for s in store.get(1).steps}
        assert after[stalled.seq].state == STEP_PENDING and done_by(store, 1)[stalled.seq] is None  # not recorded
        assert after[following.seq].state == STEP_PENDING and not after[following.seq].result  # not started
        assert not [s for s in after.values() if s.seq > stalled.seq and (s.state == STEP_DONE or s.result)]
        assert store.get(1).state == "running"  # left to the new holder, not ended
    finally:
        other.stop()
