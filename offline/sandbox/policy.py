"""KMS authorisation as AWS evaluates it: key policies and grants.

Key lookup by id / ARN / alias (AWS-managed ``alias/aws/*`` keys made on first use),
principal matching, policy conditions (``aws:PrincipalOrgID``, ``kms:CallerAccount``,
``kms:ViaService``, ...; unknown operators fail closed), the caller's context, grants in
effect (with the optional grant delay), key state problems, and the policy AWS puts on
its managed keys.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from typing import Any, Callable

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


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    values = principal.get("AWS", [])
    if isinstance(values, str):
        values = [values]
    return any(v == "*" or _principal_account(v) == caller for v in values)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


_NEGATED_OPERATORS = {"StringNotEquals", "StringNotLike", "StringNotEqualsIgnoreCase", "ArnNotEquals", "ArnNotLike"}


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    op = operator.split(":", 1)[1] if operator.startswith(("ForAnyValue:", "ForAllValues:")) else operator
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    actual = context.get(key.lower())
    if actual is None:
        return if_exists or op in _NEGATED_OPERATORS
    actual_values = [str(a) for a in _as_list(actual)]
    expected_values = [str(e) for e in _as_list(expected)]

    def any_match(match: Callable[[str, str], bool]) -> bool:
        return any(match(a, e) for a in actual_values for e in expected_values)

    if op == "StringEquals":
        return any_match(lambda a, e: a == e)
    if op == "StringEqualsIgnoreCase":
        return any_match(lambda a, e: a.lower() == e.lower())
    if op in ("StringLike", "ArnLike", "ArnEquals"):
        return any_match(fnmatch.fnmatchcase)
    if op == "StringNotEquals":
        return not any_match(lambda a, e: a == e)
    if op == "StringNotEqualsIgnoreCase":
        return not any_match(lambda a, e: a.lower() == e.lower())
    if op in ("StringNotLike", "ArnNotLike", "ArnNotEquals"):
        return not any_match(fnmatch.fnmatchcase)
    if op == "Bool":
        return any_match(lambda a, e: a.lower() == e.lower())
    # An operator the sandbox does not know fails closed, so a policy is never
    # treated as more permissive than AWS would treat it.
    return False


def _policy_decision(key: Any, caller: str, action: str, context: dict[str, Any]) -> str | None:
    """'deny', 'allow' or None (no statement applies) for ``kms:<action>`` by ``caller``."""
    try:
        policy = json.loads(key.policy or "{}")
    except (TypeError, ValueError):
        return None
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    decision = None
    full_action = f"kms:{action}".lower()
    for stmt in statements:
        if not isinstance(stmt, dict) or "NotPrincipal" in stmt or "NotAction" in stmt:
            continue
        if not _principal_matches(stmt.get("Principal"), caller):
            continue
        if not any(fnmatch.fnmatchcase(full_action, str(a).lower()) for a in _as_list(stmt.get("Action"))):
            continue
        resources = _as_list(stmt.get("Resource", "*"))
        if not any(fnmatch.fnmatchcase(key.arn, str(r)) for r in resources):
            continue
        conditions = stmt.get("Condition") or {}
        if not all(
            _condition_holds(op, k, v, context)
            for op, pairs in conditions.items()
            for k, v in (pairs or {}).items()
        ):
            continue
        if str(stmt.get("Effect", "")).lower() == "deny":
            return "deny"
        if str(stmt.get("Effect", "")).lower() == "allow":
            decision = "allow"
    return decision


def _caller_context(state: _State, caller: str, principal_arn: str | None, via_service_region: str | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "aws:principalaccount": caller,
        "kms:calleraccount": caller,
        "aws:principalarn": principal_arn or f"arn:aws:iam::{caller}:root",
    }
    org = state.org_of(caller)
    if org:
        ctx["aws:principalorgid"] = org
        ctx["aws:principalorgpaths"] = state.org_paths(caller)
    if via_service_region:
        # The call is made by EC2 on the caller's behalf (copy, launch).
        ctx["kms:viaservice"] = f"ec2.{via_service_region}.amazonaws.com"
        ctx["kms:grantisforawsresource"] = "true"
    return ctx


def _effective_grants(state: _State, key: Any, caller: str) -> list[Any]:
    now = time.monotonic()
    out = []
    for grant in list(key.grants.values()):
        if _principal_account(grant.grantee_principal) != caller:
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
) -> bool:
    """Whether ``caller`` may perform ``action`` (e.g. "Decrypt") with ``key``."""
    if caller == key.account_id and key.key_manager != "AWS":
        return True  # Simplification: an account's own CMKs are usable by it.
    ctx = _caller_context(state, caller, principal_arn, via_service_region)
    decision = _policy_decision(key, caller, action, ctx)
    if decision == "deny":
        return False
    if decision == "allow":
        return True
    if grants_count and action in GRANT_OPERATIONS:
        return any(action in (g.operations or []) for g in _effective_grants(state, key, caller))
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
