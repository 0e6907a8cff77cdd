"""EC2 RunInstances: launch permission on another account's AMI, instances that
terminate at once when the caller cannot use the snapshot key, ClientToken, and the
launch settings moto ignores but AWS keeps (termination protection, tenancy, CPU
credits), so a migration that forgets them is caught.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from offline.sandbox.consistency import _note_new
from offline.sandbox.copy_rules import LAUNCH_KEY_OPERATIONS, refuse_archived
from offline.sandbox.ec2_lifecycle import _default_ebs_key_arn
from offline.sandbox.policy import _kms_allows, _lookup_key
from offline.sandbox.state import _State, _find_image, _image_snapshots
from offline.sandbox.visibility import _can_launch
from offline.sandbox.wire import _caller_arn, _ec2_patch


@_ec2_patch("InstanceResponse.run_instances")
def _run_instances(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.ec2.exceptions import InvalidAMIIdError
    from moto.ec2.models.instances import StateReason

    caller = self.current_account
    image_id = self._get_param("ImageId")
    token = self._get_param("ClientToken")
    dry_run = self._get_param("DryRun", False)
    if token and not dry_run:
        # AWS: a retry with the same ClientToken returns the first launch instead of
        # starting more instances; other parameters with it are refused.
        fingerprint = json.dumps({k: v for k, v in self.params.items() if k != "ClientToken"}, sort_keys=True, default=str)
        previous = state.tokens.get((caller, self.region, f"RunInstances:{token}"))
        if previous is not None:
            from moto.core.responses import ActionResult
            from moto.ec2.exceptions import EC2ClientError

            if previous[0] != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous request(s) (ClientToken {token}).",
                )
            return ActionResult(self.ec2_backend.reservations[previous[1]])
    problem = None
    found = _find_image(self.region, image_id) if image_id else None
    if found is not None:
        owner, _, image = found
        if not _can_launch(state, image, caller):
            raise InvalidAMIIdError(image_id)
        if getattr(image, "state", "") == "disabled":  # API_DisableImage: "A disabled AMI can't be used for instance launches"
            from moto.ec2.exceptions import EC2ClientError

            raise EC2ClientError("InvalidAMIID.Unavailable", f"The image id [{image_id}] is disabled.")
        refuse_archived(image)
        if not self._get_param("DryRun", False):
            # AWS: RunInstances with DryRun checks IAM only. A real launch whose
            # volumes the caller cannot decrypt terminates at once with
            # Client.InternalError.
            for snap in _image_snapshots(image):
                if not snap.encrypted:
                    continue
                hit = _lookup_key(snap.kms_key_id or _default_ebs_key_arn(owner, self.region), owner, self.region)
                key = hit[1] if hit else None
                if key is None or key.key_state != "Enabled" or not all(
                    _kms_allows(state, key, caller, op, principal_arn=_caller_arn(self), via_service_region=self.region) for op in LAUNCH_KEY_OPERATIONS
                ):
                    problem = True
                    break
    result = original(self)
    _keep_launch_settings(self, result.result.instances)
    # Eventual consistency: the new instances are not visible for a while.
    _note_new(state, [instance.id for instance in result.result.instances], self)
    if token and not dry_run:
        state.tokens[(caller, self.region, f"RunInstances:{token}")] = (fingerprint, result.result.id)
    if problem:
        for instance in result.result.instances:
            instance.terminate()
            instance.state_reason = StateReason("Client.InternalError: Client error on launch", "Client.InternalError")
    return result


def _keep_launch_settings(response: Any, instances: list[Any]) -> None:
    """AWS applies these RunInstances parameters; moto drops them (checked against
    moto 5.2: DisableApiTermination reads back False, Tenancy ``default``, CPU
    credits always ``standard``)."""
    termination = bool(response._get_param("DisableApiTermination", False))
    placement = response._get_param("Placement", {}) or {}
    credits = (response._get_param("CreditSpecification", {}) or {}).get("CpuCredits")
    for instance in instances:
        instance.disable_api_termination = termination
        if placement.get("Tenancy"):
            instance._placement.tenancy = placement["Tenancy"]
        # AWS: T3/T3a/T4g launch unlimited by default, T2 standard.
        instance.amibot_cpu_credits = credits or ("standard" if instance.instance_type.startswith("t2.") else "unlimited")


@_ec2_patch("InstanceResponse.describe_instance_credit_specifications")
def _describe_instance_credit_specifications(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult

    instances = self.ec2_backend.describe_instance_credit_specifications(self._get_param("InstanceIds", []))
    return ActionResult(
        {"InstanceCreditSpecifications": [{"InstanceId": i.id, "CpuCredits": getattr(i, "amibot_cpu_credits", "standard")} for i in instances]}
    )
