"""``iam:SimulatePrincipalPolicy``, which moto does not implement.

Evaluates the identity policies (inline and attached) of the role named by
``PolicySourceArn`` for each of ``ActionNames`` on each of ``ResourceArns`` with the
given ``ContextEntries``, using the same evaluator that enforces IAM in the sandbox
(:mod:`offline.sandbox.iam_eval`), and answers ``allowed`` / ``implicitDeny`` /
``explicitDeny``. As AWS answers today, one ``EvaluationResult`` per action carries
the aggregate decision (the most restrictive over the resources) and
``ResourceSpecificResults`` the per-resource ones; a condition key a matching
statement uses that the request did not supply is named in ``MissingContextValues``
(per resource when resources were given, else at the top) — a decision that depends
on it is not an answer (IAM API Reference: "SimulatePrincipalPolicy",
"EvaluationResult"; IAM User Guide: "Testing IAM policies with the IAM policy
simulator"). As AWS does, only the principal's own policies are simulated (no
resource policy is given), and the principal must be in the caller's account.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape

from offline.sandbox.errors import _error_response
from offline.sandbox.iam_eval import ALLOW, DENY, action_matches, decide, matching_statements, resource_matches
from offline.sandbox.identity import principal_account, role_policy_statements
from offline.sandbox.state import _State

_DECISIONS = {ALLOW: "allowed", DENY: "explicitDeny", None: "implicitDeny"}
_RESTRICTIVE = ("explicitDeny", "implicitDeny", "allowed")


def missing_context(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, Any]) -> list[str]:
    """The condition keys of the statements matching action and resource that the
    request's context does not supply (in the policy's spelling, sorted)."""
    missing = set()
    for statement in statements:
        if not action_matches(statement, action) or not resource_matches(statement, resource):
            continue
        for pairs in (statement.get("Condition") or {}).values():
            missing.update(key for key in (pairs or {}) if key.lower() not in context)
    return sorted(missing)


def _keys(keys: list[str]) -> str:
    return "".join(f"<member>{escape(k)}</member>" for k in keys)


def _members(query: dict[str, Any], prefix: str) -> list[str]:
    found = []
    for key, value in query.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)", key)
        if m:
            found.append((int(m.group(1)), value[0] if isinstance(value, list) else value))
    return [v for _, v in sorted(found)]


def _context(query: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    indexes = sorted({int(m.group(1)) for k in query if (m := re.match(r"ContextEntries\.member\.(\d+)\.", k))})
    for i in indexes:
        base = f"ContextEntries.member.{i}"
        name = query.get(f"{base}.ContextKeyName")
        name = name[0] if isinstance(name, list) else name
        values = _members(query, f"{base}.ContextKeyValues")
        kind = query.get(f"{base}.ContextKeyType")
        kind = (kind[0] if isinstance(kind, list) else kind) or "string"
        if name:
            context[name.lower()] = values if kind.endswith("List") else (values[0] if values else None)
    return context


def simulate_principal_policy(resp: Any, state: _State) -> Any:
    """The whole response to a SimulatePrincipalPolicy request."""
    query = resp.querystring
    source = (query.get("PolicySourceArn") or [""])[0]
    actions = _members(query, "ActionNames")
    resources = _members(query, "ResourceArns") or ["*"]
    context = _context(query)
    if not actions:
        return _error_response(resp, "InvalidInput", "ActionNames must contain at least one action.", 400)
    if principal_account(source) != resp.current_account:
        return _error_response(resp, "InvalidInput", f"Invalid Entity Arn: {source} is not in the caller's account.", 400)
    statements = role_policy_statements(source)
    if statements is None:
        return _error_response(resp, "NoSuchEntity", f"The role with name {source.rsplit('/', 1)[-1]} cannot be found.", 404)
    members = []
    explicit = resources != ["*"]
    for action in actions:
        per_resource = []
        for resource in resources:
            decision = _DECISIONS[decide(statements, action, resource, context)]
            matched = "".join(
                f"<member><SourcePolicyId>{escape(str(s.get('Sid') or 'statement'))}</SourcePolicyId>"
                "<SourcePolicyType>IAM Policy</SourcePolicyType></member>"
                for s in matching_statements(statements, action, resource, context)
            )
            per_resource.append((resource, decision, matched, missing_context(statements, action, resource, context)))
        aggregate = min((d for _, d, _, _ in per_resource), key=_RESTRICTIVE.index)
        specific = "".join(
            f"<member><EvalResourceName>{escape(r)}</EvalResourceName><EvalResourceDecision>{d}</EvalResourceDecision>"
            f"<MatchedStatements>{m}</MatchedStatements><MissingContextValues>{_keys(k)}</MissingContextValues></member>"
            for r, d, m, k in per_resource
        ) if explicit else ""
        top_missing = [] if explicit else per_resource[0][3]
        members.append(
            "<member>"
            f"<EvalActionName>{escape(action)}</EvalActionName>"
            f"<EvalResourceName>{escape(resources[0] if len(resources) == 1 else '*')}</EvalResourceName>"
            f"<EvalDecision>{aggregate}</EvalDecision>"
            f"<MatchedStatements>{''.join(m for _, _, m, _ in per_resource)}</MatchedStatements>"
            f"<MissingContextValues>{_keys(top_missing)}</MissingContextValues>"
            f"<ResourceSpecificResults>{specific}</ResourceSpecificResults>"
            "</member>"
        )
    body = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{''.join(members)}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult>"
        "<ResponseMetadata><RequestId>sandbox-simulate</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return 200, {"Content-Type": "text/xml", "server": "amazon.com"}, body
