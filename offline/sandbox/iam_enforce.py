"""IAM enforcement on the wire: every request is held to the caller's identity policy.

:func:`identity_refusal` is called by :func:`offline.sandbox.wire._patched_call_action`
for every request while enforcement is on. It turns the request into the IAM
authorisations AWS makes for it, with the request context the generated member
policy's conditions read, and answers the service's access-denied error when one is
not allowed:

* ``TerminateInstances`` / ``DeregisterImage`` / ``DeleteSnapshot`` / ``DisableImage`` /
  ``EnableImage`` / ``Enable``-/``DisableImageDeprecation``: the action on each resource, with ``aws:ResourceTag/<key>`` from the resource's tags.
* ``RunInstances`` / ``CreateImage`` / ``CopyImage`` / ``CreateSnapshot(s)`` /
  ``CreateVolume`` with ``TagSpecifications``: also ``ec2:CreateTags`` on each tagged
  resource type with ``ec2:CreateAction`` = the operation and ``aws:RequestTag/<key>``
  ("Grant permission to tag Amazon EC2 resources during creation", EC2 User Guide).
  A direct ``CreateTags`` has no ``ec2:CreateAction``.
* ``RunInstances`` with ``IamInstanceProfile``: ``iam:PassRole`` on the profile's role
  with ``iam:PassedToService`` = ``ec2.amazonaws.com``.
* KMS: the action on the key ARN with ``kms:CallerAccount``,
  ``kms:GrantIsForAWSResource`` = false (a direct call), for ``CreateGrant``
  ``kms:GrantOperations`` and ``kms:GranteePrincipal``, and ``aws:ResourceTag/<key>``
  from the key's tags. KMS used by EC2 on the caller's behalf is checked where it
  happens (:func:`offline.sandbox.policy._kms_allows`, with ``kms:ViaService``).
* ``sts:AssumeRole`` on the role ARN; anything else: the action on ``*``.
"""

from __future__ import annotations

from typing import Any

from offline.sandbox.iam_eval import ALLOW
from offline.sandbox.identity import identity_decision
from offline.sandbox.policy import _lookup_key
from offline.sandbox.state import _State, _ec2_backends, _kms_backends

CREATE_ACTIONS = {"RunInstances", "CreateImage", "CopyImage", "CreateSnapshot", "CreateSnapshots", "CreateVolume"}
TAG_SPEC_RESOURCE = {"image": "image", "snapshot": "snapshot", "instance": "instance", "volume": "volume",
                     "network-interface": "network-interface"}


def _ec2_tags(account: str, region: str, resource_id: str) -> dict[str, str]:
    try:
        return dict(_ec2_backends()[account][region].tags.get(resource_id, {}))
    except Exception:
        return {}


def _tag_context(tags: dict[str, str], prefix: str = "aws:ResourceTag") -> dict[str, Any]:
    return {f"{prefix}/{k}".lower(): v for k, v in tags.items()}


def _ec2_arn(region: str, account: str, kind: str, resource_id: str) -> str:
    owner = "" if kind in ("image", "snapshot") else account
    return f"arn:aws:ec2:{region}:{owner}:{kind}/{resource_id}"


def _ids(resp: Any, name: str) -> list[str]:
    value = resp._get_param(name)
    return [value] if isinstance(value, str) else list(value or [])


