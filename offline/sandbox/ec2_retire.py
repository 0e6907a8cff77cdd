"""Retiring AMIs as AWS does it, where moto falls short (``/ami retire``).

Each rule from the EC2 API Reference / User Guide (docs/aws-rules.md names them):

* ``DisableImage`` (API_DisableImage): only the owner may disable; the state becomes
  ``disabled`` and AWS removes *every* launch permission (a public AMI is made
  private, shares with accounts, organisations and OUs end). A disabled AMI is left
  out of DescribeImages unless ``IncludeDisabled`` (or asked for by id, as its
  owner); ``RunInstances`` from it is refused. ``EnableImage`` makes it available
  again (the launch permissions are not restored). moto keeps the permissions.
* ``EnableImageDeprecation`` / ``DisableImageDeprecation`` (API_EnableImageDeprecation):
  only the owner; ``DeprecateAt`` may not be in the past, nor more than 10 years
  ahead; DescribeImages answers ``DeprecationTime``. moto has neither call.
* ``EnableImageDeregistrationProtection`` (``WithCooldown``) /
  ``DisableImageDeregistrationProtection`` (API_EnableImageDeregistrationProtection,
  "Protect an Amazon EC2 AMI from deregistration"): while protection is on,
  ``DeregisterImage`` is refused; disabling protection that was enabled with the
  cooldown keeps it refused for 24 hours. DescribeImages answers
  ``DeregistrationProtection`` (``enabled``, ``enabled-with-cooldown``,
  ``disabled-until-<time>``, ``disabled``). moto has neither call.
* ``DeregisterImage`` with ``DeleteAssociatedSnapshots`` (API_DeregisterImage): the
  AMI's snapshots are deleted, except one another AMI also uses (kept, reported in
  ``DeleteSnapshotResults``). moto ignores the parameter.
* Recycle Bin (``rbin:ListRules``, "Recover deleted snapshots and AMIs with Recycle
  Bin"): rules added with :func:`add_recycle_bin_rule` answer ``ListRules``
  (in-process sandbox only; moto has no Recycle Bin).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from offline.sandbox.state import _LOCK, _ORIGINALS, _State, _active, _ec2_backends, _image_snapshots, _region_backends
from offline.sandbox.wire import _ec2_patch

COOLDOWN_SECONDS = 24 * 3600
TEN_YEARS = dt.timedelta(days=3653)
# (account, region) -> Recycle Bin rules for EC2_IMAGE, as ListRules answers them.
_RULES: dict[tuple[str, str], list[dict[str, Any]]] = {}


def reset_retire() -> None:
    """Forget the Recycle Bin rules (the rest lives on moto's images)."""
    with _LOCK:
        _RULES.clear()


def add_recycle_bin_rule(account: str, region: str, days: int, tags: dict[str, str] | None = None) -> str:
    """A Recycle Bin retention rule for AMIs in ``account``/``region`` (all AMIs, or
    those with one of ``tags``); returns its identifier."""
    with _LOCK:
        rules = _RULES.setdefault((account, region), [])
        ident = f"rule{len(rules) + 1:08d}"
        rules.append({
            "Identifier": ident, "Description": "sandbox", "RetentionPeriod": {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"},
            "LockState": "unlocked", "ResourceTags": [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in (tags or {}).items()],
        })
        return ident


def _error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _owned_image(self: Any, verb: str) -> Any:
    from moto.ec2.exceptions import InvalidAMIIdError

    image_id = self._get_param("ImageId")
    ami = self.ec2_backend.amis.get(image_id)
    if ami is None:
        for _account, backend in _region_backends(_ec2_backends(), self.region):
            ami = backend.amis.get(image_id) or ami
    if ami is None:
        raise InvalidAMIIdError(image_id)
    if ami.owner_id != self.current_account:
        raise _error("AuthFailure", f"Not authorized for image:{image_id}: only the owner can {verb} it.")
    return ami


def _wall(state: _State, at_clock: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=at_clock - state.clock())
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _protection(state: _State, ami: Any) -> str:
    until = getattr(ami, "sandbox_protected_until", None)
    if until is not None and state.clock() >= until:
        ami.sandbox_protected_until = until = None
    if getattr(ami, "sandbox_protection", "disabled") != "disabled":
        return ami.sandbox_protection
    return f"disabled-until-{_wall(state, until)}" if until is not None else "disabled"


def _result(value: Any = True) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"Return": value})


@_ec2_patch("AmisResponse.disable_image")
def _disable_image(self: Any, state: _State, original: Any) -> Any:
    ami = _owned_image(self, "disable")
    self.error_on_dryrun()
    ami.launch_permissions.clear()  # public, accounts, organisations, OUs: all gone
    ami.state = "disabled"
    return _result()


@_ec2_patch("AmisResponse.enable_image")
def _enable_image(self: Any, state: _State, original: Any) -> Any:
    ami = _owned_image(self, "enable")
    self.error_on_dryrun()
    ami.state = "available"
    return _result()


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def _enable_deprecation(self: Any) -> Any:
    state = _active()
    if state is None:
        raise NotImplementedError("The enable_image_deprecation action has not been implemented")
    with _LOCK:
        ami = _owned_image(self, "deprecate")
        raw = self._get_param("DeprecateAt")
        at = raw if isinstance(raw, dt.datetime) else _parse_time(str(raw))
        at = at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at
        now = dt.datetime.now(dt.timezone.utc)
        if at < now - dt.timedelta(minutes=1):
            raise _error("InvalidParameterValue", "DeprecateAt can't be in the past.")
        if at > now + TEN_YEARS:
            raise _error("InvalidParameterValue", "DeprecateAt can't be more than 10 years from now.")
        self.error_on_dryrun()
        ami.deprecation_time = at.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return _result()


