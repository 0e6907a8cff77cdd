"""Policy evaluation as IAM does it, for the conditions amibot's policies use.

One engine for identity policies (a role's inline and attached policies), key
policies (with ``Principal`` / ``NotPrincipal``) and ``SimulatePrincipalPolicy``:
``Action`` / ``NotAction``, ``Resource`` / ``NotResource``, explicit ``Deny`` wins,
and the condition operators ``String*``, ``Arn*``, ``Bool``, ``Null``, each with
``IfExists`` and the ``ForAnyValue:`` / ``ForAllValues:`` set qualifiers.

Follows "Policy evaluation logic" and "IAM JSON policy elements: Condition operators"
(IAM User Guide). An operator the sandbox does not know makes an ``Allow`` statement
not apply and a ``Deny`` statement apply: it fails closed, never open.

Context keys are matched case-insensitively (as IAM does); the request context is a
dict of lower-cased key -> value or list of values.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Callable

ALLOW = "allow"
DENY = "deny"


def as_list(value: Any) -> list[Any]:
    """A policy element as a list (IAM accepts a bare string for a one-element list)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements_of(policy: Any) -> list[dict[str, Any]]:
    """The statements of a policy given as a dict or JSON text; [] for anything else."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, dict):
        return []
    found = policy.get("Statement", [])
    return [s for s in as_list(found) if isinstance(s, dict)]


def _wildcard(value: str, pattern: str, *, case: bool = True) -> bool:
    # IAM wildcards: * and ? only (no [...] classes as fnmatch has).
    if "[" in pattern:
        pattern = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, pattern) if case else fnmatch.fnmatchcase(value.lower(), pattern.lower())


def action_matches(statement: dict[str, Any], action: str) -> bool:
    """``Action`` lists the action, or ``NotAction`` does not (case-insensitive, wildcards)."""
    if "NotAction" in statement:
        return not any(_wildcard(action, str(a), case=False) for a in as_list(statement["NotAction"]))
    return any(_wildcard(action, str(a), case=False) for a in as_list(statement.get("Action")))


def resource_matches(statement: dict[str, Any], resource: str) -> bool:
    """``Resource`` matches the ARN, or ``NotResource`` does not (wildcards)."""
    if "NotResource" in statement:
        return not any(_wildcard(resource, str(r)) for r in as_list(statement["NotResource"]))
    return any(_wildcard(resource, str(r)) for r in as_list(statement.get("Resource", "*")))


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}

_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda a, e: a == e,
    "StringEqualsIgnoreCase": lambda a, e: a.lower() == e.lower(),
    "StringLike": lambda a, e: _wildcard(a, e),
    "ArnEquals": lambda a, e: _wildcard(a, e),
    "ArnLike": lambda a, e: _wildcard(a, e),
    "Bool": lambda a, e: a.lower() == e.lower(),
}
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool | None:
    """Whether one ``operator: {key: expected}`` holds; None for an operator the
    sandbox does not know (the caller fails closed)."""
    qualifier = None
    op = operator
    if op.startswith(("ForAnyValue:", "ForAllValues:")):
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    actual = context.get(key.lower())
    actual_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(actual)]
    expected_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(expected)]
    if op == "Null":
        # "Null": "true" holds when the key is absent.
        want_absent = any(e.lower() == "true" for e in expected_values)
        return (not actual_values) == want_absent
    negated = op in _NEGATED
    base = _NEGATIONS.get(op, op)
    match = _MATCHERS.get(base)
    if match is None:
        return None

    def one(value: str) -> bool:
        hit = any(match(value, e) for e in expected_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        # Every value in the request must match; a missing or empty key holds.
        return all(one(v) for v in actual_values)
    if not actual_values:
        if if_exists:
            return True
        return negated and qualifier is None
    if qualifier == "ForAnyValue":
        return any(one(v) for v in actual_values)
    if negated:
        return all(one(v) for v in actual_values)
    return any(one(v) for v in actual_values)


def conditions_hold(statement: dict[str, Any], context: dict[str, Any]) -> bool | None:
    """Every condition of the statement holds (True), one does not (False), or one
    uses an operator the sandbox cannot evaluate (None)."""
    unknown = False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, expected in (pairs or {}).items():
            held = condition_holds(operator, key, expected, context)
            if held is False:
                return False
            if held is None:
                unknown = True
    return None if unknown else True


def statement_applies(statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]) -> bool:
    """Action, resource and conditions match. An unknown condition operator makes a
    Deny apply and an Allow not apply (fail closed)."""
    if not action_matches(statement, action) or not resource_matches(statement, resource):
        return False
    held = conditions_hold(statement, context)
    if held is None:
        return str(statement.get("Effect", "")).lower() == DENY
    return held


def decide(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, Any],
    principal_applies: Callable[[dict[str, Any]], bool] = lambda statement: True,
) -> str | None:
    """DENY when an applicable Deny statement exists, else ALLOW when an applicable
    Allow does, else None (an implicit deny)."""
    decision = None
    for statement in statements:
        if not principal_applies(statement):
            continue
        if not statement_applies(statement, action, resource, context):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == DENY:
            return DENY
        if effect == ALLOW:
            decision = ALLOW
    return decision


def matching_statements(
    statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """The statements that apply (what SimulatePrincipalPolicy reports as matched)."""
    return [s for s in statements if statement_applies(s, action, resource, context)]
