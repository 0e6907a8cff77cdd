"""KMS authorisation as AWS evaluates it: key policies and grants.

Key lookup by id / ARN / alias (AWS-managed ``alias/aws/*`` keys made on first use),
principal matching (a role, its account's root, ``*``; ``NotPrincipal``), the caller's
context (``aws:PrincipalOrgID``, ``kms:CallerAccount``, ``kms:ViaService``,
``kms:GrantIsForAWSResource``, ...), the key policy and the caller's IAM policy evaluated
together (conditions by :mod:`offline.sandbox.iam_eval`; unknown operators fail
closed), grants in effect (with the optional grant delay; a grant to a role is not a
grant to its account), key state problems, and the policy AWS puts on its managed keys.

Follows "Key policies in AWS KMS", "Allowing users in other accounts to use a KMS key"
and "Grants in AWS KMS" (AWS KMS Developer Guide).
"""

from __future__ import annotations

import json
import re
from typing import Any

from offline.sandbox.iam_eval import ALLOW, DENY, as_list, statement_applies, statements_of
from offline.sandbox.identity import identity_arn, identity_decision, is_account_root
from offline.sandbox.state import _State, _kms_backends


# KMS operations a grant may list (CreateGrant rejects anything else with ValidationException).
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant",
        "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
    }
)


_KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>.+)$")
_PRINCIPAL_ACCOUNT = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::(?P<account>\d{12}):")


# --------------------------------------------------------------------------- KMS rules


def _lookup_key(ref: str | None, account: str, region: str) -> tuple[str, Any] | None:
    """Resolve a key id / key ARN / alias name / alias ARN as ``account`` in ``region``
    would; ``None`` when there is no such key (or it lives in another region)."""
    if not ref:
        return None
    m = _KMS_ARN.match(ref)
    if m:
        if m.group("region") != region:
            return None
        owner = m.group("account")
        be = _kms_backends()[owner][region]
        if m.group("kind") == "key":
            key = be.keys.get(m.group("name"))
        else:
            key = _key_by_alias(be, "alias/" + m.group("name"))
        return (owner, key) if key is not None else None
    be = _kms_backends()[account][region]
    if ref.startswith("alias/"):
        key = _key_by_alias(be, ref)
    else:
        key = be.keys.get(ref)
    return (account, key) if key is not None else None


def _key_by_alias(backend: Any, alias: str) -> Any:
    for key in backend.keys.values():
        if alias in key.aliases:
            return key
    if alias.startswith("alias/aws/"):
        # AWS creates an AWS-managed key the first time its alias is used.
        key_id = backend.get_key_id_from_alias(alias)
        return backend.keys.get(key_id) if key_id else None
    return None


def _principal_account(principal: str) -> str | None:
    if re.fullmatch(r"\d{12}", principal or ""):
        return principal
    m = _PRINCIPAL_ACCOUNT.match(principal or "")
    return m.group("account") if m else None


def _listed_principals(value: Any) -> list[str]:
    if value == "*":
        return ["*"]
    if not isinstance(value, dict):
        return []
    return [str(v) for v in as_list(value.get("AWS"))]


def _principal_match(listed: list[str], caller: str, principal_arn: str | None) -> str | None:
    """How a list of policy principals names the caller: "direct" (``*`` or the
    caller's own role/user ARN), "account" (its account, i.e. delegated to IAM), or None."""
    arn = identity_arn(principal_arn)
    found = None
    for value in listed:
        if value == "*" or (arn is not None and value == arn) or (principal_arn is not None and value == principal_arn):
            return "direct"
        if is_account_root(value) and _principal_account(value) == caller:
            found = "account"
    return found


def _key_policy_decision(key: Any, caller: str, principal_arn: str | None, action: str, context: dict[str, Any]) -> tuple[str | None, str | None]:
    """(decision, how) for ``kms:<action>`` by the caller under the key policy:
    decision DENY / ALLOW / None; how the allowing statement named the caller
    ("direct" or "account"). ``NotPrincipal`` and ``NotAction`` are honoured: a Deny
    with ``NotPrincipal`` applies to every principal it does not list."""
    decision, how = None, None
    resource = key.arn
    for statement in statements_of(key.policy or "{}"):
        if "NotPrincipal" in statement:
            listed = _principal_match(_listed_principals(statement["NotPrincipal"]), caller, principal_arn)
            named = None if listed else "direct"
        else:
            named = _principal_match(_listed_principals(statement.get("Principal")), caller, principal_arn)
        if named is None or not statement_applies(statement, f"kms:{action}", resource, context):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == DENY:
            return DENY, None
        if effect == ALLOW and how != "direct":
            decision, how = ALLOW, named
    return decision, how