def _disable_deprecation(self: Any) -> Any:
    if _active() is None:
        raise NotImplementedError("The disable_image_deprecation action has not been implemented")
    with _LOCK:
        ami = _owned_image(self, "change the deprecation of")
        self.error_on_dryrun()
        ami.deprecation_time = None
        return _result()


def _enable_protection(self: Any) -> Any:
    state = _active()
    if state is None:
        raise NotImplementedError("The enable_image_deregistration_protection action has not been implemented")
    with _LOCK:
        ami = _owned_image(self, "protect")
        self.error_on_dryrun()
        cooldown = str(self._get_param("WithCooldown", "false")).lower() == "true"
        ami.sandbox_protection = "enabled-with-cooldown" if cooldown else "enabled"
        ami.sandbox_protected_until = None
        ami.deregistration_protection = _protection(state, ami)
        return _result("true")


def _disable_protection(self: Any) -> Any:
    state = _active()
    if state is None:
        raise NotImplementedError("The disable_image_deregistration_protection action has not been implemented")
    with _LOCK:
        ami = _owned_image(self, "unprotect")
        self.error_on_dryrun()
        if getattr(ami, "sandbox_protection", "disabled") == "enabled-with-cooldown":
            ami.sandbox_protected_until = state.clock() + COOLDOWN_SECONDS
        ami.sandbox_protection = "disabled"
        ami.deregistration_protection = _protection(state, ami)
        return _result("true")


@_ec2_patch("AmisResponse.deregister_image.retire")
def _deregister_image(self: Any, state: _State, original: Any) -> Any:
    image_id = self._get_param("ImageId")
    ami = self.ec2_backend.amis.get(image_id)
    if ami is not None:
        protection = _protection(state, ami)
        if protection != "disabled":
            raise _error("InvalidParameterValue" if protection.startswith("enabled") else "InvalidAMIID.Unavailable",
                         f"The image {image_id} can't be deregistered: deregistration protection is {protection}.")
    delete = str(self._get_param("DeleteAssociatedSnapshots", "false")).lower() == "true"
    snapshots = [s.id for s in _image_snapshots(ami)] if (ami is not None and delete) else []
    original(self)  # the sandbox's own DeregisterImage (a pending copy forgotten), then moto's
    if not snapshots:
        return _result()
    from moto.core.responses import ActionResult

    in_use = {s.id for other in self.ec2_backend.amis.values() for s in _image_snapshots(other)}
    results = []
    for snap in snapshots:
        if snap in in_use:
            results.append({"SnapshotId": snap, "ReturnCode": "error-code", "Message": "The snapshot is used by another AMI."})
            continue
        self.ec2_backend.delete_snapshot(snap)
        results.append({"SnapshotId": snap, "ReturnCode": "success"})
    return ActionResult({"Return": True, "DeleteSnapshotResults": results})


@_ec2_patch("AmisResponse.describe_images.retire")
def _describe_images(self: Any, state: _State, original: Any) -> Any:
    result = original(self)  # the sandbox's own DescribeImages (visibility, consistency)
    include_disabled = str(self._get_param("IncludeDisabled", "false")).lower() == "true"
    asked = set(self._get_param("ImageIds", []) or [])
    kept = []
    for ami in result.result["Images"]:
        if getattr(ami, "state", "") == "disabled" and not include_disabled and ami.id not in asked:
            continue
        if hasattr(ami, "owner_id") and ami.owner_id == self.current_account:
            ami.deregistration_protection = _protection(state, ami)
        kept.append(ami)
    result.result["Images"] = kept
    return result


def _rbin_answer(request: Any) -> tuple[int, dict[str, str], str] | None:
    """``rbin:ListRules`` from the sandbox's rules (the caller's account from its access key)."""
    state = _active()
    url = str(getattr(request, "url", ""))
    if state is None or "://rbin." not in url:
        return None
    region = url.split("://rbin.", 1)[1].split(".", 1)[0]
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else str(auth)
    key = auth.split("Credential=", 1)[-1].split("/", 1)[0]
    from moto.iam.models import get_account_id_from

    account = get_account_id_from(key)
    body = json.loads(request.body or b"{}")
    with _LOCK:
        rules = [r for r in _RULES.get((account, region), []) if body.get("ResourceType", "EC2_IMAGE") == "EC2_IMAGE"]
    return 200, {"Content-Type": "application/json", "server": "amazon.com"}, json.dumps({"Rules": rules})


def _process_request(self: Any, request: Any) -> Any:
    answer = _rbin_answer(request)
    return answer if answer is not None else _ORIGINALS["BotocoreStubber.process_request"](self, request)


def install() -> None:
    """Add the calls moto lacks and the stub answering Recycle Bin's ListRules."""
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.ec2.responses.amis import AmisResponse

    # DescribeImages and DeregisterImage wrap the sandbox's own handlers (their own keys).
    for key, method, handler in (("AmisResponse.disable_image", "disable_image", _disable_image),
                                 ("AmisResponse.enable_image", "enable_image", _enable_image),
                                 ("AmisResponse.describe_images.retire", "describe_images", _describe_images),
                                 ("AmisResponse.deregister_image.retire", "deregister_image", _deregister_image)):
        _ORIGINALS[key] = getattr(AmisResponse, method)
        setattr(AmisResponse, method, handler)
    AmisResponse.enable_image_deprecation = _enable_deprecation
    AmisResponse.disable_image_deprecation = _disable_deprecation
    AmisResponse.enable_image_deregistration_protection = _enable_protection
    AmisResponse.disable_image_deregistration_protection = _disable_protection
    _ORIGINALS["BotocoreStubber.process_request"] = BotocoreStubber.process_request
    BotocoreStubber.process_request = _process_request
