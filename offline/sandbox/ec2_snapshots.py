"""EC2 snapshots: DescribeSnapshots across accounts, ModifySnapshotAttribute with
``createVolumePermission`` (refused for the AWS-managed key), and ``Progress``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from offline.sandbox.consistency import _hidden_from
from offline.sandbox.ec2_lifecycle import _tick
from offline.sandbox.policy import _lookup_key
from offline.sandbox.state import _ORIGINALS, _State, _active, _ec2_backends, _region_backends
from offline.sandbox.visibility import _can_restore, _foreign_view
from offline.sandbox.wire import _ec2_patch


def _patched_progress_property(self: Any) -> str:
    progress = self.__dict__.get("_sbx_progress")
    if progress is not None and _active() is not None:
        return progress
    return _ORIGINALS["progress"].fget(self)


@_ec2_patch("ElasticBlockStore.describe_snapshots")
def _describe_snapshots(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.utils import generic_filter

    self.error_on_dryrun()
    _tick(state)
    caller, region = self.current_account, self.region
    snapshot_ids = self._get_param("SnapshotIds", []) or []
    owner_ids = self._get_param("OwnerIds", []) or []
    restorable = self._get_param("RestorableByUserIds", []) or []
    filters = self._filters_from_querystring()
    snaps: list[Any] = list(self.ec2_backend.snapshots.values())
    seen = {s.id for s in snaps}
    for acct, be in _region_backends(_ec2_backends(), region):
        if acct == caller:
            continue
        for snap in list(be.snapshots.values()):
            if snap.id not in seen and _can_restore(snap, caller):
                snaps.append(_foreign_view(snap))
                seen.add(snap.id)
    if state.born:
        # Eventual consistency: a new snapshot is not visible for a while.
        snaps = [s for s in snaps if not _hidden_from(self, state, s.id)]
    if snapshot_ids:
        from offline.sandbox.lags import permission_lagging

        snaps = [s for s in snaps if s.id in snapshot_ids and not permission_lagging(self, state, s.id, caller)]
        missing = sorted(set(snapshot_ids) - {s.id for s in snaps})
        if missing:
            raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
    if owner_ids:
        wanted = {caller if o == "self" else o for o in owner_ids}
        snaps = [s for s in snaps if s.owner_id in wanted]
    if restorable:
        users = {caller if u == "self" else u for u in restorable}
        snaps = [
            s for s in snaps
            if any(u == s.owner_id or u in s.create_volume_permission_userids for u in users)
            or ("all" in users and "all" in s.create_volume_permission_groups)
        ]
    if filters:
        snaps = generic_filter(filters, snaps)
    return ActionResult({"Snapshots": snaps})


@_ec2_patch("ElasticBlockStore.modify_snapshot_attribute")
def _modify_snapshot_attribute(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import EmptyResult
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIAttributeItemValueError

    snapshot_id = self._get_param("SnapshotId")
    structured = self._get_param("CreateVolumePermission") or {}
    operation_type = self._get_param("OperationType")
    adds: list[dict[str, str]] = []
    removes: list[dict[str, str]] = []
    if operation_type in ("add", "remove"):
        perms = [{"UserId": u} for u in self._get_param("UserIds", []) or []]
        perms += [{"Group": g} for g in self._get_param("GroupNames", []) or []]
        (adds if operation_type == "add" else removes).extend(perms)
    adds += list(structured.get("Add", []) or [])
    removes += list(structured.get("Remove", []) or [])
    snapshot = self.ec2_backend.get_snapshot(snapshot_id)
    for perm in adds + removes:
        if "UserId" in perm and not re.fullmatch(r"\d{12}", perm["UserId"] or ""):
            raise InvalidAMIAttributeItemValueError("userId", perm["UserId"])
        if "Group" in perm and perm["Group"] != "all":
            raise InvalidAMIAttributeItemValueError("UserGroup", perm["Group"])
    if adds and snapshot.encrypted:
        hit = _lookup_key(snapshot.kms_key_id, snapshot.owner_id, self.region) if snapshot.kms_key_id else None
        if snapshot.kms_key_id is None or (hit is not None and hit[1].key_manager == "AWS"):
            # AWS: snapshots encrypted with the AWS-managed key cannot be shared.
            raise EC2ClientError("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    self.error_on_dryrun()
    add_users = [p["UserId"] for p in adds if "UserId" in p]
    add_groups = [p["Group"] for p in adds if "Group" in p]
    rm_users = [p["UserId"] for p in removes if "UserId" in p]
    rm_groups = [p["Group"] for p in removes if "Group" in p]
    if add_users or add_groups:
        from offline.sandbox.lags import note_granted

        new_users = [u for u in add_users if u not in snapshot.create_volume_permission_userids]
        self.ec2_backend.add_create_volume_permission(snapshot_id, user_ids=add_users, groups=add_groups)
        note_granted(self, state, snapshot_id, new_users)
    if rm_users or rm_groups:
        self.ec2_backend.remove_create_volume_permission(snapshot_id, user_ids=rm_users, groups=rm_groups)
    return EmptyResult()
