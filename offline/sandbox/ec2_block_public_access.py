"""Block public access for AMIs and snapshots, which moto lacks: the account-level,
per-region switches the audit reads (GetImageBlockPublicAccessState,
GetSnapshotBlockPublicAccessState) and the calls that set them.

AWS: "Block public access to your AMIs" (EC2 User Guide,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-public-access-to-amis.html):
the AMI state is ``block-new-sharing`` or ``unblocked``; "Block public access for
snapshots" (EBS User Guide, https://docs.aws.amazon.com/ebs/latest/userguide/block-public-access-snapshots.html):
``block-all-sharing``, ``block-new-sharing`` or ``unblocked``; both per account and
region. (amibot never sends ``Group: all``, so the sandbox does not yet refuse a public
launch permission while the block is on, as AWS does: left for whoever needs it.)

One small module (the doctor's checks may read the same states): the sandbox starts
every account-region ``unblocked``, as an account made before AWS turned the AMI
setting on by default.
"""

from __future__ import annotations

from typing import Any

from offline.sandbox.state import _LOCK, _active

_IMAGE_STATES = ("block-new-sharing", "unblocked")
_SNAPSHOT_STATES = ("block-all-sharing", "block-new-sharing", "unblocked")
# (account, region) -> state; cleared with the sandbox's world (see reset_block_public_access).
_IMAGE: dict[tuple[str, str], str] = {}
_SNAPSHOT: dict[tuple[str, str], str] = {}


def reset_block_public_access() -> None:
    """Every account-region back to ``unblocked``."""
    with _LOCK:
        _IMAGE.clear()
        _SNAPSHOT.clear()


def set_image_block_public_access(account: str, region: str, state: str) -> None:
    """Set an account-region's AMI block public access (``block-new-sharing`` / ``unblocked``)."""
    assert state in _IMAGE_STATES, state
    with _LOCK:
        _IMAGE[(account, region)] = state


def set_snapshot_block_public_access(account: str, region: str, state: str) -> None:
    """Set an account-region's snapshot block public access."""
    assert state in _SNAPSHOT_STATES, state
    with _LOCK:
        _SNAPSHOT[(account, region)] = state


def image_block_public_access(account: str, region: str) -> str:
    with _LOCK:
        return _IMAGE.get((account, region), "unblocked")


def _not_started(action: str) -> Exception:
    return NotImplementedError(f"The {action} action has not been implemented")


def _get_image_bpa(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if _active() is None:
        raise _not_started("get_image_block_public_access_state")
    return ActionResult({"ImageBlockPublicAccessState": image_block_public_access(self.current_account, self.region)})


def _enable_image_bpa(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if _active() is None:
        raise _not_started("enable_image_block_public_access")
    set_image_block_public_access(self.current_account, self.region, self._get_param("ImageBlockPublicAccessState") or "block-new-sharing")
    return ActionResult({"ImageBlockPublicAccessState": "block-new-sharing"})


def _disable_image_bpa(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if _active() is None:
        raise _not_started("disable_image_block_public_access")
    set_image_block_public_access(self.current_account, self.region, "unblocked")
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def _get_snapshot_bpa(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if _active() is None:
        raise _not_started("get_snapshot_block_public_access_state")
    with _LOCK:
        state = _SNAPSHOT.get((self.current_account, self.region), "unblocked")
    return ActionResult({"State": state})


def _enable_snapshot_bpa(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if _active() is None:
        raise _not_started("enable_snapshot_block_public_access")
    state = self._get_param("State")
    set_snapshot_block_public_access(self.current_account, self.region, state)
    return ActionResult({"State": state})


def install() -> None:
    """Add the calls to moto's EC2 responses (moto has none of them)."""
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    AmisResponse.get_image_block_public_access_state = _get_image_bpa
    AmisResponse.enable_image_block_public_access = _enable_image_bpa
    AmisResponse.disable_image_block_public_access = _disable_image_bpa
    ElasticBlockStore.get_snapshot_block_public_access_state = _get_snapshot_bpa
    ElasticBlockStore.enable_snapshot_block_public_access = _enable_snapshot_bpa
