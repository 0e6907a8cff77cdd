"""Overlapping requests do not undo each other, and a time-boxed share never fails
open (issue 7 §4) — over HTTP, on the sandbox, with a controllable clock."""

from __future__ import annotations

from botocore.exceptions import ClientError

from offline import rehearsal
from bot.requests import ACTIVE, REVOKED, SUCCEEDED

DAY = 86400


def dev_can_launch(harness, image_id) -> bool:
    try:
        return bool(harness.world.sandbox.session(rehearsal.DEV).client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        return False


def approve(harness, request_id: str) -> dict:
    root = harness.root_for(f"{request_id}:")
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    return root


def thread(harness, root) -> str:
    return "\n".join(m["text"] for m in harness.fake.thread(harness.channel, root["ts"]))


def test_the_expiry_of_a_time_boxed_share_keeps_what_a_permanent_share_needs(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.slash(f"share {image} from prod to dev for 1d")
    first = approve(harness, "R-1")
    harness.slash(f"share {image} from prod to dev")
    approve(harness, "R-2")
    store = harness.bot.store
    assert store.get(1).state == ACTIVE and store.get(2).state == SUCCEEDED

    harness.clock.advance(DAY + 60)
    harness.tick()
    assert store.get(1).state == REVOKED
    # The permanent share still works: its launch permission and its own grant stay.
    assert dev_can_launch(harness, image)
    grants = harness.world.sandbox.session(rehearsal.PROD).client("kms").list_grants(KeyId=cmk)["Grants"]
    assert [g["Name"] for g in grants] == [f"amibot-{store.get(2).uid}-{rehearsal.DEV}"]
    assert "R-2 still needs it" in thread(harness, first)


def test_an_unshare_keeps_what_a_copy_in_flight_needs_and_the_copy_removes_it_after(harness):
    image, sandbox, store = harness.world.plain_image, harness.world.sandbox, harness.bot.store
    sandbox.hold_pending(True)
    harness.slash(f"copy {image} from prod to dev")
    root = harness.root_for("R-1:")
    harness.click(rehearsal.OWNER, root)
    harness.click(rehearsal.DEV_OWNER, root)
    [pending] = harness.fake.wait_for(lambda: sandbox.pending_images() or None, 20)
    harness.settle()
    assert store.get(1).state == "running" and dev_can_launch(harness, image)

    harness.slash(f"unshare {image} from prod to dev")
    unshare = approve(harness, "R-2")
    assert store.get(2).state == SUCCEEDED
    # The copy still reads the source through its temporary share: kept, and said why.
    assert dev_can_launch(harness, image) and "R-1 still needs it" in thread(harness, unshare)

    sandbox.complete(pending)
    for _ in range(5):
        harness.clock.advance(120)
        harness.tick()
        if store.get(1).is_final:
            break
    assert store.get(1).state == SUCCEEDED
    # The unshare asked for it to go: the copy's clean-up, the last holder, removes it.
    assert not dev_can_launch(harness, image)


def test_a_time_boxed_share_whose_removal_fails_stays_active_and_is_retried(harness):
    image = harness.world.plain_image
    sandbox, store = harness.world.sandbox, harness.bot.store
    harness.slash(f"share {image} from prod to dev for 1d")
    root = approve(harness, "R-1")
    sandbox.inject_fault("ModifyImageAttribute", "UnauthorizedOperation", times=1000, status=403,
                         message="You are not authorized to perform this operation.", account=rehearsal.PROD)
    harness.clock.advance(DAY + 60)
    harness.tick()
    request = store.get(1)
    assert request.state == ACTIVE and request.revoke_attempts == 1 and dev_can_launch(harness, image)
    assert "not everything could be removed yet" in thread(harness, root)

    calls = sandbox.calls("ModifyImageAttribute", rehearsal.PROD)
    harness.tick()  # not due again yet: backoff
    assert sandbox.calls("ModifyImageAttribute", rehearsal.PROD) == calls

    for _ in range(2):
        harness.clock.advance(3600)
        harness.tick()
    assert store.get(1).revoke_attempts == 3 and store.get(1).state == ACTIVE
    stuck = [m["text"] for m in harness.fake.thread(harness.channel, root["ts"]) if "has failed 3 times" in m["text"]]
    assert len(stuck) == 1 and f"<@{rehearsal.OWNER}>" in stuck[0]

    sandbox.clear_faults()
    harness.clock.advance(3600)
    harness.tick()
    assert store.get(1).state == REVOKED and not dev_can_launch(harness, image)
