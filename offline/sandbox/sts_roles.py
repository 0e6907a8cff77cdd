r"""Sandbox addition: ``AssumeRole`` checks the role's trust policy (moto assumes any
ARN, even a role that does not exist, and ignores ``ExternalId``).

Opt-in per account, so worlds that never model IAM keep moto's behaviour: once an
account has at least one IAM role (``iam.create_role``), ``AssumeRole`` into that
account is refused with ``AccessDenied`` (HTTP 400 here, 403 in AWS; "User: <caller> is not authorized
to perform: sts:AssumeRole on resource: <role>"), as AWS answers, unless

- the role exists, and
- an ``Allow`` statement of its trust policy for ``sts:AssumeRole`` names the caller
  as principal (``"*"``, the caller's account id or ``arn:aws:iam::<id>:root``, the
  caller's own ARN, or the role whose session the caller is), and
- every condition of that statement holds; only ``StringEquals`` on
  ``sts:ExternalId`` is understood (any other condition fails closed).

Sources: IAM User Guide, "Access to AWS accounts owned by third parties" (the
external id in the trust policy's ``sts:ExternalId`` condition,
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html)
and STS API Reference, "AssumeRole" (AccessDenied when the trust policy does not
allow the caller). IAM permission policies of the caller are not evaluated
(the sandbox's documented simplification).

Also refused, as STS does (``ValidationError``): a ``RoleSessionName`` that is not 2 to
64 characters of ``[\w+=,.@-]`` (ASCII letters and digits, ``_+=,.@-``). STS API
Reference, "AssumeRole", RoleSessionName: "Length Constraints: Minimum length of 2.
Maximum length of 64. Pattern: [\w+=,.@-]*" (the same constraint is in botocore's
STS service model, ``roleSessionNameType``; botocore checks only the minimum before
sending). Checked with the search tool: the official page was not in the corpus; the
AWS SDK for Rust's ``AssumeRoleInput`` page, generated from the same API model,
https://docs.rs/aws-sdk-sts/0.14.0/aws_sdk_sts/input/struct.AssumeRoleInput.html, says
"upper- and lower-case alphanumeric characters with no spaces ... underscores or any of
the following characters: =,.@-". [moto: accepts any name.]
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

_INSTALLED = False
_ORIGINAL: dict[str, Any] = {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _role_of_session(caller_arn: str) -> str | None:
    """``arn:aws:sts::<id>:assumed-role/<name>/<session>`` → ``arn:aws:iam::<id>:role/<name>``:
    a trust policy naming a role trusts that role's sessions."""
    head, _, resource = caller_arn.partition(":assumed-role/")
    if not resource or ":sts::" not in head:
        return None
    return f"{head.replace(':sts::', ':iam::')}:role/{resource.rsplit('/', 1)[0]}"


def _principal_allows(principal: Any, caller_account: str, caller_arn: str) -> bool:
    if principal == "*":
        return True
    allowed = {"*", caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn, _role_of_session(caller_arn)}
    return any(entry in allowed for entry in _as_list(principal.get("AWS") if isinstance(principal, dict) else None))


def _conditions_hold(conditions: dict[str, Any], external_id: str | None) -> bool:
    for operator, tests in (conditions or {}).items():
        for key, expected in tests.items():
            if operator != "StringEquals" or key.lower() != "sts:externalid":
                return False  # unknown conditions fail closed
            if external_id is None or external_id not in _as_list(expected):
                return False
    return True


def trust_allows(policy_document: str, caller_account: str, caller_arn: str, external_id: str | None) -> bool:
    """Whether a role's trust policy lets the caller assume it with ``external_id``."""
    text = urllib.parse.unquote(policy_document) if policy_document.startswith("%") else policy_document
    policy = json.loads(text)
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        if _principal_allows(statement.get("Principal"), caller_account, caller_arn) and _conditions_hold(
            statement.get("Condition"), external_id
        ):
            return True
    return False


def _caller_arn(response: Any) -> str:
    from moto.iam.models import get_account_id_from  # noqa: F401 (keeps moto's patched lookup in place)
    from moto.sts.models import sts_backends

    try:
        access_key = response.get_access_key()
        for backend in sts_backends[response.current_account].values():
            role = backend.get_assumed_role_from_access_key(access_key)
            if role is not None:
                return role.arn
    except Exception:
        pass
    return f"arn:aws:iam::{response.current_account}:root"


def _refusal(caller_arn: str, role_arn: str) -> Exception:
    from moto.sts.exceptions import STSClientError

    # AWS answers HTTP 403; moto's serializer takes the status from the service model,
    # which has no AccessDenied shape, so the sandbox answers 400 with the same code.
    return STSClientError("AccessDenied", f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")


SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


def session_name_refusal(name: str) -> Exception | None:
    """STS's ValidationError for a RoleSessionName it would refuse, else None."""
    from moto.sts.exceptions import STSClientError

    if SESSION_NAME.fullmatch(name):
        return None
    if len(name) > 64:
        return STSClientError("ValidationError", f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy "
                                                 "constraint: Member must have length less than or equal to 64")
    if len(name) < 2:
        return STSClientError("ValidationError", f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy "
                                                 "constraint: Member must have length greater than or equal to 2")
    return STSClientError("ValidationError", f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy "
                                             "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")


def _assume_role(self: Any) -> Any:
    from moto.iam.models import iam_backends

    refusal = session_name_refusal(self._get_param("RoleSessionName") or "")
    if refusal is not None:
        raise refusal
    role_arn = self._get_param("RoleArn") or ""
    parts = role_arn.split(":")
    account = parts[4] if len(parts) > 5 else ""
    iam = iam_backends[account]["global"] if account.isdigit() and len(account) == 12 else None
    roles = list(iam.get_roles()) if iam is not None else []
    if roles:
        caller = _caller_arn(self)
        role = next((r for r in roles if r.arn == role_arn), None)
        if role is None or not trust_allows(role.assume_role_policy_document, self.current_account, caller, self._get_param("ExternalId")):
            raise _refusal(caller, role_arn)
    return _ORIGINAL["assume_role"](self)


def install() -> None:
    """Wrap moto's ``AssumeRole`` handler (once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.sts.responses import TokenResponse

    _ORIGINAL["assume_role"] = TokenResponse.assume_role
    TokenResponse.assume_role = _assume_role
    _INSTALLED = True
