"""The tick with several processes: work whose lease another live process holds is
left to it; work whose process died (its lease expired) is taken up, from the first
step not done. One bot in this process, the other process played by its leases."""

from __future__ import annotations

import json
import urllib.request

from offline import rehearsal
from bot.requests import APPROVED, EXPIRED, PENDING_APPROVAL, RUNNING, STEP_DONE, SUCCEEDED, PlannedStep

DEAD = "other-host-4242-dead00"


def running_share(harness, state=RUNNING):
    """A share left as another process left it: approved (and maybe started)."""
    store, image = harness.bot.store, harness.world.plain_image
    params = {"image_id": image, "account_ids": [rehearsal.DEV]}
    request = store.create_request(
        kind="share", uid="0123456789abcdef", requester=rehearsal.REQUESTER, channel=harness.channel,
        command_text=f"share {image} from prod to dev", params={}, facts={}, approver_accounts=["prod"],
        steps=[
            PlannedStep("ec2.add_launch_permission", "prod", rehearsal.PROD, rehearsal.REGION, params, "add launch permission"),
            PlannedStep("verify.target_access", "dev", rehearsal.DEV, rehearsal.REGION, {"image_id": image, "key_arns": []}, "check from dev"),
        ],
        ttl_seconds=3600, state=PENDING_APPROVAL,
    )
    harness.bot.notifier.post_root(request.id)
    store.record_approvals(request.id, ["prod"], rehearsal.OWNER)
    store.transition(request.id, PENDING_APPROVAL, APPROVED, rehearsal.OWNER)
    if state == RUNNING:
        store.transition(request.id, APPROVED, RUNNING, "amibot")
    harness.settle()
    return request


def test_a_running_request_of_a_live_process_is_left_then_taken_up_when_its_lease_expires(harness):
    store = harness.bot.store
    request = running_share(harness)
    assert store.claim_lease(f"request:{request.id}", DEAD, 30)  # the other process runs it …
    harness.tick()
    assert store.get(request.id).state == RUNNING
    assert [s.state for s in store.get(request.id).steps] == ["pending", "pending"]
    harness.clock.advance(31)  # … and died: its lease expired
    harness.tick()
    harness.settle()
    done = store.get(request.id)
    assert done.state == SUCCEEDED
    rows = store.db.execute("SELECT done_by FROM steps WHERE request_id = ?", [request.id]).fetchall()
    assert {r[0] for r in rows} == {harness.bot.leases.holder}


def test_a_just_approved_request_is_left_to_the_approving_process_for_a_lease_time(harness):
    store = harness.bot.store
    request = running_share(harness, state=APPROVED)
    harness.tick()  # the approver's process starts it; this one does not race it
    assert store.get(request.id).state == APPROVED
    harness.clock.advance(harness.bot.leases.seconds + 1)  # nobody did: the approver died
    harness.tick()
    harness.settle()
    assert store.get(request.id).state == SUCCEEDED


def test_a_duty_another_process_is_doing_is_left_to_it(harness):
    store = harness.bot.store
    harness.slash(f"share {harness.world.plain_image} from prod to dev")
    harness.root_for(harness.world.plain_image)
    harness.settle()
    harness.clock.advance(25 * 3600)  # past the approval window
    assert store.claim_lease("duty:expire_pending", DEAD, 10 ** 6)
    harness.tick()
    assert store.get(1).state == PENDING_APPROVAL
    store.release_lease("duty:expire_pending", DEAD)
    harness.tick()
    assert store.get(1).state == EXPIRED


def test_an_outbox_stream_another_process_is_sending_is_left_to_it(harness):
    store = harness.bot.store
    request = running_share(harness)
    assert store.claim_lease(f"outbox:{request.id}", DEAD, 10 ** 6)
    harness.bot.notifier.reply(request.id, "from this process")
    harness.bot.notifier.flush()
    assert [r["state"] for r in store.outbox(request.id) if r["payload"].get("text") == "from this process"] == ["pending"]
    store.release_lease(f"outbox:{request.id}", DEAD)
    harness.bot.notifier.flush()
    assert [r["state"] for r in store.outbox(request.id) if r["payload"].get("text") == "from this process"] == ["sent"]


def test_a_sqlite_bot_takes_over_leases_left_by_its_dead_predecessor(harness):
    store = harness.bot.store
    request = running_share(harness)
    store.claim_lease(f"request:{request.id}", DEAD, 10 ** 6)
    harness.bot.scheduler.stop()
    harness.bot.start()  # a restart on SQLite: the only process, so the old leases are void
    harness.settle()
    assert store.get(request.id).state == SUCCEEDED


def test_healthz_reports_the_store_kind_and_lease_health(harness):
    with urllib.request.urlopen(harness.admin_url + "/healthz", timeout=5) as response:
        assert response.status == 200
        report = json.loads(response.read())
    assert report["ok"] is True
    assert report["store"]["kind"] == harness.bot.store.kind
    assert report["store"]["reachable"] and report["store"]["migrated"]
    assert set(report["store"]["leases"]) == {"held", "expired"}
    assert report["leases"]["holder"] == harness.bot.leases.holder and report["leases"]["renewing"] is True


def test_the_runner_leaves_a_request_another_process_holds(harness):
    store = harness.bot.store
    request = running_share(harness)
    assert store.claim_lease(f"request:{request.id}", DEAD, 30)
    harness.bot.runner.run(request.id)  # e.g. a click or a tick that raced the holder
    assert [s.state for s in store.get(request.id).steps] == ["pending", "pending"]
    store.release_lease(f"request:{request.id}", DEAD)
    harness.bot.runner.run(request.id)
    harness.settle()
    assert store.get(request.id).state == SUCCEEDED