def _ec2_authorisations(resp: Any, operation: str) -> list[tuple[str, str, dict[str, Any]]]:
    account, region = resp.current_account, resp.region
    action = f"ec2:{operation}"
    out: list[tuple[str, str, dict[str, Any]]] = []
    resource_kinds = {"TerminateInstances": ("InstanceIds", "instance"), "DeregisterImage": ("ImageId", "image"),
                      "DeleteSnapshot": ("SnapshotId", "snapshot"),
                      # Retiring (aws.actions.retire): the image's own tags decide.
                      **{op: ("ImageId", "image") for op in ("DisableImage", "EnableImage", "EnableImageDeprecation", "DisableImageDeprecation")}}
    if operation in resource_kinds:
        param, kind = resource_kinds[operation]
        for resource_id in _ids(resp, param):
            out.append((action, _ec2_arn(region, account, kind, resource_id), _tag_context(_ec2_tags(account, region, resource_id))))
        return out
    if operation == "CreateTags":
        requested = {t.get("Key"): t.get("Value") for t in resp._get_param("Tags", []) or [] if isinstance(t, dict)}
        for resource_id in _ids(resp, "Resources"):
            # aws:TagKeys: the keys in the request ("Tag keys in requests", IAM User Guide).
            out.append((action, f"arn:aws:ec2:{region}:{account}:*/{resource_id}",
                        {**_tag_context(requested, "aws:RequestTag"), "aws:tagkeys": list(requested)}))
        return out or [(action, "*", {})]
    out.append((action, "*", {}))
    if operation in CREATE_ACTIONS:
        for spec in resp._get_param("TagSpecifications", []) or []:
            tags = {t.get("Key"): t.get("Value") for t in spec.get("Tag", spec.get("Tags", [])) or []}
            kind = TAG_SPEC_RESOURCE.get(spec.get("ResourceType"), spec.get("ResourceType") or "*")
            context = {"ec2:createaction": operation, **_tag_context(tags, "aws:RequestTag"), "aws:tagkeys": list(tags)}
            out.append(("ec2:CreateTags", f"arn:aws:ec2:{region}:{'' if kind in ('image', 'snapshot') else account}:{kind}/*", context))
    if operation == "RunInstances":
        profile = resp._get_param("IamInstanceProfile") or {}
        if profile:
            role = _profile_role_arn(account, profile)
            out.append(("iam:PassRole", role, {"iam:passedtoservice": "ec2.amazonaws.com"}))
    return out


def _profile_role_arn(account: str, profile: dict[str, Any]) -> str:
    """The role an instance profile passes (its first role), else a role named as
    the profile."""
    from moto.iam.models import iam_backends

    name = profile.get("Name") or str(profile.get("Arn", "")).rsplit("/", 1)[-1]
    try:
        for found in list(iam_backends[account]["global"].instance_profiles.values()):
            if found.name == name and found.roles:
                return found.roles[0].arn
    except Exception:
        pass
    return f"arn:aws:iam::{account}:role/{name}"


def _kms_authorisations(resp: Any, operation: str) -> list[tuple[str, str, dict[str, Any]]]:
    account, region = resp.current_account, resp.region
    context: dict[str, Any] = {"kms:calleraccount": account, "kms:grantisforawsresource": "false"}
    resource = "*"
    key_ref = resp._get_param("KeyId")
    if key_ref:
        try:
            hit = _lookup_key(key_ref, account, region)
        except Exception:
            hit = None
        if hit is not None:
            owner, key = hit
            resource = key.arn
            try:
                context.update(_tag_context(_kms_backends()[owner][region].tagger.get_tag_dict_for_resource(key.id)))
            except Exception:
                pass
    if operation == "CreateGrant":
        context["kms:grantoperations"] = list(resp._get_param("Operations") or [])
        context["kms:granteeprincipal"] = resp._get_param("GranteePrincipal")
    return [(f"kms:{operation}", resource, context)]


def authorisations(resp: Any, operation: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(IAM action, resource ARN, request context) for each authorisation AWS makes."""
    service = getattr(resp, "service_name", "") or ""
    if service == "ec2":
        return _ec2_authorisations(resp, operation)
    if service == "kms":
        return _kms_authorisations(resp, operation)
    if service == "sts" and operation == "AssumeRole":
        return [("sts:AssumeRole", resp._get_param("RoleArn") or "*", {})]
    if service == "iam" and operation == "SimulatePrincipalPolicy":
        return [("iam:SimulatePrincipalPolicy", resp._get_param("PolicySourceArn") or "*", {})]
    return [(f"{service}:{operation}", "*", {})]


def identity_refusal(resp: Any, state: _State, operation: str, principal_arn: str) -> tuple[str, str, int] | None:
    """(code, message, status) when the caller's identity policy does not allow the
    request, else None. Refusals are recorded in ``state.iam_denials``."""
    if operation == "GetCallerIdentity":
        return None  # AWS: needs no permission
    for action, resource, extra in authorisations(resp, operation):
        context = {"aws:principalarn": principal_arn, "aws:principalaccount": resp.current_account, **extra}
        if identity_decision(state, principal_arn, action, resource, context) == ALLOW:
            continue
        state.iam_denials.append((operation, principal_arn, action, resource))
        message = (
            f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action"
        )
        service = getattr(resp, "service_name", "")
        if service == "ec2":
            return "UnauthorizedOperation", f"You are not authorized to perform this operation. {message}", 403
        if service == "kms":
            return "AccessDeniedException", message, 400
        return "AccessDenied", message, 403
    return None
