"""How sandbox images come to be and move through pending, available and failed.

Images made by CopyImage/CreateImage are held, progress with wall time or finish at
once; when they finish, their key checks decide ``available`` or ``failed`` (with a
``StateReason``). Also: one snapshot per device for an image, tag specifications, and
an account's default EBS key.
"""

from __future__ import annotations

from typing import Any, Callable

from offline.sandbox.policy import _key_by_alias
from offline.sandbox.state import _ec2_backends, _image_snapshots, _kms_backends, _locate_image, _Pending, _State


# --------------------------------------------------------------------------- image states


def _set_pending(ami: Any, progress: int = 0) -> None:
    ami.state = "pending"
    ami.state_reason = None
    for snap in _image_snapshots(ami):
        snap.status = "pending"
        snap._sbx_progress = f"{progress}%"


def _set_available(ami: Any) -> None:
    ami.state = "available"
    ami.state_reason = None
    for snap in _image_snapshots(ami):
        snap.status = "completed"
        snap.__dict__.pop("_sbx_progress", None)


def _set_failed(ami: Any, code: str, message: str) -> None:
    ami.state = "failed"
    ami.state_reason = {"Code": code, "Message": message}
    for snap in _image_snapshots(ami):
        snap.status = "error"


def _resolve(state: _State, ami: Any) -> str:
    """Finish a pending image the way AWS would: available, or failed when a check
    (key usable, key present) says so at this moment."""
    state.pending.pop(ami.id, None)
    check = state.checks.get(ami.id)
    problem = check() if check else None
    if problem:
        _set_failed(ami, *problem)
    else:
        _set_available(ami)
    return ami.state


def _register_new_image(state: _State, ami: Any, check: Callable[[], tuple[str, str] | None] | None) -> None:
    if check is not None:
        state.checks[ami.id] = check
    if state.hold_all or state.copy_duration:
        state.pending[ami.id] = _Pending(ami.id, held=state.hold_all, started=state.clock())
        _set_pending(ami)
    else:
        _resolve(state, ami)


def _tick(state: _State) -> None:
    """Move time-driven copies forward (``copy_duration``), lazily on each describe."""
    if not state.copy_duration or not state.pending:
        return
    now = state.clock()
    for pending in list(state.pending.values()):
        if pending.held:
            continue
        try:
            _, _, _, ami = _locate_image(pending.image_id)
        except KeyError:
            state.pending.pop(pending.image_id, None)
            continue
        fraction = (now - pending.started) / state.copy_duration
        if fraction >= 1:
            _resolve(state, ami)
        else:
            pending.progress = int(fraction * 100)
            _set_pending(ami, pending.progress)


def _make_snapshots(backend: Any, ami: Any, specs: list[dict[str, Any]], description: Callable[[int], str]) -> None:
    """Give ``ami`` one snapshot per spec (device, size, kms key ARN or None, tags),
    replacing the fixed unencrypted snapshot moto makes for every image."""
    old = ami.ebs_snapshot
    backend.snapshots.pop(old.id, None)
    made = []
    zone = f"{backend.region_name}a"
    for index, spec in enumerate(specs):
        volume = backend.create_volume(size=spec.get("size", 8), zone_name=zone)
        snap = backend.create_snapshot(volume.id, description(index), owner_id=ami.owner_id, from_ami=ami.id)
        backend.delete_volume(volume.id)
        key = spec.get("kms_key_id")
        snap.encrypted = bool(spec.get("encrypted") or key)
        snap.kms_key_id = key if snap.encrypted else None
        if spec.get("tags"):
            snap.add_tags(spec["tags"])
        made.append((spec["device"], snap))
    ami.ebs_snapshot = made[0][1]
    ami._sbx_bdm = made
    ami.root_device_type = "ebs"
    ami.root_device_name = made[0][0]


def _tags_from_specs(specs: Any, allowed: set[str]) -> dict[str, dict[str, str]]:
    from moto.ec2.exceptions import EC2ClientError

    out: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"'{rtype}' is not a valid taggable resource type for this operation.",
            )
        for tag in spec.get("Tags", []) or []:
            out.setdefault(rtype, {})[tag["Key"]] = tag.get("Value", "")
    return out


def _default_ebs_key_arn(account: str, region: str) -> str:
    """The account's default EBS key in ``region``: the one set with
    ModifyEbsDefaultKmsKeyId, else the AWS-managed ``alias/aws/ebs`` key."""
    be = _ec2_backends()[account][region]
    if be.default_kms_key_id:
        return be.default_kms_key_id
    key = _key_by_alias(_kms_backends()[account][region], "alias/aws/ebs")
    return key.arn