def _policy_decision(key: Any, caller: str, action: str, context: dict[str, Any]) -> str | None:
    """The key policy's decision for ``kms:<action>`` by the caller (see
    :func:`_key_policy_decision`)."""
    return _key_policy_decision(key, caller, context.get("aws:principalarn"), action, context)[0]


def _caller_context(state: _State, caller: str, principal_arn: str | None, via_service_region: str | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "aws:principalaccount": caller,
        "kms:calleraccount": caller,
        "aws:principalarn": identity_arn(principal_arn) or f"arn:aws:iam::{caller}:root",
    }
    org = state.org_of(caller)
    if org:
        ctx["aws:principalorgid"] = org
        ctx["aws:principalorgpaths"] = state.org_paths(caller)
    if via_service_region:
        # The call is made by EC2 on the caller's behalf (copy, launch).
        ctx["kms:viaservice"] = f"ec2.{via_service_region}.amazonaws.com"
        ctx["kms:grantisforawsresource"] = "true"
    else:
        # A direct call: no AWS service makes the request for the principal.
        ctx["kms:grantisforawsresource"] = "false"
    return ctx


def _grantee_matches(grantee: str, caller: str, principal_arn: str | None) -> str | None:
    """"direct" for a grant to the caller's own role, "account" for a grant to its
    account; a grant to another role of the account is no grant to the caller."""
    if is_account_root(grantee) and _principal_account(grantee) == caller:
        return "account"
    arn = identity_arn(principal_arn)
    if arn is not None and grantee in (arn, principal_arn):
        return "direct"
    return None


def _effective_grants(state: _State, key: Any, caller: str, principal_arn: str | None = None) -> list[Any]:
    """Grants in effect (past the grant delay) whose grantee is the caller's account
    or the caller's own role."""
    now = state.clock()
    out = []
    for grant in list(key.grants.values()):
        if _grantee_matches(grant.grantee_principal, caller, principal_arn) is None:
            continue
        created = state.grant_created.get(grant.id)
        if created is not None and now - created < state.grant_delay:
            continue  # KMS grants are eventually consistent: not in effect yet.
        out.append(grant)
    return out


def _kms_allows(
    state: _State,
    key: Any,
    caller: str,
    action: str,
    *,
    principal_arn: str | None = None,
    via_service_region: str | None = None,
    grants_count: bool = True,
    extra_context: dict[str, Any] | None = None,
) -> bool:
    """Whether the caller may perform ``action`` (e.g. "Decrypt") with ``key``.

    As KMS decides it: an explicit Deny in the key policy or the caller's IAM policy
    wins; the key policy must allow the caller (the account's own keys too), and where
    it allows only the caller's *account* (``:root``, i.e. delegation to IAM) or the key
    is in another account, the caller's IAM policy must allow it as well ("neither the
    key policy nor the IAM policy alone is sufficient" across accounts). A grant to the
    caller's role is enough on its own; a grant to its account needs IAM as well."""
    ctx = _caller_context(state, caller, principal_arn, via_service_region)
    ctx.update(extra_context or {})
    full_action = f"kms:{action}"
    identity = identity_decision(state, principal_arn, full_action, key.arn, ctx)
    if identity == DENY:
        return False
    decision, how = _key_policy_decision(key, caller, principal_arn, action, ctx)
    if decision == DENY:
        return False
    same_account = caller == key.account_id
    if decision == ALLOW:
        if how == "direct" and same_account:
            return True
        if identity == ALLOW:
            return True
    if grants_count and action in GRANT_OPERATIONS:
        for grant in _effective_grants(state, key, caller, principal_arn):
            if action not in (grant.operations or []):
                continue
            if _grantee_matches(grant.grantee_principal, caller, principal_arn) == "direct" or identity == ALLOW:
                return True
    return False


def _key_state_problem(key: Any) -> tuple[str, str] | None:
    if key.key_state == "Disabled":
        return "DisabledException", f"{key.arn} is disabled."
    if key.key_state == "PendingDeletion":
        return "KMSInvalidStateException", f"{key.arn} is pending deletion."
    if key.key_state != "Enabled":
        return "KMSInvalidStateException", f"{key.arn} is {key.key_state}."
    return None


def _aws_managed_policy(account: str, region: str, service: str) -> str:
    """The key policy AWS puts on its managed keys (aws/ebs shown): usable by the owning
    account only, and only through the service."""
    via = {"ebs": "ec2"}.get(service, service)  # aws/ebs is used through EC2
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-2",
            "Statement": [
                {
                    "Sid": f"Allow access through {service.upper()} for all principals in the account that are authorized to use {service.upper()}",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"{via}.{region}.amazonaws.com",
                            "kms:CallerAccount": account,
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )
