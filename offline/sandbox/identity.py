"""Who is calling, and what their IAM (identity) policies allow.

A caller is an assumed role (``arn:aws:sts::<acct>:assumed-role/<role>/<session>``,
evaluated as ``arn:aws:iam::<acct>:role/<role>``) or the bot's own base credentials
(the account's ``root`` in the sandbox). While identity enforcement is on
(:meth:`Sandbox.attach_role_policy`), a role that exists in moto's IAM is held to its
inline and attached policies, evaluated by :mod:`offline.sandbox.iam_eval`; the bot's
base credentials are held to the policy given to :meth:`Sandbox.attach_bot_policy`.
A principal with no policies in the sandbox (the ``sandbox-admin`` role that
:meth:`Sandbox.session` uses, the account administrator) is not restricted.
"""

from __future__ import annotations

import re
from typing import Any

from offline.sandbox.iam_eval import ALLOW, decide, statements_of
from offline.sandbox.state import _State

_ASSUMED = re.compile(r"^arn:(?P<partition>aws[\w-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")
_IAM_ARN = re.compile(r"^arn:(?P<partition>aws[\w-]*):iam::(?P<account>\d{12}):(?P<rest>.+)$")


def identity_arn(principal_arn: str | None) -> str | None:
    """The IAM ARN that policies name for a caller: an assumed-role session becomes
    its role's ARN; anything else is returned as is."""
    if not principal_arn:
        return None
    m = _ASSUMED.match(principal_arn)
    if m:
        return f"arn:{m.group('partition')}:iam::{m.group('account')}:role/{m.group('role')}"
    return principal_arn


def principal_account(principal_arn: str | None) -> str | None:
    """The account id in an IAM or STS principal ARN (or a bare 12-digit id)."""
    if not principal_arn:
        return None
    if re.fullmatch(r"\d{12}", principal_arn):
        return principal_arn
    m = _IAM_ARN.match(principal_arn) or _ASSUMED.match(principal_arn)
    return m.group("account") if m else None


def is_account_root(principal: str) -> bool:
    """``arn:aws:iam::<id>:root`` or a bare account id: the whole account."""
    return bool(re.fullmatch(r"\d{12}", principal) or (_IAM_ARN.match(principal) and principal.endswith(":root")))


def _role(account: str, name: str) -> Any:
    from moto.iam.models import iam_backends

    try:
        backend = iam_backends[account]["global"]
    except Exception:
        return None
    return next((r for r in list(backend.roles.values()) if r.name == name), None)


def role_policy_statements(role_arn: str) -> list[dict[str, Any]] | None:
    """The statements of a role's inline and attached policies; None when the role
    does not exist in the sandbox's IAM."""
    m = _IAM_ARN.match(role_arn or "")
    if not m or not m.group("rest").startswith("role/"):
        return None
    role = _role(m.group("account"), m.group("rest").split("/")[-1])
    if role is None:
        return None
    found: list[dict[str, Any]] = []
    for document in list(role.policies.values()):
        found += statements_of(document)
    for managed in list(role.managed_policies.values()):
        for version in managed.versions:
            if version.version_id == managed.default_version_id:
                found += statements_of(version.document)
    return found


def identity_statements(state: _State, principal_arn: str | None) -> list[dict[str, Any]] | None:
    """The identity-policy statements a caller is held to; None when it is not
    restricted (enforcement off, or a principal without policies in the sandbox)."""
    if not state.identity_enforced:
        return None
    arn = identity_arn(principal_arn)
    if arn is None:
        return None
    if arn.endswith(":root"):
        return state.bot_policy_statements
    return role_policy_statements(arn)


def identity_decision(state: _State, principal_arn: str | None, action: str, resource: str, context: dict[str, Any]) -> str | None:
    """ALLOW, DENY or None (implicitly denied) for the caller's identity policies;
    ALLOW for a caller that is not restricted."""
    statements = identity_statements(state, principal_arn)
    if statements is None:
        return ALLOW
    return decide(statements, action, resource, context)
