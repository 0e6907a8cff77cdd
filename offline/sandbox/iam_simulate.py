"""``iam:SimulatePrincipalPolicy``, which moto does not implement.

Evaluates the identity policies (inline and attached) of the role named by
``PolicySourceArn`` for each of ``ActionNames`` on each of ``ResourceArns`` with the
given ``ContextEntries``, using the same evaluator that enforces IAM in the sandbox
(:mod:`offline.sandbox.iam_eval`), and answers ``allowed`` / ``implicitDeny`` /
``explicitDeny`` per action and resource, with the matched statements' source. As
AWS does, only the principal's own policies are simulated (no resource policy is
given), and the principal must be in the caller's account.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape

from offline.sandbox.errors import _error_response
from offline.sandbox.iam_eval import ALLOW, DENY, decide, matching_statements
from offline.sandbox.identity import principal_account, role_policy_statements
from offline.sandbox.state import _State

_DECISIONS = {ALLOW: "allowed", DENY: "explicitDeny", None: "implicitDeny"}


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
    for action in actions:
        for resource in resources:
            decision = decide(statements, action, resource, context)
            matched = "".join(
                f"<member><SourcePolicyId>{escape(str(s.get('Sid') or 'statement'))}</SourcePolicyId>"
                "<SourcePolicyType>IAM Policy</SourcePolicyType></member>"
                for s in matching_statements(statements, action, resource, context)
            )
            members.append(
                "<member>"
                f"<EvalActionName>{escape(action)}</EvalActionName>"
                f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
                f"<EvalDecision>{_DECISIONS[decision]}</EvalDecision>"
                f"<MatchedStatements>{matched}</MatchedStatements>"
                "<MissingContextValues/>"
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
