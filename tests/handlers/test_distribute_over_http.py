"""`/ami distribute` end to end over the real HTTP endpoint against the sandbox: four
account-regions in one request, one approval per account, every copy in flight at
once with its progress in the one root message, one target failing without
stopping the others, and the same distribution asked again copying only what is
missing."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from offline import rehearsal
from bot.requests import PARTIAL, SUCCEEDED
from tests.handlers.test_copy_over_http import assert_calls_covered_by_policy, copies, ec2, nothing_left_shared, start
from offline.scenarios.stage import blocks_text

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC = rehearsal.REGION
TARGETS = ["dev:us-east-1", "dev:eu-west-1", "prod:eu-west-1", "dev:us-west-2"]


@pytest.fixture
def harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    yield h
    h.bot.stop()


def ask_and_approve(harness, text: str, number: int) -> dict:
    harness.slash(text)
    root = harness.fake.wait_for(lambda: next((m for m in harness.fake.messages(harness.channel) if m.get("text", "").startswith(f"R-{number}:")), None))
    harness.click(rehearsal.OWNER, root)
    harness.fake.wait_for(lambda: harness.bot.store.get(number).approvals or None)
    harness.click(rehearsal.DEV_OWNER, root)
    harness.fake.wait_for(lambda: harness.bot.store.get(number).state != "pending_approval" or None)
    harness.settle()
    return root


def root_text(harness, root: dict) -> str:
    return blocks_text(harness.fake.message(harness.channel, root["ts"]))


def test_distribution_to_four_account_regions_one_fails_then_retry_copies_only_it(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    sandbox = harness.world.sandbox
    sandbox.hold_pending(True)
    text = f"distribute {image} from prod to {','.join(TARGETS)}"
    root = ask_and_approve(harness, text, 1)
    request = harness.bot.store.get(1)
    # One request, one approval per account touched; the plan names every target's key.
    assert request.kind == "distribute" and request.approver_accounts == ["prod", "dev"]
    plan = harness.exact_changes(root)
    for target in TARGETS:
        assert f"Target `{target}`" in plan
    assert harness.world.dev_cmk_other_region_arn in plan and "region=eu-west-1" in plan

    # Every copy is in flight at once (not one after the other).
    pending = {t: copies(harness, *(lambda a, r: ({"dev": DEV, "prod": PROD}[a], r))(*t.split(":"))) for t in TARGETS}
    assert all(len(found) == 1 and found[0]["State"] == "pending" for found in pending.values()), pending
    ids = {t: found[0]["ImageId"] for t, found in pending.items()}

    sandbox.set_copy_progress(ids["dev:eu-west-1"], 42)
    sandbox.complete(ids["dev:us-east-1"])
    harness.poll()
    progress = root_text(harness, root)
    assert "1 of 4 available" in progress and "dev:eu-west-1 42%" in progress

    sandbox.fail(ids["dev:eu-west-1"], reason="Copy failed: an internal error occurred.")
    sandbox.complete(ids["prod:eu-west-1"])
    sandbox.complete(ids["dev:us-west-2"])
    harness.poll()
    harness.poll()
    final = harness.final_reply(root)["text"]
    request = harness.bot.store.get(1)
    assert request.state == PARTIAL, final
    for target in ("dev:us-east-1", "prod:eu-west-1", "dev:us-west-2"):
        # Results first: each AMI links to the EC2 console in its own region, beside its account.
        alias, region = target.split(":")
        account = {"dev": DEV, "prod": PROD}[alias]
        assert (f"`{target}` ({account}): <https://{region}.console.aws.amazon.com/ec2/home?region={region}"
                f"#ImageDetails:imageId={ids[target]}|{ids[target]}>") in final, final
    assert "`dev:eu-west-1`: failed" in final and "internal error" in final
    assert "partly done" in final and "3 of 4 targets" in final
    # The failed target's unfinished copy is gone; the others stand, tagged with their region.
    assert copies(harness, DEV, "eu-west-1") == []
    tags = {t["Key"]: t["Value"] for t in copies(harness, DEV, "us-west-2")[0]["Tags"]}
    assert tags["region"] == "us-west-2" and tags["app"] == "payments" and tags["amibot:request"] == "R-1"
    # The temporary share is removed once every target finished.
    nothing_left_shared(harness, image, cmk)

    # The same distribution again: only the missing target is copied.
    sandbox.hold_pending(False)
    root2 = ask_and_approve(harness, text, 2)
    plan2 = harness.exact_changes(root2)
    assert "already copied by R-1" in plan2
    copy_steps = [s for s in harness.bot.store.get(2).steps if s.action == "ec2.copy_image"]
    assert [(s.account_id, s.region) for s in copy_steps] == [(DEV, "eu-west-1")]
    harness.poll()
    final2 = harness.final_reply(root2)["text"]
    assert harness.bot.store.get(2).state == SUCCEEDED, final2
    [retried] = copies(harness, DEV, "eu-west-1")
    assert retried["State"] == "available" and f"`dev:eu-west-1` ({DEV}): <https://eu-west-1.console" in final2 and f"|{retried['ImageId']}>" in final2
    for target in ("dev:us-east-1", "prod:eu-west-1", "dev:us-west-2"):
        account, region = target.split(":")
        assert len(copies(harness, {"dev": DEV, "prod": PROD}[account], region)) == 1  # not copied twice
    nothing_left_shared(harness, image, cmk)
    print("\nFINAL R-1:\n" + final + "\nFINAL R-2:\n" + final2)


def test_distribution_shares_each_copy_updates_a_launch_template_and_test_launches(harness, bot_aws_calls):
    image = harness.world.encrypted_image
    dev_eu = ec2(harness, DEV, "eu-west-1")
    template = dev_eu.create_launch_template(
        LaunchTemplateName="payments-web", LaunchTemplateData={"ImageId": "ami-00000000000000000", "InstanceType": "t3.small"},
        # Its owner marked it: amibot may add versions to it (aws.iam.LAUNCH_TEMPLATE_TAG).
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "amibot:update-lt", "Value": "true"}]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    text = f"distribute {image} from prod to dev:us-east-1,dev:eu-west-1 share-with prod update-lt {template}@dev:eu-west-1 default verify"
    root = ask_and_approve(harness, text, 1)
    plan = harness.exact_changes(root)
    assert "CreateLaunchTemplateVersion" in plan and "share-with" in plan and "Test launch" in plan
    for _ in range(6):
        if harness.bot.store.get(1).is_final:
            break
        harness.poll()
    final = harness.final_reply(root)["text"]
    assert harness.bot.store.get(1).state == SUCCEEDED, final
    [copy_eu] = copies(harness, DEV, "eu-west-1")
    [copy_us] = copies(harness, DEV, "us-east-1")
    # Each copy is shared from dev with prod (launch permission and a grant on dev's key).
    for client, copy, key in ((dev_eu, copy_eu, harness.world.dev_cmk_other_region_arn), (ec2(harness, DEV, SRC), copy_us, harness.world.dev_cmk_arn)):
        assert client.describe_image_attribute(ImageId=copy["ImageId"], Attribute="launchPermission")["LaunchPermissions"] == [{"UserId": PROD}]
        region = "eu-west-1" if client is dev_eu else SRC
        grants = harness.world.sandbox.session(DEV, region).client("kms").list_grants(KeyId=key)["Grants"]
        assert any(g["GranteePrincipal"] == f"arn:aws:iam::{PROD}:root" for g in grants)
    # A new launch-template version with the new AMI, made the default; the rest inherited.
    versions = dev_eu.describe_launch_template_versions(LaunchTemplateId=template)["LaunchTemplateVersions"]
    latest = max(versions, key=lambda v: v["VersionNumber"])
    assert latest["VersionNumber"] == 2 and latest["DefaultVersion"]
    assert latest["LaunchTemplateData"]["ImageId"] == copy_eu["ImageId"] and latest["LaunchTemplateData"]["InstanceType"] == "t3.small"
    assert f"launch template {template} version 2 uses {copy_eu['ImageId']}" in final and "test launch passed" in final
    assert "shared with 111111111111" in final
    assert_calls_covered_by_policy(bot_aws_calls, "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:RunInstances", "kms:CreateGrant")
    # From outside, as dev's amibot role: the delivered (test-launched) copy and its
    # snapshot are no longer amibot's to delete (amibot:disposable removed by the last step).
    # dev has `retire = true` (its operator lets /ami retire deregister its images): the
    # member policy of an account without it is the one whose deletes are only disposable.
    rehearsal.attach_member_policy(harness.world.sandbox, harness.bot.config, "dev", retire=False)
    role = harness.world.sandbox.role_session(DEV, region="eu-west-1").client("ec2")
    snapshot = copy_eu["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert "amibot:disposable" not in {t["Key"] for t in copy_eu.get("Tags", [])}
    for call, arg in ((role.deregister_image, {"ImageId": copy_eu["ImageId"]}), (role.delete_snapshot, {"SnapshotId": snapshot})):
        with pytest.raises(ClientError, match="UnauthorizedOperation"):
            call(**arg)


def test_a_restart_continues_every_target_copy_without_starting_another(sandbox, fake_slack, tmp_path):
    import dataclasses

    from bot.app import Amibot

    h = start(sandbox, fake_slack, tmp_path)
    try:
        sandbox.hold_pending(True)
        root = ask_and_approve(h, f"distribute {h.world.encrypted_image} from prod to dev:us-east-1,dev:eu-west-1", 1)
        assert len(sandbox.pending_images()) == 2
    finally:
        h.bot.stop()
    calls = sandbox.calls("CopyImage")
    again = Amibot(h.bot.config, clock=h.clock, grant_wait_seconds=2, sleep=lambda s: None, tick_seconds=3600, notifier_poll_seconds=0.05)
    again.start()  # resumes the running distribution
    try:
        h2 = dataclasses.replace(h, bot=again)
        h2.settle()
        for image_id in sandbox.pending_images():
            sandbox.complete(image_id)
        h2.poll()
        final = h2.final_reply(root)["text"]
        assert again.store.get(1).state == SUCCEEDED, final
        assert sandbox.calls("CopyImage") == calls  # continued, never started again
        assert len(copies(h2, DEV, "us-east-1")) == 1 and len(copies(h2, DEV, "eu-west-1")) == 1
    finally:
        again.stop()


def test_update_lt_refuses_an_unmarked_template_before_anyone_is_asked(harness):
    """Only templates their owners tagged amibot:update-lt (the member policy would
    refuse the write anyway, after the copies): refused in the preflight, with the fix."""
    dev_eu = ec2(harness, DEV, "eu-west-1")
    template = dev_eu.create_launch_template(LaunchTemplateName="unmarked", LaunchTemplateData={"ImageId": "ami-00000000000000000"})["LaunchTemplate"]["LaunchTemplateId"]
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.slash(f"distribute {harness.world.encrypted_image} from prod to dev:eu-west-1 update-lt {template}@dev:eu-west-1")
    answer = harness.ephemeral_for(rehearsal.REQUESTER, after=before)
    assert "not marked for amibot" in answer and "Key=amibot:update-lt,Value=true" in answer
    assert harness.bot.store.find() == []
