"""The tick's narrow read (bot/store/in_flight.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.requests import APPROVED, RUNNING, SUCCEEDED, PlannedStep, STEP_DONE
from bot.store import open_store

WAIT = "ec2.wait_image_available"


def step(action: str, **params) -> PlannedStep:
    return PlannedStep(action=action, account_alias="prod", account_id="222222222222", region="eu-west-1", params=params, description=action)


def test_in_flight_reads_timing_columns_pending_waits_and_the_first_open_step(store_target):
    store = open_store(store_target)
    try:
        def request(uid: str, state: str):
            return store.create_request(kind="copy", uid=uid, requester="U0ALICE", channel="C0COPY", command_text="copy", params={}, facts={},
                                        approver_accounts=["prod"], steps=[step("ec2.copy_image"), step(WAIT, image_from_step=1, poll_seconds=30)],
                                        ttl_seconds=3600, state=state)

        copying, waiting, done = request("u1", APPROVED), request("u2", RUNNING), request("u3", SUCCEEDED)
        store.mark_step(waiting.id, 1, STEP_DONE, result={"image_id": "ami-1"})
        store.save_step_progress(waiting.id, 2, {"image_id": "ami-1", "progress": 40, "misses": 0})
        store.set_fields(waiting.id, wake_at=123.0, progress_shown_at=100.0)
        found = {r.id: r for r in store.in_flight((APPROVED, RUNNING), WAIT)}
        assert set(found) == {copying.id, waiting.id}  # not the finished one
        assert found[copying.id].first_open == 1 and [w.seq for w in found[copying.id].waits] == [2]
        w = found[waiting.id]
        assert (w.state, w.wake_at, w.progress_shown_at, w.first_open) == (RUNNING, 123.0, 100.0, 2)
        [wait] = w.waits
        assert (wait.account_id, wait.region, wait.params["poll_seconds"], wait.result["progress"]) == ("222222222222", "eu-west-1", 30, 40)
        store.mark_step(waiting.id, 2, STEP_DONE, result={"image_id": "ami-1", "state": "available"})
        assert store.in_flight((RUNNING,), WAIT)[0].waits == [] and store.in_flight((RUNNING,), WAIT)[0].first_open is None
    finally:
        store.close()
