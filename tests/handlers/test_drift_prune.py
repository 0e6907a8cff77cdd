"""Drift ledger prune (issue 15 §1): an AMI AWS says no longer exists (InvalidAMIID.NotFound,
past the consistency window) is pruned from the drift ledger, so later runs do not ask
about it again; inside the window "not found" may be "not visible yet" and prunes nothing."""

from __future__ import annotations

import bot.audit as audit
from tests.handlers.test_audit_over_http import PROD, SRC, harness, share_with_dev  # noqa: F401 (fixture)


def test_an_ami_aws_says_no_longer_exists_is_not_asked_about_again(harness, monkeypatch):
    image = harness.world.encrypted_image
    share_with_dev(harness)
    drift, sandbox, store = harness.bot.clockwork.drift, harness.world.sandbox, harness.bot.store
    assert drift.call_budget == harness.bot.config.bot.drift_call_budget == 2000
    not_found = dict(code="InvalidAMIID.NotFound", status=400, message=f"The image id '[{image}]' does not exist", account=PROD)

    sandbox.inject_fault("DescribeImages", times=1, **not_found)
    drift.check()  # within the window of the share: maybe not visible yet
    sandbox.clear_faults()
    assert store.drift_gone_images() == set()

    harness.clock.advance(harness.bot.config.bot.consistency_window_seconds + 1)
    sandbox.inject_fault("DescribeImages", times=1, **not_found)
    drift.check()
    sandbox.clear_faults()
    assert store.drift_gone_images() == {(PROD, SRC, image)}

    reads = []
    real = audit.read_image_access
    monkeypatch.setattr(audit, "read_image_access", lambda sessions, account, region, ami, *a, **k: (reads.append(ami), real(sessions, account, region, ami, *a, **k))[1])
    drift.check()
    assert image not in reads
