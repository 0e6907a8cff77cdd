"""Allowed AMIs (issue 15 §4): a target whose Allowed AMIs is enabled and allows no
AMI of the source would never see the share or the copy's temporary share, so the
request is refused before anyone is asked; audit-mode is a WARNING line. The
sandbox hides such AMIs (tests/offline/test_sandbox_allowed_images.py)."""

from __future__ import annotations

from tests.handlers.test_aws_rules_over_http import planned, refused
from offline import rehearsal

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC = rehearsal.REGION


def test_a_target_whose_allowed_amis_hide_the_source_refuses_before_approval(harness):
    image = harness.world.plain_image
    harness.world.sandbox.set_allowed_images(DEV, SRC, "enabled", ["amazon"])
    share = refused(harness, f"share {image} from prod to dev")
    assert "has Allowed AMIs enabled" in share and f"add `{PROD}`" in share and "ec2-allowed-amis.html" in share
    copy = refused(harness, f"copy {image} from prod to dev:{rehearsal.OTHER_REGION}")  # dev copies it from the source region
    assert "has Allowed AMIs enabled" in copy


def test_allowed_amis_in_audit_mode_is_a_warning(harness):
    harness.world.sandbox.set_allowed_images(DEV, SRC, "audit-mode", ["amazon"])
    text = planned(harness, f"share {harness.world.plain_image} from prod to dev")
    assert "WARNING:" in text and "audit-mode" in text and f"add `{PROD}`" in text
