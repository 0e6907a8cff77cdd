"""share-with (``ec2.share_copy``) holds its launch permissions like every share, and
deciding to remove and removing are one guarded step (issue 15 §3), for launch and
snapshot permissions alike."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from aws.actions import StepContext, get_action
from aws.actions.holdings import Release, launch_permission_guard, snapshot_permission_guard
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, DEV, REGION = rehearsal.PROD, rehearsal.DEV, rehearsal.REGION


class Recording:
    """Holdings that record what was held and released, and whether inside the guard."""

    def __init__(self, ec2, image_id: str, kept_for: list[str] | None = None, read=None):
        self.ec2, self.image_id, self.kept_for = ec2, image_id, kept_for or []
        self.read = read or (lambda: [p.get("UserId") for p in self.ec2.describe_image_attribute(
            ImageId=self.image_id, Attribute="launchPermission")["LaunchPermissions"]])
        self.guarded: str | None = None
        self.events: list[tuple] = []

    def hold(self, resource, *, created):
        self.events.append(("hold", resource, created, self.guarded))

    def release(self, resource, *, created):
        self.events.append(("release", resource, created, self.guarded))
        return Release(remove=not self.kept_for, kept_for=self.kept_for)

    def end(self, resource):
        return Release(remove=True)

    @contextmanager
    def guard(self, name):
        self.guarded = name
        try:
            yield
        finally:
            self.events.append(("guard-exit", name, self.read()))
            self.guarded = None


@pytest.fixture
def image(sandbox):
    rehearsal.seed(sandbox)
    return sandbox.create_image(PROD, REGION, name="share-with-copy")


def context(holdings) -> StepContext:
    sessions = AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)})
    return StepContext(sessions=sessions, request_uid="0123456789abcdef", session_tag="R-1-test", sleep=lambda s: None, holdings=holdings)


def test_share_with_holds_and_removes_under_one_guard(sandbox, image):
    ec2 = sandbox.client("ec2", PROD, REGION)
    action = get_action("ec2.share_copy")
    params = action.Params(image_id=image, account_ids=[DEV])
    guard = launch_permission_guard(PROD, REGION, image)
    holdings = Recording(ec2, image)
    result = action.run(context(holdings), PROD, REGION, params)
    assert ("hold", f"{guard}:{DEV}", True, guard) in holdings.events  # held, inside the guard
    holdings.events.clear()
    action.revert(context(holdings), PROD, REGION, params, result)
    # Decided inside the guard, and removed before the guard let anyone else read.
    assert holdings.events == [("release", f"{guard}:{DEV}", True, guard), ("guard-exit", guard, [])]


def test_share_with_keeps_what_another_request_still_holds(sandbox, image):
    ec2 = sandbox.client("ec2", PROD, REGION)
    action = get_action("ec2.share_copy")
    params = action.Params(image_id=image, account_ids=[DEV])
    result = action.run(context(Recording(ec2, image)), PROD, REGION, params)
    said = action.revert(context(Recording(ec2, image, kept_for=["R-7"])), PROD, REGION, params, result)
    assert "R-7 still needs it" in said
    assert ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == [{"UserId": DEV}]


def test_snapshot_permission_is_decided_and_removed_under_one_guard(sandbox, image):
    ec2 = sandbox.client("ec2", PROD, REGION)
    snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    action = get_action("ec2.add_snapshot_permission")
    params = action.Params(snapshot_ids=[snapshot], account_ids=[DEV])
    guard = snapshot_permission_guard(PROD, REGION, snapshot)
    holdings = Recording(ec2, image, read=lambda: [p.get("UserId") for p in ec2.describe_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission")["CreateVolumePermissions"]])
    result = action.run(context(holdings), PROD, REGION, params)
    assert ("hold", f"{guard}:{DEV}", True, guard) in holdings.events
    holdings.events.clear()
    action.revert(context(holdings), PROD, REGION, params, result)
    assert holdings.events == [("release", f"{guard}:{DEV}", True, guard), ("guard-exit", guard, [])]
