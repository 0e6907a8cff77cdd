"""The one clock tests drive (offline/clock.py)."""

from __future__ import annotations

import time

from offline.clock import Clock


def test_a_frozen_clock_moves_only_when_advanced():
    clock = Clock(at=1000.0)
    assert clock() == 1000.0
    clock.advance(61)
    assert clock() == 1061.0


def test_the_default_clock_is_real_time_plus_what_was_advanced():
    clock = Clock()
    before = time.time()
    clock.advance(3600)
    assert before + 3600 <= clock() <= time.time() + 3600


def test_the_sandbox_follows_the_test_clock(sandbox, clock):
    """A consistency window ends when the test moves its clock, not by waiting."""
    from offline import rehearsal

    sandbox.set_consistency_delay(60)
    key = sandbox.create_key(rehearsal.PROD)
    grant = sandbox.role_session(rehearsal.PROD, "sandbox-admin").client("kms").create_grant(
        KeyId=key, GranteePrincipal=f"arn:aws:iam::{rehearsal.DEV}:root", Operations=["Decrypt"])["GrantId"]
    assert sandbox.hidden(grant)
    clock.advance(61)
    assert not sandbox.hidden(grant)
