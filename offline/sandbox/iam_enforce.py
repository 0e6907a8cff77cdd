"""IAM enforcement on the wire: every request is held to the caller's identity policy.

:func:`identity_refusal` is called by :func:`offline.sandbox.wire._patched_call_action`
for every request while enforcement is on. It turns the request into the IAM
authorisations AWS makes for it, with the request context the generated member
policy's conditions read, and answers the service's access-denied error when one is
not allowed:

* The EC2 operations with resource-level permissions (``RESOURCE_PARAMS``: deletes,
  image/snapshot/instance attributes, launch-template writes, retiring: ``DisableImage``, ``EnableImage``,
  ``Enable``-/``DisableImageDeprecation``): the action on each
  resource's ARN, with ``aws:ResourceTag/<key>`` from the resource's tags.
  ``CopyImage`` / ``CreateImage`` / ``RunInstances``: on the image (new or launched)
  and the instance ARNs. ``CreateTags`` / ``DeleteTags``: on each resource's ARN (its
  type from the id), with ``aws:TagKeys`` (absent when the request names no tag) and
  ``aws:RequestTag/<key>``.
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
* ``sts:AssumeRole`` on the role ARN, ``iam:GetInstanceProfile`` on the profile's;
  anything else: the action on ``*``.
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


# The EC2 operations with resource-level permissions that amibot calls: the request
# parameter naming the resource, and its type ("Actions, resources, and condition
# keys for Amazon EC2", Service Authorization Reference). Others are authorised on "*".
RESOURCE_PARAMS = {
    "TerminateInstances": ("InstanceIds", "instance"), "DeregisterImage": ("ImageId", "image"),
    "DeleteSnapshot": ("SnapshotId", "snapshot"), "DescribeImageAttribute": ("ImageId", "image"),
    "ModifyImageAttribute": ("ImageId", "image"), "DescribeSnapshotAttribute": ("SnapshotId", "snapshot"),
    "ModifySnapshotAttribute": ("SnapshotId", "snapshot"), "DescribeInstanceAttribute": ("InstanceId", "instance"),
    "CreateLaunchTemplateVersion": ("LaunchTemplateId", "launch-template"),
    "ModifyLaunchTemplate": ("LaunchTemplateId", "launch-template"),
    "DeleteLaunchTemplateVersions": ("LaunchTemplateId", "launch-template"),
    # Retiring (aws.actions.retire): the image's own tags decide.
    **{op: ("ImageId", "image") for op in ("DisableImage", "EnableImage", "EnableImageDeprecation", "DisableImageDeprecation")},
}
ID_PREFIX_KIND = {"ami": "image", "snap": "snapshot", "i": "instance", "vol": "volume", "lt": "launch-template",
                  "eni": "network-interface", "subnet": "subnet", "sg": "security-group"}


def kind_of(resource_id: str) -> str:
    """The ARN resource type of an EC2 id (``ami-…`` → image), else ``*``."""
    return ID_PREFIX_KIND.get(str(resource_id).split("-", 1)[0], "*")


def _request_tags(resp: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tags as {key: value}, the request context: aws:RequestTag/<key> and
    aws:TagKeys, absent when the request names no tags: "Tag keys in requests")."""
    tags = {t.get("Key"): t.get("Value") for t in resp._get_param("Tags", []) or [] if isinstance(t, dict)}
    context: dict[str, Any] = _tag_context({k: v for k, v in tags.items() if v is not None}, "aws:RequestTag")
    if tags:
        context["aws:tagkeys"] = list(tags)
    return tags, context


def _ec2_authorisations(resp: Any, operation: str) -> list[tuple[str, str, dict[str, Any]]]:
    account, region = resp.current_account, resp.region
    action = f"ec2:{operation}"
    out: list[tuple[str, str, dict[str, Any]]] = []
    if operation in RESOURCE_PARAMS:
        # The action on each resource, with aws:ResourceTag/<key> from its tags.
        param, kind = RESOURCE_PARAMS[operation]
        for resource_id in _ids(resp, param):
            out.append((action, _ec2_arn(region, account, kind, resource_id), _tag_context(_ec2_tags(account, region, resource_id))))
        return out or [(action, "*", {})]
    if operation in ("CreateTags", "DeleteTags"):
        _, context = _request_tags(resp)
        for resource_id in _ids(resp, "Resources"):
            out.append((action, _ec2_arn(region, account, kind_of(resource_id), resource_id),
                        {**context, **_tag_context(_ec2_tags(account, region, resource_id))}))
        return out or [(action, "*", {})]
    if operation == "CopyImage":
        out.append((action, _ec2_arn(region, account, "image", "*"), {}))
    elif operation == "CreateImage":
        out += [(action, _ec2_arn(region, account, "instance", resp._get_param("InstanceId")), {}),
                (action, _ec2_arn(region, account, "image", "*"), {})]
    elif operation == "RunInstances":
        out += [(action, _ec2_arn(region, account, "image", resp._get_param("ImageId")), {}),
                (action, _ec2_arn(region, account, "instance", "*"), {})]
    else:
        out.append((action, "*", {}))
    if operation in CREATE_ACTIONS:
        for spec in resp._get_param("TagSpecifications", []) or []:
            tags = {t.get("Key"): t.get("Value") for t in spec.get("Tag", spec.get("Tags", [])) or []}
            kind = TAG_SPEC_RESOURCE.get(spec.get("ResourceType"), spec.get("ResourceType") or "*")
            context = {"ec2:createaction": operation, **_tag_context(tags, "aws:RequestTag"), "aws:tagkeys": list(tags)}
            out.append(("ec2:CreateTags", _ec2_arn(region, account, kind, "*"), context))
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
        if hit is None:
            # Not found: AWS answers NotFoundException, so the request reaches KMS
            # (the key ARN it names, or one in the caller's account for an id).
            resource = key_ref if str(key_ref).startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{key_ref}"
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
    if service == "iam" and operation == "GetInstanceProfile":
        return [("iam:GetInstanceProfile", f"arn:aws:iam::{resp.current_account}:instance-profile/{resp._get_param('InstanceProfileName')}", {})]
    if service == "iam" and operation == "SimulatePrincipalPolicy":
        return [("iam:SimulatePrincipalPolicy", resp._get_param("PolicySourceArn") or "*", {})]
    return [(f"{service}:{operation}", "*", {})]


def identity_refusal(resp: Any, state: _State, operation: str, principal_arn: str) -> tuple[str, str, int] | None:
    """(code, message, status) when the caller's identity policy does not allow the
    request, else None. Refusals are recorded in ``state.iam_denials``."""
    if operation == "GetCallerIdentity":
        return None  # AWS: needs no permission
    if operation == "RetireGrant":
        return None  # AWS: "determined primarily by the grant" (kms._retire_grant checks it)
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
