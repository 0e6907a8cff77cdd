"""Sandbox addition: Allowed AMIs (moto has none of its calls).

Per account and region, as in AWS:

- ``GetAllowedImagesSettings`` answers ``State`` (``disabled``, the default;
  ``enabled``; ``audit-mode``), ``ImageCriteria`` and ``ManagedBy`` (``account``).
- ``EnableAllowedImagesSettings`` (``enabled`` or ``audit-mode``) and
  ``DisableAllowedImagesSettings`` change the state; tests set the criteria with
  :func:`set_allowed_images` (the sandbox does not parse
  ``ReplaceImageCriteriaInAllowedImagesSettings``).
- While ``enabled``, DescribeImages in that account leaves out every AMI the account
  does not own whose owner matches no criterion's ``ImageProviders`` (an account id,
  or ``amazon`` / ``aws-marketplace`` / ``aws-backup-vault`` for those owners): a
  shared or copied-in AMI that does not match is invisible, even asked for by id.
  The account's own AMIs are never restricted. In ``audit-mode`` nothing is hidden
  and each AMI answers ``ImageAllowed``.

Sources: EC2 API Reference "GetAllowedImagesSettings", "EnableAllowedImagesSettings"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableAllowedImagesSettings.html)
and the user guide page "Control the discovery and use of AMIs in Amazon EC2 with
Allowed AMIs" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-allowed-amis.html).

The settings live on moto's EC2 backend for the account and region, so a sandbox
reset returns every account to ``disabled``.
"""

from __future__ import annotations

from typing import Any

from offline.sandbox.state import _LOCK, _ORIGINALS, _State, _ec2_backends
from offline.sandbox.wire import _ec2_patch

STATES = ("enabled", "audit-mode")
# The owner aliases an ImageProviders entry may name besides account ids.
_ALIAS_OWNERS = {"amazon": "amazon", "aws-marketplace": "aws-marketplace", "aws-backup-vault": "aws-backup-vault"}


def _settings(backend: Any) -> dict[str, Any]:
    settings = backend.__dict__.get("_sbx_allowed_images")
    if settings is None:
        settings = {"state": "disabled", "criteria": []}
        backend._sbx_allowed_images = settings
    return settings


def set_allowed_images(account: str, region: str, state: str, providers: list[str] | tuple[str, ...] = ()) -> None:
    """Test control: Allowed AMIs of ``account`` in ``region`` — ``state``
    (``disabled``, ``enabled``, ``audit-mode``) and one criterion allowing
    ``providers`` (none: no criteria, so nothing shared is allowed)."""
    if state not in ("disabled", *STATES):
        raise ValueError(f"Allowed AMIs state {state!r}: disabled, enabled or audit-mode")
    with _LOCK:
        settings = _settings(_ec2_backends()[account][region])
        settings["state"] = state
        settings["criteria"] = [{"ImageProviders": list(providers)}] if providers else []


def image_allowed(criteria: list[dict[str, Any]], owner_id: str, owner_alias: str | None = None) -> bool:
    """Whether an AMI of ``owner_id`` (or owner alias ``amazon``…) matches a criterion."""
    for criterion in criteria:
        providers = criterion.get("ImageProviders") or []
        if owner_id in providers or (owner_alias and owner_alias in providers):
            return True
    return False


def get_allowed_images_settings(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    settings = _settings(self.ec2_backend)
    answer: dict[str, Any] = {"State": settings["state"], "ManagedBy": "account"}
    if settings["criteria"]:
        answer["ImageCriteria"] = settings["criteria"]
    return ActionResult(answer)


def enable_allowed_images_settings(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidParameterValueError

    value = self._get_param("AllowedImagesSettingsState")
    if value not in STATES:
        raise InvalidParameterValueError(f"'{value}' for AllowedImagesSettingsState (valid: enabled, audit-mode)")
    self.error_on_dryrun()
    _settings(self.ec2_backend)["state"] = value
    return ActionResult({"AllowedImagesSettingsState": value})


def disable_allowed_images_settings(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    _settings(self.ec2_backend)["state"] = "disabled"
    return ActionResult({"AllowedImagesSettingsState": "disabled"})


@_ec2_patch("AmisResponse.describe_images.allowed")
def _describe_images(self: Any, state: _State, original: Any) -> Any:
    result = original(self)
    settings = _settings(self.ec2_backend)
    if settings["state"] == "disabled":
        return result
    kept = []
    for ami in result.result["Images"]:
        owner = getattr(ami, "owner_id", None)
        own = owner == self.current_account
        allowed = own or image_allowed(settings["criteria"], owner or "", _ALIAS_OWNERS.get(getattr(ami, "owner_alias", "") or ""))
        if settings["state"] == "enabled" and not allowed:
            continue
        if settings["state"] == "audit-mode" and hasattr(ami, "owner_id"):
            ami.image_allowed = allowed
        kept.append(ami)
    result.result["Images"] = kept
    return result


HANDLERS = {f.__name__: f for f in (get_allowed_images_settings, enable_allowed_images_settings, disable_allowed_images_settings)}


def install() -> None:
    """Teach moto's EC2 the Allowed AMIs calls and wrap DescribeImages (after the
    sandbox's own DescribeImages wrappers)."""
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.amis import AmisResponse

    for name, handler in HANDLERS.items():
        setattr(EC2Response, name, handler)
    _ORIGINALS["AmisResponse.describe_images.allowed"] = AmisResponse.describe_images
    AmisResponse.describe_images = _describe_images
