"""Sandbox addition: AMI and snapshot block public access (moto has neither API).

Per account and region, as in AWS:

- ``GetImageBlockPublicAccessState`` answers ``block-new-sharing`` or ``unblocked``;
  ``EnableImageBlockPublicAccess`` (only ``block-new-sharing`` is valid) and
  ``DisableImageBlockPublicAccess`` change it. AWS turns AMI block public access on
  for new accounts, so a new sandbox account starts ``block-new-sharing``.
- ``GetSnapshotBlockPublicAccessState`` answers ``block-all-sharing``,
  ``block-new-sharing`` or ``unblocked`` (the default, as in AWS);
  ``EnableSnapshotBlockPublicAccess`` takes one of the two blocking states
  (``unblocked`` is refused, as the API reference says) and
  ``DisableSnapshotBlockPublicAccess`` unblocks.
- ``ManagedBy`` is always ``account`` (no declarative policies in the sandbox).

AWS applies a change within minutes; the sandbox applies it at once.

Sources: EC2 API Reference, "GetImageBlockPublicAccessState",
"EnableImageBlockPublicAccess", "DisableImageBlockPublicAccess",
"GetSnapshotBlockPublicAccessState", "EnableSnapshotBlockPublicAccess"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableSnapshotBlockPublicAccess.html),
and the user guide page "Block public access to your AMIs"
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-public-access-to-amis.html).

The state lives on moto's EC2 backend for the account and region, so a sandbox
reset (moto's reset) returns every account to the defaults.
"""

from __future__ import annotations

from typing import Any

IMAGE_STATES = ("block-new-sharing", "unblocked")
SNAPSHOT_STATES = ("block-all-sharing", "block-new-sharing", "unblocked")
DEFAULT_IMAGE_STATE = "block-new-sharing"
DEFAULT_SNAPSHOT_STATE = "unblocked"

_INSTALLED = False


def _states(backend: Any) -> dict[str, str]:
    states = backend.__dict__.get("_sbx_block_public_access")
    if states is None:
        states = {"image": DEFAULT_IMAGE_STATE, "snapshot": DEFAULT_SNAPSHOT_STATE}
        backend._sbx_block_public_access = states
    return states


def _invalid(value: Any, allowed: tuple[str, ...], parameter: str) -> Exception:
    from moto.ec2.exceptions import InvalidParameterValueError

    # moto words it "Value <this> is invalid for parameter."
    return InvalidParameterValueError(f"'{value}' for {parameter} (valid: {', '.join(allowed)})")


def get_image_block_public_access_state(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"ImageBlockPublicAccessState": _states(self.ec2_backend)["image"], "ManagedBy": "account"})


def enable_image_block_public_access(self: Any) -> Any:
    from moto.core.responses import ActionResult

    value = self._get_param("ImageBlockPublicAccessState")
    if value != "block-new-sharing":
        raise _invalid(value, ("block-new-sharing",), "ImageBlockPublicAccessState")
    self.error_on_dryrun()
    _states(self.ec2_backend)["image"] = value
    return ActionResult({"ImageBlockPublicAccessState": value})


def disable_image_block_public_access(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    _states(self.ec2_backend)["image"] = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def get_snapshot_block_public_access_state(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"State": _states(self.ec2_backend)["snapshot"], "ManagedBy": "account"})


def enable_snapshot_block_public_access(self: Any) -> Any:
    from moto.core.responses import ActionResult

    value = self._get_param("State")
    if value not in ("block-all-sharing", "block-new-sharing"):
        raise _invalid(value, ("block-all-sharing", "block-new-sharing"), "State")
    self.error_on_dryrun()
    _states(self.ec2_backend)["snapshot"] = value
    return ActionResult({"State": value})


def disable_snapshot_block_public_access(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    _states(self.ec2_backend)["snapshot"] = "unblocked"
    return ActionResult({"State": "unblocked"})


HANDLERS = {
    f.__name__: f
    for f in (
        get_image_block_public_access_state,
        enable_image_block_public_access,
        disable_image_block_public_access,
        get_snapshot_block_public_access_state,
        enable_snapshot_block_public_access,
        disable_snapshot_block_public_access,
    )
}


def install() -> None:
    """Teach moto's EC2 the six block-public-access calls (once per process). moto
    has none of them, so there is no original to fall back to."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.ec2.responses import EC2Response

    for name, handler in HANDLERS.items():
        setattr(EC2Response, name, handler)
    _INSTALLED = True
