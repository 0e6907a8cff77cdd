"""`/ami copy` end to end over the real HTTP endpoint, signed as Slack signs, against
the sandbox: the three shapes (within an account across regions; into another
account; into another account and region), approval by the owners of both accounts,
progress of a pending copy, the temporary share removed afterwards (checked from the
source), the copy checked from the target, and the safety steps: each test below
named ``test_without_...`` removes one step from the plan and shows the copy fails
without it, so the happy-path tests fail when that step is removed from the code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aws.actions.copy import DestinationKey
from offline import rehearsal
from bot.app import Amibot
from bot.verbs.copy import plan as copy_operation
from bot.requests import FAILED, PENDING_APPROVAL, SUCCEEDED
from offline.stack import start_stack
from tests.conftest import Harness, bot_options

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, DST = rehearsal.REGION, rehearsal.OTHER_REGION
NOTIFY = "C0NOTIFY"


@dataclasses.dataclass
class CopyHarness(Harness):
    def poll(self) -> None:
        """One polling round: past the poll interval (and Slack's one-edit-a-minute
        pacing of the root message), then the scheduler's tick, as APScheduler would."""
        self.clock.advance(61)
        self.bot.clockwork.tick()
        self.settle()
        # The edits this tick made past the first wait their minute (issue 20: one edit
        # of a message a minute while its request runs): the latest shows by then.
        self.clock.advance(61)
        self.settle()


def start(sandbox, fake_slack, tmp_path, notify_channel: str | None = None) -> CopyHarness:
    """The offline stack on the sandbox's (the test's) clock, IAM evaluated, not
    listed; the caller stops the bot."""
    configure = (lambda config: dataclasses.replace(config, bot=dataclasses.replace(config.bot, notify_channel=notify_channel))) if notify_channel else None
    options = bot_options(sandbox.clock)
    del options["aws_max_attempts"]  # the bot's own budget
    stack = start_stack(sandbox, fake_slack, str(tmp_path / "amibot.db"), configure=configure, **options)
    return CopyHarness(**{f.name: getattr(stack, f.name) for f in dataclasses.fields(stack)})


@pytest.fixture
def harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    yield h
    h.bot.stop()


@pytest.fixture
def notify_harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path, notify_channel=NOTIFY)
    yield h
    h.bot.stop()


# -- helpers -------------------------------------------------------------------------------


def ec2(harness, account: str, region: str):
    return harness.world.sandbox.session(account, region).client("ec2")


def owned_images(harness, account: str, region: str) -> list[dict[str, Any]]:
    return ec2(harness, account, region).describe_images(Owners=["self"])["Images"]


def copies(harness, account: str, region: str) -> list[dict[str, Any]]:
    """The account's images that amibot copied (the seeded ones carry no provenance)."""
    return [i for i in owned_images(harness, account, region) if any(t["Key"] == "amibot:source-ami" for t in i.get("Tags", []))]


