"""`/ami audit` and the drift check over the real HTTP endpoint against the sandbox:
an AMI shared partly by amibot and partly by hand, each line marked right; drift
found for access granted and removed outside amibot, reported once, listed by
`/ami audit --drift`."""

from __future__ import annotations

import pytest

from offline import rehearsal
from tests.handlers.test_copy_over_http import assert_calls_covered_by_policy, ec2, start

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC = rehearsal.REGION
STRANGER_ACCOUNT = "333333333333"


@pytest.fixture
def harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    yield h
    h.bot.stop()


def share_with_dev(harness) -> None:
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(f"share {image}")
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()


def share_by_hand(harness) -> tuple[str, str]:
    """What someone did in the console: launch and snapshot permission and a grant for another account."""
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    prod = ec2(harness, PROD, SRC)
    prod.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": STRANGER_ACCOUNT}]})
    snapshot = prod.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    prod.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", UserIds=[STRANGER_ACCOUNT])
    kms = harness.world.sandbox.session(PROD, SRC).client("kms")
    grant = kms.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{STRANGER_ACCOUNT}:root", Operations=["Decrypt"])["GrantId"]
    return snapshot, grant


def audit(harness, text: str) -> str:
    """An owner of prod audits (issue 17: an AMI's audit is for its account's owners)."""
    before = len(harness.fake.ephemerals(rehearsal.OWNER))
    harness.slash(text, user=rehearsal.OWNER)
    harness.settle()
    return harness.ephemeral_for(rehearsal.OWNER, after=before)


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_audit_marks_what_amibot_made_and_flags_what_it_did_not(harness, bot_aws_calls):
    image = harness.world.encrypted_image
    share_with_dev(harness)
    snapshot, stranger_grant = share_by_hand(harness)
    harness.world.sandbox.client("ec2", PROD, SRC).enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    dev_grant = harness.bot.store.get(1).steps[1].result["grant_id"]

    text = audit(harness, f"audit {image} from prod")
    print("\n" + text)
    assert f"Audit of {image}" in text and "read-only" in text
    assert "amibot R-1" in line_with(text, f"`dev` ({DEV})")
    assert "not made by amibot" in line_with(text, STRANGER_ACCOUNT)
    assert "not made by amibot" in line_with(text, f"{snapshot}: {STRANGER_ACCOUNT}")
    assert "amibot R-1" in line_with(text, f"grant `{dev_grant}`")
    assert "not made by amibot" in line_with(text, f"grant `{stranger_grant}`")
    assert "*Public*: no" in text and "AMI block public access: block-new-sharing" in text
    # 5 + 1 snapshot + 4 for the one key.
    assert "10 AWS calls" in text
    assert_calls_covered_by_policy(bot_aws_calls, "ec2:GetImageBlockPublicAccessState", "kms:GetKeyPolicy", "ec2:DescribeSnapshotAttribute")


def test_drift_granted_and_removed_outside_amibot_is_reported_once(harness):
    image = harness.world.encrypted_image
    share_with_dev(harness)
    dev_grant = harness.bot.store.get(1).steps[1].result["grant_id"]
    # Outside amibot: a launch permission added, and amibot's grant revoked.
    ec2(harness, PROD, SRC).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": STRANGER_ACCOUNT}]})
    harness.world.sandbox.session(PROD, SRC).client("kms").revoke_grant(KeyId=harness.world.cmk_arn, GrantId=dev_grant)

    # Past the window in which AWS may not list a grant amibot just made yet.
    harness.clock.advance(harness.bot.config.bot.consistency_window_seconds + 1)
    harness.tick()  # the first check runs at once (never ran before)
    rows = harness.bot.store.drift_findings()
    assert {(r["kind"], r["subject"]) for r in rows} == {("added_outside", f"launch:{STRANGER_ACCOUNT}"), ("removed_outside", f"grant:{dev_grant}")}
    dms = harness.fake.wait_for(lambda: harness.fake.messages(rehearsal.OWNER) or None)
    assert len(dms) == 2
    # Recorded as told (the outbox's dedupe keys are the second guard against telling twice).
    assert harness.bot.store.drift_findings(unreported_only=True) == []
    added = next(m["text"] for m in dms if STRANGER_ACCOUNT in m["text"])
    assert f"/ami unshare {image} from prod:{SRC} to {STRANGER_ACCOUNT}" in added
    removed = next(m["text"] for m in dms if dev_grant in m["text"])
    assert "R-1" in removed and f"/ami share {image} from prod:{SRC} to dev" in removed

    # Not due again before a day has passed; when it runs again, nothing is told twice.
    harness.tick()
    harness.clock.advance(24 * 3600 + 1)
    harness.tick()
    harness.settle()
    assert len(harness.fake.messages(rehearsal.OWNER)) == 2
    listed = str(harness.slash("audit —drift", user=rehearsal.OWNER).body)  # a chat client's em dash; answered at once
    assert STRANGER_ACCOUNT in listed and dev_grant in listed and "2 open" in listed

    # Reconciled by hand: the finding resolves at the next check.
    ec2(harness, PROD, SRC).modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"UserId": STRANGER_ACCOUNT}]})
    harness.clock.advance(24 * 3600 + 1)
    harness.tick()
    harness.settle()
    assert [r["subject"] for r in harness.bot.store.drift_findings()] == [f"grant:{dev_grant}"]


def test_a_grant_amibot_just_made_is_not_reported_revoked_while_aws_may_not_list_it_yet(harness):
    share_with_dev(harness)
    dev_grant = harness.bot.store.get(1).steps[1].result["grant_id"]
    # As if ListGrants did not show it yet (eventual consistency): gone from AWS's list.
    harness.world.sandbox.session(PROD, SRC).client("kms").revoke_grant(KeyId=harness.world.cmk_arn, GrantId=dev_grant)
    harness.tick()
    assert ("removed_outside", f"grant:{dev_grant}") not in {(r["kind"], r["subject"]) for r in harness.bot.store.drift_findings()}


def test_a_drift_check_that_could_not_read_an_ami_keeps_its_findings_as_they_were(harness):
    image = harness.world.encrypted_image
    share_with_dev(harness)
    ec2(harness, PROD, SRC).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": STRANGER_ACCOUNT}]})
    harness.clock.advance(harness.bot.config.bot.consistency_window_seconds + 1)
    harness.tick()
    assert [r["subject"] for r in harness.bot.store.drift_findings()] == [f"launch:{STRANGER_ACCOUNT}"]
    # The next run is throttled on the AMI's launch permissions: no answer, not "resolved".
    harness.world.sandbox.inject_fault("DescribeImageAttribute", "RequestLimitExceeded", times=50, status=503)
    harness.clock.advance(24 * 3600 + 1)
    harness.tick()
    harness.world.sandbox.clear_faults()
    assert [r["subject"] for r in harness.bot.store.drift_findings()] == [f"launch:{STRANGER_ACCOUNT}"]
    # Out of a run's call budget: not read, kept as well.
    harness.bot.clockwork.drift.call_budget = 0
    harness.clock.advance(24 * 3600 + 1)
    harness.tick()
    assert [r["subject"] for r in harness.bot.store.drift_findings()] == [f"launch:{STRANGER_ACCOUNT}"]
    harness.bot.clockwork.drift.call_budget = 2000
    # Read again: still there, and not told twice.
    harness.clock.advance(24 * 3600 + 1)
    harness.tick()
    harness.settle()
    assert [r["subject"] for r in harness.bot.store.drift_findings()] == [f"launch:{STRANGER_ACCOUNT}"]
    assert len(harness.fake.messages(rehearsal.OWNER)) == 1
