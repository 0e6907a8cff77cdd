"""Required tags refusing with the fix (before anyone is asked), `/ami tag` as an
approved operation, and `verify` on a share catching a key the target cannot use."""

from __future__ import annotations

import dataclasses

import pytest

from offline import rehearsal
from bot.verbs.share import plan as share_operation
from bot.requests import FAILED, SUCCEEDED
from tests.handlers.test_copy_over_http import ec2, start

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC = rehearsal.REGION


@pytest.fixture
def harness(sandbox, fake_slack, tmp_path):
    h = start(sandbox, fake_slack, tmp_path)
    h.bot.config = dataclasses.replace(h.bot.config, bot=dataclasses.replace(h.bot.config.bot, required_tags=("owner", "app", "version")))
    h.bot.service.config = h.bot.config
    yield h
    h.bot.stop()


def test_required_tags_refuse_before_anyone_is_asked_then_tag_fixes_it(harness):
    image = harness.world.encrypted_image  # tagged app and owner, not version
    harness.slash(f"share {image} from prod to dev")
    refusal = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "lacks the tag `version`" in refusal
    assert f"aws ec2 create-tags --region {SRC} --resources {image} snap-" in refusal and "Key=version,Value=" in refusal
    assert f"/ami tag {image} from prod:{SRC} version=" in refusal
    assert harness.bot.store.find() == []  # nothing created, nobody asked

    harness.slash(f"tag {image} from prod version=2026.11")
    root = harness.root_for(f"tag {image}")
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    tags = {t["Key"]: t["Value"] for t in ec2(harness, PROD, SRC).describe_images(ImageIds=[image])["Images"][0]["Tags"]}
    assert tags["version"] == "2026.11" and tags["app"] == "payments"

    harness.slash(f"share {image} from prod to dev")
    assert harness.root_for(f"share {image}")  # no longer refused


def test_verified_share_whose_key_the_target_cannot_use_fails_in_plain_words(harness, monkeypatch):
    # Plan the share without the grant (and without the check that would notice it
    # first), as when a grant was forgotten: only the test launch can tell.
    real = share_operation.share_steps

    def without_grant(**kwargs):
        return [s for s in real(**kwargs) if s.action not in ("kms.create_grant", "verify.target_access")]

    monkeypatch.setattr(share_operation, "share_steps", without_grant)
    image = harness.world.encrypted_image
    ec2(harness, PROD, SRC).create_tags(Resources=[image], Tags=[{"Key": "version", "Value": "1"}])
    harness.slash(f"share {image} from prod to dev verify")
    root = harness.root_for(f"share {image}")
    assert "Test launch as `dev`" in harness.exact_changes(root)
    harness.click(rehearsal.OWNER, root)
    for _ in range(5):
        if harness.bot.store.get(1).state == FAILED:
            break
        harness.poll()
    final = harness.final_reply(root)["text"]
    assert harness.bot.store.get(1).state == FAILED
    assert "Client.InternalError" in final and "terminated at once" in final
    # Undone: the launch permission it added.
    assert ec2(harness, PROD, SRC).describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []


def test_verified_share_with_the_grant_passes_its_test_launch(harness):
    image = harness.world.encrypted_image
    ec2(harness, PROD, SRC).create_tags(Resources=[image], Tags=[{"Key": "version", "Value": "1"}])
    harness.slash(f"share {image} from prod to dev verify")
    root = harness.root_for(f"share {image}")
    harness.click(rehearsal.OWNER, root)
    for _ in range(5):
        if harness.bot.store.get(1).state == SUCCEEDED:
            break
        harness.poll()
    assert harness.bot.store.get(1).state == SUCCEEDED
    launch = next(s for s in harness.bot.store.steps(1) if s.action == "verify.test_launch")
    assert launch.state == "done" and launch.result.get("instance_id")