def snapshots(harness, account: str, region: str, image: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    return ec2(harness, account, region).describe_snapshots(SnapshotIds=ids)["Snapshots"]


def nothing_left_shared(harness, image_id: str, key_arn: str | None) -> None:
    """From the source account: no launch permission, snapshot permission or grant for dev."""
    prod = ec2(harness, PROD, SRC)
    assert prod.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    image = prod.describe_images(ImageIds=[image_id])["Images"][0]
    for snap in [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]:
        assert prod.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    if key_arn:
        grants = harness.world.sandbox.session(PROD, SRC).client("kms").list_grants(KeyId=key_arn)["Grants"]
        assert [g for g in grants if DEV in g["GranteePrincipal"]] == []


def ask(harness, text: str) -> dict:
    result = harness.slash(text)
    assert result.status == 200
    return harness.root_for(" ".join(text.split()[:2]))  # "copy ami-…"


def approve_both(harness, root: dict) -> dict:
    """prod's owner, then dev's: the request runs only once both approved."""
    harness.click(rehearsal.OWNER, root)
    # The click is handled after Slack's ack, on Bolt's thread: wait for its effect.
    harness.fake.wait_for(lambda: harness.bot.store.get(1).approvals or None)
    request = harness.bot.store.get(1)
    assert request.state == PENDING_APPROVAL and request.approvals == {"prod": rehearsal.OWNER}
    harness.click(rehearsal.DEV_OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    return final


def thread_text(harness, root: dict) -> str:
    return "\n".join(m.get("text", "") for m in harness.fake.thread(harness.channel, root["ts"]))


def without(monkeypatch, *actions: str) -> None:
    """Plan copies without the steps of ``actions`` (the step references that follow
    are renumbered), to show what each safety step prevents."""
    real = copy_operation.copy_steps

    def reduced(**kwargs):
        steps = real(**kwargs)
        kept = [(seq, s) for seq, s in enumerate(steps, start=1) if s.action not in actions]
        new_seq = {old: new for new, (old, _) in enumerate(kept, start=1)}
        out = []
        for _, step in kept:
            params = dict(step.params)
            if "image_from_step" in params:
                params["image_from_step"] = new_seq[params["image_from_step"]]
            if "steps" in params:
                params["steps"] = [new_seq[s] for s in params["steps"] if s in new_seq]
            out.append(dataclasses.replace(step, params=params))
        return out

    monkeypatch.setattr(copy_operation, "copy_steps", reduced)


# -- the three shapes ---------------------------------------------------------------------------


def test_copy_within_an_account_across_regions(harness, bot_aws_calls):
    image = harness.world.encrypted_image
    root = ask(harness, f"copy {image} from prod to prod:{DST}")
    plan = harness.exact_changes(root)
    assert "CopyImage" in plan and f"SourceRegion={SRC}" in plan and "Encrypted=true" in plan
    # Nothing is shared within one account: no temporary steps.
    assert "ModifyImageAttribute" not in plan and "CreateGrant on" not in plan
    default_key = harness.world.sandbox.aws_managed_ebs_key(PROD, DST)
    assert default_key in plan and "default EBS key" in plan  # prod has no kms_keys entry for eu-west-1
    assert harness.bot.store.get(1).approver_accounts == ["prod"]

    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    [copy] = copies(harness, PROD, DST)
    assert copy["State"] == "available" and copy["OwnerId"] == PROD
    assert all(s["Encrypted"] and s["KmsKeyId"] == default_key for s in snapshots(harness, PROD, DST, copy))
    assert copy["ImageId"] in final["text"] and f"<@{rehearsal.REQUESTER}>" in final["text"]
    assert ec2(harness, PROD, SRC).describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []
    assert_calls_covered_by_policy(bot_aws_calls, "ec2:GetEbsDefaultKmsKeyId")


def test_an_aws_managed_ami_is_re_encrypted_in_place_then_shareable(harness):
    # The documented fix for an aws/ebs AMI: copy it within the account with a CMK.
    image = harness.world.aws_managed_image
    root = ask(harness, f"copy {image} from prod to prod kms alias/ami-shared name legacy-batch-cmk")
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    [copy] = copies(harness, PROD, SRC)
    assert copy["Name"] == "legacy-batch-cmk"
    assert all(s["KmsKeyId"] == harness.world.cmk_arn for s in snapshots(harness, PROD, SRC, copy))
    harness.slash(f"share {copy['ImageId']} from prod to dev")
    assert harness.root_for(f"share {copy['ImageId']}")  # no longer refused


def test_copy_into_another_account_final_reply_also_in_notify_channel(notify_harness):
    harness = notify_harness
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    root = ask(harness, f"copy {image} from prod to dev")
    plan = harness.exact_changes(root)
    for call in ("ModifyImageAttribute", "ModifySnapshotAttribute", "CreateGrant", "CopyImage", "RevokeGrant"):
        assert call in plan
    assert harness.world.dev_cmk_arn in plan and "ClientToken" in plan
    # The temporary grant names prod's amibot role as its retiring principal.
    assert f"retiring principal arn:aws:iam::{PROD}:role/amibot" in plan
    grant = next(s for s in harness.bot.store.get(1).steps if s.action == "kms.create_grant")
    assert grant.params["retiring_principal"] == f"arn:aws:iam::{PROD}:role/amibot"
    assert harness.bot.store.get(1).approver_accounts == ["prod", "dev"]
    # prod's owner cannot approve for dev (and a stranger for nobody).
    harness.click(rehearsal.STRANGER, root)
    assert "Nothing was changed" in harness.ephemeral_for(rehearsal.STRANGER)

    final = approve_both(harness, root)
    request = harness.bot.store.get(1)
    assert request.state == SUCCEEDED and request.approvals == {"prod": rehearsal.OWNER, "dev": rehearsal.DEV_OWNER}
    [copy] = copies(harness, DEV, SRC)
    # Checked from dev: its own image, encrypted with its own key, tags carried.
    assert copy["OwnerId"] == DEV and copy["State"] == "available"
    assert all(s["KmsKeyId"] == harness.world.dev_cmk_arn and s["OwnerId"] == DEV for s in snapshots(harness, DEV, SRC, copy))
    tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
    assert tags["app"] == "payments" and tags["amibot:source-ami"] == image and tags["amibot:request"] == "R-1"
    assert tags["amibot:approvers"] == f"{rehearsal.OWNER},{rehearsal.DEV_OWNER}" and tags["amibot:requester"] == rehearsal.REQUESTER
    assert copy["ImageId"] in final["text"]
    # A copy's completion also goes to notify_channel (design.md §2).
    posted = harness.fake.wait_for(lambda: harness.fake.messages(NOTIFY) or None)
    assert [m["text"] for m in posted] == [final["text"]]
    # The temporary share is gone, checked from prod; dev keeps its copy.
    nothing_left_shared(harness, image, cmk)
    assert "retired KMS grant" in thread_text(harness, root)  # the temporary grant, with its token
    assert [s.state for s in harness.bot.store.steps(1)][:3] == ["undone"] * 3


def test_a_copy_removes_only_what_it_added_an_earlier_share_stays(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.slash(f"share {image} from prod to dev")
    share_root = harness.root_for(f"share {image}")
    harness.click(rehearsal.OWNER, share_root)
    harness.final_reply(share_root)
    harness.settle()
    prod_kms = harness.world.sandbox.session(PROD, SRC).client("kms")
    share_grants = prod_kms.list_grants(KeyId=cmk)["Grants"]
    assert len(share_grants) == 1

    root = ask(harness, f"copy {image} from prod to dev")
    harness.click(rehearsal.OWNER, root)
    harness.click(rehearsal.DEV_OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(2).state == SUCCEEDED and "The copy is" in final["text"]
    # R-1's launch permission and grant are R-1's: still there; the copy's own are gone.
    prod = ec2(harness, PROD, SRC)
    assert prod.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == [{"UserId": DEV}]
    assert [g["GrantId"] for g in prod_kms.list_grants(KeyId=cmk)["Grants"]] == [share_grants[0]["GrantId"]]
    snap = prod.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert prod.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    assert "already in place before" in thread_text(harness, root)


def test_copy_into_another_account_and_region_shows_progress(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.world.sandbox.hold_pending(True)
    root = ask(harness, f"copy {image} from prod to dev:{DST}")
    harness.click(rehearsal.OWNER, root)
    harness.click(rehearsal.DEV_OWNER, root)
    harness.settle()
    harness.clock.advance(61)  # the progress reply's next edit comes a minute after its last
    started = harness.fake.wait_for(lambda: "started" in thread_text(harness, root))
    harness.settle()
    [pending] = copies(harness, DEV, DST)
    assert pending["State"] == "pending" and pending["ImageId"] in thread_text(harness, root)
    assert harness.bot.store.get(1).state == "running"

    harness.world.sandbox.set_copy_progress(pending["ImageId"], 40)
    harness.poll()
    assert "40%" in str(harness.fake.message(harness.channel, root["ts"])["blocks"])  # the card's header

    assert harness.world.sandbox.complete(pending["ImageId"]) == "available"
    harness.poll()
    final = harness.final_reply(root)
    assert harness.bot.store.get(1).state == SUCCEEDED and pending["ImageId"] in final["text"]
    [copy] = copies(harness, DEV, DST)
    assert copy["ImageId"] == pending["ImageId"]  # the same copy, continued
    assert all(s["KmsKeyId"] == harness.world.dev_cmk_other_region_arn for s in snapshots(harness, DEV, DST, copy))
    assert copies(harness, DEV, SRC) == []
    nothing_left_shared(harness, image, cmk)
    assert started


def test_a_restart_continues_the_same_copy(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    try:
        sandbox.hold_pending(True)
        root = ask(h, f"copy {h.world.encrypted_image} from prod to dev:{DST}")
        h.click(rehearsal.OWNER, root)
        h.click(rehearsal.DEV_OWNER, root)
        h.settle()
        h.clock.advance(61)  # the progress reply's next edit comes a minute after its last
        h.fake.wait_for(lambda: "started" in thread_text(h, root))
        h.settle()
    finally:
        h.bot.stop()
    calls = sandbox.calls("CopyImage")
    config = h.bot.config
    again = Amibot(config, clock=h.clock, grant_wait_seconds=2, sleep=lambda s: None, tick_seconds=3600, notifier_poll_seconds=0.05)
    again.start()  # resumes the running request
    try:
        h2 = dataclasses.replace(h, bot=again)
        h2.settle()
        [pending] = copies(h2, DEV, DST)
        sandbox.complete(pending["ImageId"])
        h2.poll()
        final = h2.final_reply(root)
        assert pending["ImageId"] in final["text"]
        assert [c["ImageId"] for c in copies(h2, DEV, DST)] == [pending["ImageId"]]
        assert sandbox.calls("CopyImage") == calls  # continued, never started again
    finally:
        again.stop()


# -- refusals before anyone is asked ---------------------------------------------------------------


def refused(harness, text: str, user: str = rehearsal.REQUESTER) -> str:
    before = len(harness.fake.ephemerals(user))
    assert harness.slash(text).status == 200
    answer = harness.ephemeral_for(user, after=before)
    harness.settle()
    assert harness.bot.store.find() == [] and harness.fake.messages(harness.channel) == []
    return answer


def test_refused_before_anyone_is_asked_with_the_fix(harness):
    world = harness.world
    # An aws/ebs AMI cannot go to another account; the fix is a copy within prod first.
    answer = refused(harness, f"copy {world.aws_managed_image} from prod to dev")
    assert "aws/ebs" in answer and f"to prod:{SRC} kms" in answer
    # KMS keys are regional: dev's us-east-1 key (named by id) is not found in eu-west-1.
    answer = refused(harness, f"copy {world.encrypted_image} from prod to dev:{DST} kms {world.dev_cmk_arn.rsplit('/', 1)[1]}")
    assert "keys are regional" in answer and f"`accounts.dev.kms_keys` for {DST}" in answer
    # The copy must not depend on another account's key.
    answer = refused(harness, f"copy {world.encrypted_image} from prod to dev kms {world.cmk_arn}")
    assert f"belongs to account {PROD}, not to `dev`" in answer and "never depends on another account's key" in answer
    # AMI names are unique per account and region.
    world.sandbox.create_image(DEV, SRC, name="taken-name")
    answer = refused(harness, f"copy {world.encrypted_image} from prod to dev name taken-name")
    assert "already has an AMI named `taken-name`" in answer
    assert world.sandbox.calls("CopyImage") == 0


# -- safety steps: without each, the copy fails -----------------------------------------------------


def failed_copy(harness, text: str) -> tuple[dict, str]:
    root = ask(harness, text)
    final = approve_both(harness, root)
    assert harness.bot.store.get(1).state == FAILED
    return root, final["text"]


def test_without_the_snapshot_permission_step_the_copy_fails_with_the_storage_message(harness, monkeypatch):
    without(monkeypatch, "ec2.add_snapshot_permission")
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    root, text = failed_copy(harness, f"copy {image} from prod to dev:{DST}")
    assert "permission to access the storage" in text and "snapshot permission" in text and "Fix:" in text
    assert copies(harness, DEV, DST) == []
    nothing_left_shared(harness, image, cmk)  # launch permission and grant undone
    assert "Undone:" in text and "retired KMS grant" in text


@pytest.mark.parametrize(
    "removed, words",
    [
        # The check from dev before the copy sees the missing grant at once ...
        (("kms.create_grant",), "not allowed to use that KMS key"),
        # ... and without that check the copy is started and fails later, as in AWS.
        (("kms.create_grant", "verify.target_access"), "could not use the source AMI's KMS key"),
    ],
)
def test_without_the_grant_step_the_copy_fails(harness, monkeypatch, removed, words):
    without(monkeypatch, *removed)
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    root, text = failed_copy(harness, f"copy {image} from prod to dev:{DST}")
    assert words in text and "Fix:" in text
    assert copies(harness, DEV, DST) == []  # a failed copy is deregistered
    nothing_left_shared(harness, image, cmk)


def test_with_a_kms_key_not_in_the_destination_region_the_copy_fails_in_plain_words_and_undoes(harness, monkeypatch):
    # As if the preflight had been fooled (or the key moved): the copy is started with
    # dev's us-east-1 key for an eu-west-1 copy. AWS checks KmsKeyId only later.
    wrong = harness.world.dev_cmk_arn
    monkeypatch.setattr(
        copy_operation, "destination_key",
        lambda ctx, target, region, requested: DestinationKey(wrong, DEV, region, "CUSTOMER", "Enabled", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", ["alias/ami-dev"], "test"),
    )
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    root, text = failed_copy(harness, f"copy {image} from prod to dev:{DST}")
    assert "keys are regional" in text and "destination key" in text and "Fix:" in text
    assert "deregistered the unfinished copy" in text
    assert "removed launch permission" in text and "removed snapshot permission" in text and "retired KMS grant" in text
    assert copies(harness, DEV, DST) == []
    nothing_left_shared(harness, image, cmk)


def assert_calls_covered_by_policy(calls: list[tuple[str, str]], *expected: str) -> None:
    from aws.iam import member_account_actions

    allowed = set(member_account_actions()) | {"sts:AssumeRole", "kms:RetireGrant"}  # RetireGrant: the grant authorises it
    made = {f"{service}:{operation}" for service, operation in calls}
    assert set(expected) <= made
    assert made <= allowed, f"calls not in the generated policy: {sorted(made - allowed)}"


def test_every_aws_call_of_a_copy_with_a_test_launch_is_covered_by_the_generated_policy(harness, bot_aws_calls):
    root = ask(harness, f"copy {harness.world.encrypted_image} from prod to dev:{DST} verify")
    assert "Test launch as `dev`" in harness.exact_changes(root)
    approve_both(harness, root)
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert_calls_covered_by_policy(bot_aws_calls, "ec2:CopyImage", "kms:CreateGrant", "kms:RetireGrant", "ec2:RunInstances")
