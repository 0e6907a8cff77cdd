"""The sandbox: moto plus the AWS semantics amibot depends on.

amibot's tests, ``amibot demo`` and ``amibot serve --sandbox`` run against moto. moto
stores what the bot does (launch permissions, snapshot permissions, grants, copies)
but does not act on it the way AWS does, so a bot that forgot a grant or a snapshot
permission would pass. This module monkeypatches moto's response and model classes
(once per process, idempotently) so that, while a :class:`Sandbox` is started, moto
behaves like AWS on the points below. Every patch hands the call to moto's original
code when no sandbox is running or when the sandbox rule does not apply, so plain
``moto.mock_aws`` tests in the same process keep moto's behaviour. The patches sit at
the response/backend level, so they work in-process (``mock_aws``) and for a
``ThreadedMotoServer`` running in the same process.

Semantics the sandbox adds (moto gap it papers over in brackets):

1. Cross-account visibility. ``DescribeImages`` shows another account's AMI only to an
   account with launch permission (``UserId``, ``Group: all``, or an Organization /
   OU ARN the caller belongs to, compared on org id / OU id); otherwise
   ``InvalidAMIID.NotFound``. ``ExecutableUsers`` (``self``/``all``/id), ``Owners`` and
   filters work on that set. The owner's tags are not shown to other accounts.
   ``DescribeSnapshots`` likewise shows another account's snapshot only with
   ``createVolumePermission``. [moto: accounts are fully separate, a shared AMI is
   invisible to its target.]
2. ``ModifySnapshotAttribute`` with ``CreateVolumePermission={"Add"/"Remove": [...]}``
   works and ``DescribeSnapshotAttribute`` shows it; sharing a snapshot encrypted with
   an AWS-managed key is refused (``OperationNotPermitted``). [moto: the structured form
   is silently ignored.]
3. KMS key manager: keys behind ``alias/aws/*`` (``aws/ebs`` included) report
   ``KeyManager: AWS`` and carry the AWS-managed key policy (usable only by the owning
   account, through the AWS service); they cannot be granted on, re-policied, disabled
   or deleted directly. [moto: every key is ``CUSTOMER``.]
4. Cross-account KMS. Another account's key (by key or alias ARN) can be used only if
   a grant to a principal of the caller's account lists the operation, or the key
   policy allows it (principal root / account id / IAM ARN of the caller's account, or
   ``"*"`` with conditions on ``aws:PrincipalOrgID`` / ``aws:PrincipalOrgPaths`` /
   ``aws:PrincipalAccount`` / ``kms:CallerAccount``; unknown conditions fail closed);
   otherwise ``AccessDeniedException``. ``ListGrants`` and ``RevokeGrant`` need the key
   policy (grants cannot give them). A grant made *through* a grant may not widen it.
   ``DryRun`` on ``CreateGrant`` (and the crypto operations) checks and then answers
   ``DryRunOperationException``. Disabled keys answer ``DisabledException`` and keys
   pending deletion ``KMSInvalidStateException`` for grants and crypto
   (``DescribeKey`` still works and shows ``KeyState``, as in AWS). ``CreateGrant`` with
   a ``Name`` returns the existing grant when name, grantee, operations, constraints and
   retiring principal are identical. Grant operations are validated. Optionally, new
   grants take effect after a delay (:meth:`Sandbox.set_grant_delay`), like KMS's
   eventual consistency. [moto: nothing checks grants or policies, cross-account calls
   give ``NotFoundException`` or a raw ``KeyError``, ``DryRun`` is ignored (a real grant
   is made), a named grant is made twice.]
5. Cross-account and cross-region ``CopyImage``. The source is looked up in
   ``SourceRegion`` across accounts; the caller needs launch permission
   (else ``InvalidAMIID.NotFound``) and ``createVolumePermission`` on every snapshot
   (else ``InvalidRequest`` "You do not have permission to access the storage of this
   ami"). The copy is owned by the caller in the destination region; its snapshots are
   owned by the caller and encrypted when ``Encrypted=True`` or when the source is
   encrypted (an encrypted source never yields an unencrypted copy), with ``KmsKeyId``
   or else the caller's default EBS key (``alias/aws/ebs``). Key problems show up
   asynchronously, as in AWS: the call succeeds and the image becomes ``failed`` with a
   ``StateReason`` naming the key when the caller cannot ``Decrypt`` with the source key
   (grant / policy, enabled) or the destination key is missing, in another region,
   disabled or not usable. ``TagSpecifications`` (``image`` and ``snapshot``) are
   applied; ``CopyImageTags`` copies the source's tags only within one account.
   ``ClientToken``: same token and parameters give the same ``ImageId``, different
   parameters ``IdempotentParameterMismatch``. An unknown ``SourceRegion`` gives
   ``InvalidParameterValue``. [moto: same account only, ignores ``Encrypted``,
   ``KmsKeyId``, ``CopyImageTags``, ``TagSpecifications`` and ``ClientToken``.]
6. Pending state. Images made by ``CopyImage``/``CreateImage`` are ``available`` at once
   by default; with :meth:`Sandbox.hold_pending` they stay ``pending`` (snapshots
   ``pending`` with ``Progress``) until :meth:`Sandbox.set_copy_progress` /
   :meth:`Sandbox.advance` / :meth:`Sandbox.complete` / :meth:`Sandbox.release` /
   :meth:`Sandbox.fail`; with ``copy_duration`` they progress with wall time (for the
   demo and ``serve --sandbox``). ``failed`` images carry a ``StateReason``. [moto:
   images are never pending, snapshots always ``100%``.]
7. Fault injection: :meth:`Sandbox.inject_fault` makes the next N calls of an API
   operation (any service, any account) answer an error with a chosen code and HTTP
   status, so botocore's real retry logic runs; :meth:`Sandbox.calls` counts requests
   received (retries included).
8. ``CreateImage`` with ``TagSpecifications`` for ``snapshot`` tags the snapshots; the
   image gets one snapshot per instance volume, carrying the volume's size and
   encryption. [moto: ``NotImplementedError`` (HTTP 500 in server mode); one fixed
   unencrypted 15 GiB snapshot.]
9. Raw Python errors become AWS errors: ``DescribeImageAttribute`` on an unknown AMI
   gives ``InvalidAMIID.NotFound`` (``AuthFailure`` for a visible AMI of another
   account); KMS ``DisableKey``/``EnableKey``/``ScheduleKeyDeletion``/
   ``CancelKeyDeletion`` accept key ARNs; any other ``KeyError`` raised by moto while
   answering becomes an AWS error in the service's format (KMS ``NotFoundException``,
   EC2 ``InvalidAMIID.NotFound`` / ``InvalidSnapshot.NotFound`` for image / snapshot
   calls, else ``InternalError`` 500). [moto: ``KeyError`` → HTML 500 in server mode →
   botocore ``ResponseParserError``, which is not retried.]
10. ``RunInstances`` from another account's AMI needs launch permission
    (``InvalidAMIID.NotFound``); from an AMI whose snapshot key the caller cannot use
    (``Decrypt`` and ``CreateGrant``; or a disabled key) the instance is created and at
    once ``terminated`` with ``StateReason`` ``Client.InternalError``, as AWS does (a
    ``DryRun`` launch does not check keys, as in AWS). An AMI id that exists nowhere is
    left to moto (no AMI validation), so tests may use made-up ids. ``ClientToken``:
    same token and parameters give the first call's reservation again, different
    parameters ``IdempotentParameterMismatch``. [moto: ignores ``ClientToken``, a retry
    launches a second instance.]
11. Sessions: :meth:`Sandbox.session` acts as an account through
    ``sts.assume_role`` into ``arn:aws:iam::<id>:role/amibot``; the credentials keep
    mapping to that account after :meth:`Sandbox.reset`. [moto forgets them on reset
    and silently falls back to the default account.]

Simplifications (documented so nobody mistakes them for AWS facts): IAM is not
evaluated (any principal of an account with a grant or policy statement may use it);
an account's own customer-managed keys are always usable by that account (its key
policy is evaluated only for AWS-managed keys); OU nesting is modelled by giving a
member a ``"ou-parent/ou-child"`` path; the copy failure ``StateReason`` codes
(``Client.InvalidKMSKey.*``) are the sandbox's own wording.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import os
import re
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from xml.sax.saxutils import escape as _xml_escape

import boto3

BOT_ACCOUNT = "123456789012"
"""moto's default account: the bot's own credentials act as this account."""

ROLE_NAME = "amibot"
"""The role :meth:`Sandbox.session` assumes in member accounts."""

DEFAULT_BASE_IMAGE_ID = "ami-0abcdef1234567890"
"""The (unregistered) image id :meth:`Sandbox.create_instance` launches by default."""

# KMS operations a grant may list (CreateGrant rejects anything else with ValidationException).
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant",
        "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
    }
)

_ENV_KEYS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_EC2_LOAD_DEFAULT_AMIS",
    "MOTO_ACCOUNT_ID",
)

_KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>.+)$")
_PRINCIPAL_ACCOUNT = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::(?P<account>\d{12}):")
_ORG_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:organization/(?P<org>o-[a-z0-9]+)$")
_OU_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:ou/(?P<org>o-[a-z0-9]+)/(?P<ou>ou-[a-z0-9-]+)$")

_LOCK = threading.RLock()
# Sandboxes started and not stopped, most recent last; the patches follow the last one.
_STACK: list["_State"] = []
# Access key id -> (account id, principal ARN) for credentials made by sts.assume_role.
# Kept across moto resets so that sessions handed out earlier keep their account.
_KEY_ACCOUNTS: dict[str, tuple[str, str]] = {}
_ORIGINALS: dict[str, Any] = {}
_INSTALLED = False


def _active() -> "_State | None":
    return _STACK[-1] if _STACK else None


# --------------------------------------------------------------------------- state


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    remaining: int
    account: str | None = None


@dataclass
class _Pending:
    """An image made by CopyImage/CreateImage that has not finished yet."""

    image_id: str
    held: bool
    started: float
    progress: int = 0


@dataclass
class _OrgConfig:
    organization_id: str
    members: dict[str, str]
    management_account: str
    root_id: str


@dataclass
class _State:
    org: _OrgConfig
    copy_duration: float | None = None
    hold_all: bool = False
    grant_delay: float = 0.0
    pending: dict[str, _Pending] = field(default_factory=dict)
    # image id -> callable returning (code, message) when the image must fail, else None.
    checks: dict[str, Callable[[], tuple[str, str] | None]] = field(default_factory=dict)
    tokens: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    faults: dict[str, deque] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    grant_created: dict[str, float] = field(default_factory=dict)

    def clear(self) -> None:
        self.hold_all = False
        self.grant_delay = 0.0
        self.pending.clear()
        self.checks.clear()
        self.tokens.clear()
        self.faults.clear()
        self.calls.clear()
        self.grant_created.clear()

    # -- organisation membership -------------------------------------------------
    def org_of(self, account: str) -> str | None:
        if account in self.org.members or account == self.org.management_account:
            return self.org.organization_id
        return None

    def ou_path(self, account: str) -> list[str]:
        path = self.org.members.get(account) or ""
        return [p for p in path.split("/") if p]

    def org_paths(self, account: str) -> list[str]:
        if self.org_of(account) is None:
            return []
        ous = self.ou_path(account)
        return [f"{self.org.organization_id}/{self.org.root_id}/" + "".join(f"{ou}/" for ou in ous)]

    # -- faults --------------------------------------------------------------------
    def take_fault(self, operation: str, account: str) -> _Fault | None:
        queue = self.faults.get(operation)
        if not queue:
            return None
        for fault in list(queue):
            if fault.account in (None, account):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.remove(fault)
                return fault
        return None


# --------------------------------------------------------------------------- moto lookups


def _ec2_backends() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends


def _kms_backends() -> Any:
    from moto.kms.models import kms_backends

    return kms_backends


def _region_backends(backends: Any, region: str) -> list[tuple[str, Any]]:
    """Existing backends for ``region`` (never creates one)."""
    return [(acct, be) for acct, reg, be in list(backends.iter_backends()) if reg == region]


def _find_image(region: str, image_id: str) -> tuple[str, Any, Any] | None:
    for acct, be in _region_backends(_ec2_backends(), region):
        ami = be.amis.get(image_id)
        if ami is not None:
            return acct, be, ami
    return None


def _locate_image(image_id: str) -> tuple[str, str, Any, Any]:
    for acct, region, be in list(_ec2_backends().iter_backends()):
        ami = be.amis.get(image_id)
        if ami is not None:
            return acct, region, be, ami
    raise KeyError(f"no image {image_id} in the sandbox")


def _image_snapshots(ami: Any) -> list[Any]:
    bdm = ami.__dict__.get("_sbx_bdm")
    if bdm is not None:
        return [snap for _, snap in bdm]
    return [ami.ebs_snapshot]


def _can_launch(state: _State, ami: Any, account: str) -> bool:
    """AWS: an account sees/launches an AMI it owns, a public one, or one shared with it
    by account id, by its Organization or by an OU it is in."""
    if ami.owner_id == account:
        return True
    return _shared_with(state, ami, account) or ami.is_public


def _shared_with(state: _State, ami: Any, account: str) -> bool:
    org = state.org_of(account)
    ous = state.ou_path(account)
    for perm in ami.launch_permissions:
        if perm.get("UserId") == account:
            return True
        m = _ORG_ARN.match(perm.get("OrganizationArn") or "")
        if m and org and m.group("org") == org:
            return True
        m = _OU_ARN.match(perm.get("OrganizationalUnitArn") or "")
        if m and org and m.group("org") == org and m.group("ou") in ous:
            return True
    return False


def _can_restore(snapshot: Any, account: str) -> bool:
    """AWS: a snapshot can be read (described, copied) by its owner and by accounts
    with createVolumePermission (account ids or ``all``; organisations cannot be named)."""
    return (
        snapshot.owner_id == account
        or account in snapshot.create_volume_permission_userids
        or "all" in snapshot.create_volume_permission_groups
    )


_VIEW_CLASSES: dict[type, type] = {}


def _foreign_view(obj: Any) -> Any:
    """A copy of an EC2 model as another account sees it: AWS never shows an owner's
    user-defined tags to the accounts an AMI or snapshot is shared with."""
    base = type(obj)
    cls = _VIEW_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (base,), {"get_tags": lambda self: [], "__module__": base.__module__})
        _VIEW_CLASSES[base] = cls
    view = object.__new__(cls)
    view.__dict__.update(obj.__dict__)
    return view


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


# --------------------------------------------------------------------------- image states


def _set_pending(ami: Any, progress: int = 0) -> None:
    ami.state = "pending"
    ami.state_reason = None
    for snap in _image_snapshots(ami):
        snap.status = "pending"
        snap._sbx_progress = f"{progress}%"


def _set_available(ami: Any) -> None:
    ami.state = "available"
    ami.state_reason = None
    for snap in _image_snapshots(ami):
        snap.status = "completed"
        snap.__dict__.pop("_sbx_progress", None)


def _set_failed(ami: Any, code: str, message: str) -> None:
    ami.state = "failed"
    ami.state_reason = {"Code": code, "Message": message}
    for snap in _image_snapshots(ami):
        snap.status = "error"


def _resolve(state: _State, ami: Any) -> str:
    """Finish a pending image the way AWS would: available, or failed when a check
    (key usable, key present) says so at this moment."""
    state.pending.pop(ami.id, None)
    check = state.checks.get(ami.id)
    problem = check() if check else None
    if problem:
        _set_failed(ami, *problem)
    else:
        _set_available(ami)
    return ami.state


def _register_new_image(state: _State, ami: Any, check: Callable[[], tuple[str, str] | None] | None) -> None:
    if check is not None:
        state.checks[ami.id] = check
    if state.hold_all or state.copy_duration:
        state.pending[ami.id] = _Pending(ami.id, held=state.hold_all, started=time.monotonic())
        _set_pending(ami)
    else:
        _resolve(state, ami)


def _tick(state: _State) -> None:
    """Move time-driven copies forward (``copy_duration``), lazily on each describe."""
    if not state.copy_duration or not state.pending:
        return
    now = time.monotonic()
    for pending in list(state.pending.values()):
        if pending.held:
            continue
        try:
            _, _, _, ami = _locate_image(pending.image_id)
        except KeyError:
            state.pending.pop(pending.image_id, None)
            continue
        fraction = (now - pending.started) / state.copy_duration
        if fraction >= 1:
            _resolve(state, ami)
        else:
            pending.progress = int(fraction * 100)
            _set_pending(ami, pending.progress)


def _make_snapshots(backend: Any, ami: Any, specs: list[dict[str, Any]], description: Callable[[int], str]) -> None:
    """Give ``ami`` one snapshot per spec (device, size, kms key ARN or None, tags),
    replacing the fixed unencrypted snapshot moto makes for every image."""
    old = ami.ebs_snapshot
    backend.snapshots.pop(old.id, None)
    made = []
    zone = f"{backend.region_name}a"
    for index, spec in enumerate(specs):
        volume = backend.create_volume(size=spec.get("size", 8), zone_name=zone)
        snap = backend.create_snapshot(volume.id, description(index), owner_id=ami.owner_id, from_ami=ami.id)
        backend.delete_volume(volume.id)
        key = spec.get("kms_key_id")
        snap.encrypted = bool(spec.get("encrypted") or key)
        snap.kms_key_id = key if snap.encrypted else None
        if spec.get("tags"):
            snap.add_tags(spec["tags"])
        made.append((spec["device"], snap))
    ami.ebs_snapshot = made[0][1]
    ami._sbx_bdm = made
    ami.root_device_type = "ebs"
    ami.root_device_name = made[0][0]


def _tags_from_specs(specs: Any, allowed: set[str]) -> dict[str, dict[str, str]]:
    from moto.ec2.exceptions import EC2ClientError

    out: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"'{rtype}' is not a valid taggable resource type for this operation.",
            )
        for tag in spec.get("Tags", []) or []:
            out.setdefault(rtype, {})[tag["Key"]] = tag.get("Value", "")
    return out


def _default_ebs_key_arn(account: str, region: str) -> str:
    """The account's default EBS key in ``region``: the one set with
    ModifyEbsDefaultKmsKeyId, else the AWS-managed ``alias/aws/ebs`` key."""
    be = _ec2_backends()[account][region]
    if be.default_kms_key_id:
        return be.default_kms_key_id
    key = _key_by_alias(_kms_backends()[account][region], "alias/aws/ebs")
    return key.arn


# --------------------------------------------------------------------------- error responses


def _error_response(resp: Any, code: str, message: str, status: int) -> tuple[int, dict[str, str], str]:
    """An AWS error in the wire format of the service ``resp`` answers for."""
    from moto.core.utils import get_service_model

    try:
        protocol = get_service_model(resp.boto3_service_name).protocol
    except Exception:
        protocol = "query"
    headers = {"server": "amazon.com"}
    msg = _xml_escape(message)
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            "<RequestID>sandbox-fault</RequestID></Response>"
        )
        headers["Content-Type"] = "text/xml"
    elif protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.1"
        headers["x-amzn-ErrorType"] = code
    elif protocol == "query":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type><Code>{code}</Code>"
            f"<Message>{msg}</Message></Error><RequestId>sandbox-fault</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    else:
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{msg}</Message></Error>'
        headers["Content-Type"] = "application/xml"
    headers["status"] = str(status)
    return status, headers, body


def _kms_error(code: str, message: str, status: int = 400) -> Exception:
    from moto.core.exceptions import JsonRESTError

    err = JsonRESTError(code, message)
    err.code = status
    return err


def _caller_arn(resp: Any) -> str:
    try:
        key = resp.get_access_key()
    except Exception:
        key = None
    if key in _KEY_ACCOUNTS:
        return _KEY_ACCOUNTS[key][1]
    return f"arn:aws:iam::{resp.current_account}:root"


def _access_denied(resp: Any, action: str, key: Any) -> Exception:
    return _kms_error(
        "AccessDeniedException",
        f"User: {_caller_arn(resp)} is not authorized to perform: kms:{action} on resource: {key.arn} "
        f"because no resource-based policy allows the kms:{action} action",
    )


@contextmanager
def _as_account(resp: Any, account: str) -> Iterator[None]:
    """Run moto's handler as if the owner called: moto looks keys up in the caller's
    account only, so after the sandbox has authorised a cross-account call it is
    replayed against the owner's backend."""
    saved = resp.current_account
    resp.current_account = account
    try:
        yield
    finally:
        resp.current_account = saved


# --------------------------------------------------------------------------- patches: core


def _patched_call_action(self: Any) -> Any:
    state = _active()
    original = _ORIGINALS["call_action"]
    if state is None:
        return original(self)
    try:
        operation = self._get_action()
    except Exception:
        operation = None
    if operation:
        with _LOCK:
            state.calls[operation] += 1
            state.calls[(operation, self.current_account)] += 1
            fault = state.take_fault(operation, self.current_account)
        if fault is not None:
            return _error_response(self, fault.code, fault.message, fault.status)
    try:
        return original(self)
    except KeyError as exc:
        # moto raises raw KeyErrors for ids it cannot find (notably other accounts'
        # resources); AWS answers a NotFound error. Without this the server answers
        # an HTML 500 that botocore cannot parse.
        service = getattr(self, "service_name", "") or ""
        name = operation or ""
        missing = str(exc).strip("'\"")
        if service == "kms":
            return _error_response(self, "NotFoundException", f"Key '{missing}' does not exist", 400)
        if service == "ec2" and "Image" in name:
            return _error_response(self, "InvalidAMIID.NotFound", f"The image id '[{missing}]' does not exist", 400)
        if service == "ec2" and "Snapshot" in name:
            return _error_response(self, "InvalidSnapshot.NotFound", f"The snapshot '{missing}' does not exist.", 400)
        return _error_response(self, "InternalError", f"An internal error occurred ({missing}).", 500)


def _patched_get_account_id_from(access_key: str) -> str:
    if _STACK and access_key in _KEY_ACCOUNTS:
        return _KEY_ACCOUNTS[access_key][0]
    return _ORIGINALS["get_account_id_from"](access_key)


def _patched_assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
    role = _ORIGINALS["assume_role"](self, *args, **kwargs)
    if _STACK:
        _KEY_ACCOUNTS[role.access_key_id] = (role.account_id, role.arn)
    return role


def _patched_bdm_property(self: Any) -> list[dict[str, Any]]:
    bdm = self.__dict__.get("_sbx_bdm")
    if bdm is None or _active() is None:
        result = _ORIGINALS["block_device_mappings"].fget(self)
        if _active() is not None:
            result[0]["Ebs"]["Encrypted"] = bool(getattr(self.ebs_snapshot, "encrypted", False))
        return result
    return [
        {
            "DeviceName": device,
            "Ebs": {
                "SnapshotId": snap.id,
                "VolumeSize": snap.volume.size,
                "DeleteOnTermination": True,
                "VolumeType": "gp3",
                "Encrypted": bool(snap.encrypted),
            },
        }
        for device, snap in bdm
    ]


def _patched_progress_property(self: Any) -> str:
    progress = self.__dict__.get("_sbx_progress")
    if progress is not None and _active() is not None:
        return progress
    return _ORIGINALS["progress"].fget(self)


def _patched_create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
    alias = _ORIGINALS["create_alias"](self, target_key_id, alias_name)
    if alias_name.startswith("alias/aws/") and _active() is not None:
        # AWS-managed keys (aws/ebs, aws/s3, ...) are made by AWS, report KeyManager
        # AWS and carry a fixed policy that only lets the account use them through
        # the service. They cannot be shared with other accounts.
        key = self.keys[self.get_key_id(target_key_id)]
        service = alias_name.split("/", 2)[2]
        key.key_manager = "AWS"
        key.policy = _aws_managed_policy(self.account_id, self.region_name, service)
        if service == "ebs":
            key.description = "Default key that protects my EBS volumes when no other key is defined"
        else:
            key.description = f"Default key that protects my {service} data when no other key is defined"
    return alias


def _key_arn_tolerant(name: str) -> Callable[..., Any]:
    """AWS accepts a key ARN wherever a key id goes; these moto backend methods index
    ``self.keys`` with the raw argument and raise ``KeyError`` for an ARN."""

    def method(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        if _active() is not None and isinstance(key_id, str):
            key_id = self.get_key_id(key_id)
        return _ORIGINALS[name](self, key_id, *args, **kwargs)

    method.__name__ = name.split(".")[-1]
    return method


# --------------------------------------------------------------------------- patches: EC2


def _ec2_patch(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def handler(self: Any) -> Any:
            state = _active()
            if state is None:
                return _ORIGINALS[name](self)
            with _LOCK:
                return func(self, state, _ORIGINALS[name])

        handler.__name__ = name.split(".")[-1]
        return handler

    return decorator


@_ec2_patch("AmisResponse.describe_images")
def _describe_images(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
    from moto.ec2.utils import generic_filter

    self.error_on_dryrun()
    _tick(state)
    caller, region = self.current_account, self.region
    ami_ids = self._get_param("ImageIds", []) or []
    owners = self._get_param("Owners", []) or []
    exec_users = self._get_param("ExecutableUsers", []) or []
    filters = self._filters_from_querystring()
    own = self.ec2_backend
    images: list[Any] = list(own.amis.values())
    seen = {ami.id for ami in images}
    for acct, be in _region_backends(_ec2_backends(), region):
        if acct == caller:
            continue
        for ami in list(be.amis.values()):
            if ami.id not in seen and _can_launch(state, ami, caller):
                images.append(_foreign_view(ami))
                seen.add(ami.id)
    if ami_ids:
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [ami for ami in images if ami.id in ami_ids]
        found = {ami.id for ami in images}
        missing = [i for i in ami_ids if i not in found and i not in own.deleted_amis]
        if missing:
            raise InvalidAMIIdError(missing)
    if exec_users:
        def executable(ami: Any) -> bool:
            for user in exec_users:
                if user == "all" and ami.is_public:
                    return True
                if user in ("self", caller) and _shared_with(state, ami, caller):
                    return True
                if {"UserId": user} in ami.launch_permissions:
                    return True
            return False

        images = [ami for ami in images if executable(ami)]
    if owners:
        wanted = {caller if o == "self" else o for o in owners}
        images = [ami for ami in images if ami.owner_id in wanted or (ami.owner_alias and ami.owner_alias in wanted)]
    if filters:
        images = generic_filter(filters, images)
    return ActionResult({"Images": images})


@_ec2_patch("AmisResponse.describe_image_attribute")
def _describe_image_attribute(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError

    ami_id = self._get_param("ImageId")
    if ami_id in self.ec2_backend.amis:
        return original(self)
    found = _find_image(self.region, ami_id)
    if found and _can_launch(state, found[2], self.current_account):
        # AWS: only the owner may read an AMI's attributes.
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{ami_id}")
    raise InvalidAMIIdError(ami_id)


@_ec2_patch("AmisResponse.copy_image")
def _copy_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError, InvalidParameterDependency
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    caller, region = self.current_account, self.region
    source_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    encrypted = str(self._get_param("Encrypted", False)).lower() == "true"
    kms_key_id = self._get_param("KmsKeyId")
    token = self._get_param("ClientToken")
    tag_specs = self._get_param("TagSpecifications", []) or []
    copy_tags = str(self._get_param("CopyImageTags", False)).lower() == "true"

    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    tags = _tags_from_specs(tag_specs, {"image", "snapshot"})
    self.error_on_dryrun()

    # ClientToken: AWS answers a retry with the same token and parameters with the
    # first call's image, and refuses the token with other parameters.
    fingerprint = json.dumps(
        [source_id, source_region, name, description, encrypted, kms_key_id, tags, copy_tags], sort_keys=True
    )
    if token:
        previous = state.tokens.get((caller, region, token))
        if previous is not None:
            if previous[0] != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous request(s) (ClientToken {token}).",
                )
            return ActionResult({"ImageId": previous[1]})

    if source_region not in _known_regions():
        raise EC2ClientError("InvalidParameterValue", f"Invalid value '{source_region}' for SourceRegion.")
    found = _find_image(source_region, source_id)
    if found is None or not _can_launch(state, found[2], caller):
        raise InvalidAMIIdError(source_id)
    source_owner, _, source = found
    source_snaps = _image_snapshots(source)
    if source_owner != caller:
        for snap in source_snaps:
            if not _can_restore(snap, caller):
                raise EC2ClientError("InvalidRequest", "You do not have permission to access the storage of this ami")

    # AWS: a copy of an encrypted snapshot is always encrypted; the key is KmsKeyId or
    # the destination account's default EBS key.
    source_encrypted = any(s.encrypted for s in source_snaps)
    dest_encrypted = encrypted or source_encrypted
    key_ref = kms_key_id if kms_key_id else (_default_ebs_key_arn(caller, region) if dest_encrypted else None)
    resolved = _lookup_key(key_ref, caller, region) if key_ref else None
    shown_key = resolved[1].arn if resolved else key_ref

    backend = _ec2_backends()[caller][region]
    image = Ami(backend, random_ami_id(), source_ami=source, name=name, description=description)
    backend.amis[image.id] = image
    task = int(time.time()) % 100000
    _make_snapshots(
        backend,
        image,
        [
            {
                "device": device,
                "size": snap.volume.size,
                "encrypted": dest_encrypted,
                "kms_key_id": shown_key,
                "tags": tags.get("snapshot"),
            }
            for (device, snap) in (source.__dict__.get("_sbx_bdm") or [(source.root_device_name, source.ebs_snapshot)])
        ],
        lambda i: (
            f"Copied for DestinationAmi {image.id} from SourceAmi {source_id} for SourceSnapshot "
            f"{source_snaps[i].id}. Task created on {task:,}."
        ),
    )
    image_tags: dict[str, str] = {}
    if copy_tags and source_owner == caller:
        # AWS copies user-defined tags only within an account.
        image_tags.update({t["key"]: t["value"] for t in source.get_tags()})
    image_tags.update(tags.get("image", {}))
    if image_tags:
        image.add_tags(image_tags)

    source_keys = []
    for snap in source_snaps:
        if snap.encrypted:
            source_keys.append((snap.id, snap.kms_key_id or _default_ebs_key_arn(source_owner, source_region)))

    def check() -> tuple[str, str] | None:
        for snap_id, key_arn in source_keys:
            hit = _lookup_key(key_arn, source_owner, source_region)
            if hit is None:
                return "Client.InvalidKMSKey.NotFound", f"The KMS key {key_arn} that encrypts snapshot {snap_id} of {source_id} does not exist."
            key = hit[1]
            if key.key_state != "Enabled":
                return "Client.InvalidKMSKey.InvalidState", f"The KMS key {key.arn} that encrypts snapshot {snap_id} of {source_id} is {key.key_state.lower()}."
            if not _kms_allows(state, key, caller, "Decrypt", via_service_region=source_region):
                return (
                    "Client.InvalidKMSKey.AccessDenied",
                    f"Account {caller} is not allowed to use the KMS key {key.arn} (kms:Decrypt) that encrypts snapshot {snap_id} of {source_id}.",
                )
        if dest_encrypted:
            hit = _lookup_key(key_ref, caller, region)
            if hit is None:
                return "Client.InvalidKMSKey.NotFound", f"The KMS key {key_ref} does not exist in {region} for account {caller}."
            key = hit[1]
            if key.key_state != "Enabled":
                return "Client.InvalidKMSKey.InvalidState", f"The KMS key {key.arn} is {key.key_state.lower()}."
            if not _kms_allows(state, key, caller, "GenerateDataKeyWithoutPlaintext", via_service_region=region):
                return "Client.InvalidKMSKey.AccessDenied", f"Account {caller} is not allowed to use the KMS key {key.arn}."
        return None

    _register_new_image(state, image, check)
    if token:
        state.tokens[(caller, region, token)] = (fingerprint, image.id)
    return ActionResult({"ImageId": image.id})


@_ec2_patch("AmisResponse.create_image")
def _create_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    specs = self._get_param("TagSpecifications", []) or []
    tags = _tags_from_specs(specs, {"image", "snapshot"})
    # moto raises NotImplementedError for snapshot tag specifications: hand it only
    # the image ones and tag the snapshots here.
    self.params["TagSpecifications"] = [s for s in specs if s.get("ResourceType") == "image"]
    result = original(self)
    image_id = result.result["ImageId"]
    backend = self.ec2_backend
    image = backend.amis[image_id]
    instance = backend.get_instance(self._get_param("InstanceId"))
    volumes = []
    for device, bdt in sorted(instance.block_device_mapping.items()):
        volume = backend.volumes.get(getattr(bdt, "volume_id", None))
        if volume is not None:
            volumes.append((device, volume))
    if not volumes:
        volumes = [(image.root_device_name, None)]
    _make_snapshots(
        backend,
        image,
        [
            {
                "device": device,
                "size": volume.size if volume else 8,
                "encrypted": bool(volume and volume.encrypted),
                "kms_key_id": (volume.kms_key_id if volume and volume.encrypted else None),
                "tags": tags.get("snapshot"),
            }
            for device, volume in volumes
        ],
        lambda i: f"Created by CreateImage({instance.id}) for {image_id}",
    )
    _register_new_image(state, image, None)
    return result


@_ec2_patch("AmisResponse.deregister_image")
def _deregister_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    state.pending.pop(self._get_param("ImageId"), None)
    return original(self)


def _get_ebs_default_kms_key_id(self: Any) -> Any:
    """GetEbsDefaultKmsKeyId, which moto lacks: the key set with
    ModifyEbsDefaultKmsKeyId, else the account's ``aws/ebs`` key, as AWS answers."""
    from moto.core.responses import ActionResult

    if _active() is None:
        raise NotImplementedError("The get_ebs_default_kms_key_id action has not been implemented")
    with _LOCK:
        return ActionResult({"KmsKeyId": _default_ebs_key_arn(self.current_account, self.region)})


@_ec2_patch("ElasticBlockStore.describe_snapshots")
def _describe_snapshots(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.utils import generic_filter

    self.error_on_dryrun()
    _tick(state)
    caller, region = self.current_account, self.region
    snapshot_ids = self._get_param("SnapshotIds", []) or []
    owner_ids = self._get_param("OwnerIds", []) or []
    restorable = self._get_param("RestorableByUserIds", []) or []
    filters = self._filters_from_querystring()
    snaps: list[Any] = list(self.ec2_backend.snapshots.values())
    seen = {s.id for s in snaps}
    for acct, be in _region_backends(_ec2_backends(), region):
        if acct == caller:
            continue
        for snap in list(be.snapshots.values()):
            if snap.id not in seen and _can_restore(snap, caller):
                snaps.append(_foreign_view(snap))
                seen.add(snap.id)
    if snapshot_ids:
        snaps = [s for s in snaps if s.id in snapshot_ids]
        missing = sorted(set(snapshot_ids) - {s.id for s in snaps})
        if missing:
            raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
    if owner_ids:
        wanted = {caller if o == "self" else o for o in owner_ids}
        snaps = [s for s in snaps if s.owner_id in wanted]
    if restorable:
        users = {caller if u == "self" else u for u in restorable}
        snaps = [
            s for s in snaps
            if any(u == s.owner_id or u in s.create_volume_permission_userids for u in users)
            or ("all" in users and "all" in s.create_volume_permission_groups)
        ]
    if filters:
        snaps = generic_filter(filters, snaps)
    return ActionResult({"Snapshots": snaps})


@_ec2_patch("ElasticBlockStore.modify_snapshot_attribute")
def _modify_snapshot_attribute(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import EmptyResult
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIAttributeItemValueError

    snapshot_id = self._get_param("SnapshotId")
    structured = self._get_param("CreateVolumePermission") or {}
    operation_type = self._get_param("OperationType")
    adds: list[dict[str, str]] = []
    removes: list[dict[str, str]] = []
    if operation_type in ("add", "remove"):
        perms = [{"UserId": u} for u in self._get_param("UserIds", []) or []]
        perms += [{"Group": g} for g in self._get_param("GroupNames", []) or []]
        (adds if operation_type == "add" else removes).extend(perms)
    adds += list(structured.get("Add", []) or [])
    removes += list(structured.get("Remove", []) or [])
    snapshot = self.ec2_backend.get_snapshot(snapshot_id)
    for perm in adds + removes:
        if "UserId" in perm and not re.fullmatch(r"\d{12}", perm["UserId"] or ""):
            raise InvalidAMIAttributeItemValueError("userId", perm["UserId"])
        if "Group" in perm and perm["Group"] != "all":
            raise InvalidAMIAttributeItemValueError("UserGroup", perm["Group"])
    if adds and snapshot.encrypted:
        hit = _lookup_key(snapshot.kms_key_id, snapshot.owner_id, self.region) if snapshot.kms_key_id else None
        if snapshot.kms_key_id is None or (hit is not None and hit[1].key_manager == "AWS"):
            # AWS: snapshots encrypted with the AWS-managed key cannot be shared.
            raise EC2ClientError("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    self.error_on_dryrun()
    add_users = [p["UserId"] for p in adds if "UserId" in p]
    add_groups = [p["Group"] for p in adds if "Group" in p]
    rm_users = [p["UserId"] for p in removes if "UserId" in p]
    rm_groups = [p["Group"] for p in removes if "Group" in p]
    if add_users or add_groups:
        self.ec2_backend.add_create_volume_permission(snapshot_id, user_ids=add_users, groups=add_groups)
    if rm_users or rm_groups:
        self.ec2_backend.remove_create_volume_permission(snapshot_id, user_ids=rm_users, groups=rm_groups)
    return EmptyResult()


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
                    _kms_allows(state, key, caller, op, via_service_region=self.region) for op in ("Decrypt", "CreateGrant")
                ):
                    problem = True
                    break
    result = original(self)
    if token and not dry_run:
        state.tokens[(caller, self.region, f"RunInstances:{token}")] = (fingerprint, result.result.id)
    if problem:
        for instance in result.result.instances:
            instance.terminate()
            instance.state_reason = StateReason("Client.InternalError: Client error on launch", "Client.InternalError")
    return result


# --------------------------------------------------------------------------- patches: KMS


def _kms_key_for(resp: Any, key_id: str | None) -> tuple[str, Any, bool] | None:
    """(owner, key, foreign) for a KMS request's key, or None to let moto answer
    (missing key id, or a key of the caller's own account that moto will reject)."""
    if not key_id:
        return None
    caller, region = resp.current_account, resp.region
    m = _KMS_ARN.match(key_id)
    if m and m.group("account") != caller:
        hit = _lookup_key(key_id, caller, region)
        if hit is None:
            raise _kms_error("NotFoundException", f"Key '{key_id}' does not exist")
        return hit[0], hit[1], True
    try:
        hit = _lookup_key(key_id, caller, region)
    except Exception:
        hit = None
    if hit is None:
        return None
    return hit[0], hit[1], False


def _kms_guard(
    resp: Any,
    state: _State,
    action: str,
    key_param: str = "KeyId",
    *,
    check_state: bool = True,
    grants_count: bool = True,
    dry_run: bool = True,
    extra: Callable[[str, Any, bool], Any] | None = None,
) -> tuple[str | None, Any]:
    """Authorise a KMS call; returns (owner account to replay as, key) or (None, None)."""
    target = _kms_key_for(resp, resp._get_param(key_param))
    if target is None:
        return None, None
    owner, key, foreign = target
    caller = resp.current_account
    if (foreign or key.key_manager == "AWS") and not _kms_allows(
        state, key, caller, action, principal_arn=_caller_arn(resp), grants_count=grants_count
    ):
        raise _access_denied(resp, action, key)
    if check_state:
        problem = _key_state_problem(key)
        if problem:
            raise _kms_error(*problem)
    if extra is not None:
        shortcut = extra(owner, key, foreign)
        if shortcut is not None:
            return owner, shortcut
    if dry_run and resp._get_param("DryRun"):
        raise _kms_error(
            "DryRunOperationException", "The request would have succeeded, but the DryRun parameter was set.", 412
        )
    return owner, key


def _kms_patch(name: str, action: str, key_param: str = "KeyId", **guard: Any) -> Callable[..., Any]:
    def handler(self: Any) -> Any:
        original = _ORIGINALS[name]
        state = _active()
        if state is None:
            return original(self)
        owner, _ = _kms_guard(self, state, action, key_param, **guard)
        if owner is not None and owner != self.current_account:
            with _as_account(self, owner):
                return original(self)
        return original(self)

    handler.__name__ = name.split(".")[-1]
    return handler


def _create_grant(self: Any) -> Any:
    original = _ORIGINALS["KmsResponse.create_grant"]
    state = _active()
    if state is None:
        return original(self)
    operations = self._get_param("Operations") or []
    invalid = [op for op in operations if op not in GRANT_OPERATIONS]
    if invalid or not operations:
        raise _kms_error(
            "ValidationException",
            f"1 validation error detected: Value '{operations}' at 'operations' failed to satisfy constraint: "
            f"Member must satisfy constraint: [Member must satisfy enum value set: {sorted(GRANT_OPERATIONS)}]",
        )
    grantee = self._get_param("GranteePrincipal")
    name = self._get_param("Name")
    constraints = self._get_param("Constraints")
    retiring = self._get_param("RetiringPrincipal")

    def extra(owner: str, key: Any, foreign: bool) -> Any:
        caller = self.current_account
        if foreign:
            ctx = _caller_context(state, caller, _caller_arn(self), None)
            if _policy_decision(key, caller, "CreateGrant", ctx) != "allow":
                # The right to create grants came from a grant: AWS lets a grantee
                # pass on at most the operations its own grants hold.
                held = set()
                for grant in _effective_grants(state, key, caller):
                    if "CreateGrant" in (grant.operations or []):
                        held.update(grant.operations or [])
                if not set(operations) <= held:
                    raise _access_denied(self, "CreateGrant", key)
        if name:
            # AWS: CreateGrant with a Name is idempotent; an identical request
            # returns the existing grant instead of a second one.
            for grant in key.grants.values():
                if (
                    grant.name == name
                    and grant.grantee_principal == grantee
                    and sorted(grant.operations or []) == sorted(operations)
                    and (grant.constraints or None) == (constraints or None)
                    and grant.retiring_principal == retiring
                ):
                    if self._get_param("DryRun"):
                        return None
                    return json.dumps({"GrantId": grant.id, "GrantToken": grant.token})
        return None

    with _LOCK:
        owner, result = _kms_guard(self, state, "CreateGrant", extra=extra)
        if isinstance(result, str):
            return result
        if owner is not None and owner != self.current_account:
            with _as_account(self, owner):
                body = original(self)
        else:
            body = original(self)
        try:
            state.grant_created[json.loads(body)["GrantId"]] = time.monotonic()
        except (TypeError, ValueError, KeyError):
            pass
        return body


def _aws_managed_refusal(name: str, action: str) -> Callable[..., Any]:
    """AWS-managed keys cannot be managed by their account: no policy changes,
    no disabling, no deletion."""

    def handler(self: Any) -> Any:
        original = _ORIGINALS[name]
        state = _active()
        if state is None:
            return original(self)
        target = _kms_key_for(self, self._get_param("KeyId"))
        if target is not None:
            owner, key, foreign = target
            if key.key_manager == "AWS" and not foreign:
                raise _access_denied(self, action, key)
        return original(self)

    handler.__name__ = name.split(".")[-1]
    return handler


# --------------------------------------------------------------------------- install


def _known_regions() -> set[str]:
    regions = set(_known_regions_cached())
    regions.update(reg for _, reg, _ in list(_ec2_backends().iter_backends()))
    return regions


@functools.lru_cache(maxsize=1)
def _known_regions_cached() -> tuple[str, ...]:
    session = boto3.session.Session()
    out: set[str] = set()
    for partition in session.get_available_partitions():
        out.update(session.get_available_regions("ec2", partition_name=partition))
    return tuple(sorted(out))


def _install() -> None:
    """Install every patch once per process (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        import moto.iam.models as iam_models
        from moto.core.responses import BaseResponse
        from moto.ec2.models.amis import Ami
        from moto.ec2.models.elastic_block_store import Snapshot
        from moto.ec2.responses.amis import AmisResponse
        from moto.ec2.responses.elastic_block_store import ElasticBlockStore
        from moto.ec2.responses.instances import InstanceResponse
        from moto.kms.models import KmsBackend
        from moto.kms.responses import KmsResponse
        from moto.sts.models import STSBackend

        classes = {
            "AmisResponse": AmisResponse,
            "ElasticBlockStore": ElasticBlockStore,
            "InstanceResponse": InstanceResponse,
            "KmsResponse": KmsResponse,
        }

        _ORIGINALS["call_action"] = BaseResponse.call_action
        BaseResponse.call_action = _patched_call_action
        _ORIGINALS["get_account_id_from"] = iam_models.get_account_id_from
        iam_models.get_account_id_from = _patched_get_account_id_from
        _ORIGINALS["assume_role"] = STSBackend.assume_role
        STSBackend.assume_role = _patched_assume_role
        _ORIGINALS["block_device_mappings"] = Ami.__dict__["block_device_mappings"]
        Ami.block_device_mappings = property(_patched_bdm_property)
        _ORIGINALS["progress"] = Snapshot.__dict__["progress"]
        Snapshot.progress = property(_patched_progress_property)
        _ORIGINALS["create_alias"] = KmsBackend.create_alias
        KmsBackend.create_alias = _patched_create_alias

        for method in ("disable_key", "enable_key", "cancel_key_deletion", "schedule_key_deletion"):
            _ORIGINALS[f"KmsBackend.{method}"] = getattr(KmsBackend, method)
            setattr(KmsBackend, method, _key_arn_tolerant(f"KmsBackend.{method}"))

        ec2_handlers = {
            "AmisResponse.describe_images": _describe_images,
            "AmisResponse.describe_image_attribute": _describe_image_attribute,
            "AmisResponse.copy_image": _copy_image,
            "AmisResponse.create_image": _create_image,
            "AmisResponse.deregister_image": _deregister_image,
            "ElasticBlockStore.describe_snapshots": _describe_snapshots,
            "ElasticBlockStore.modify_snapshot_attribute": _modify_snapshot_attribute,
            "InstanceResponse.run_instances": _run_instances,
        }
        kms_handlers: dict[str, Callable[..., Any]] = {
            "KmsResponse.describe_key": _kms_patch("KmsResponse.describe_key", "DescribeKey", check_state=False, dry_run=False),
            "KmsResponse.list_grants": _kms_patch("KmsResponse.list_grants", "ListGrants", check_state=False, grants_count=False, dry_run=False),
            "KmsResponse.revoke_grant": _kms_patch("KmsResponse.revoke_grant", "RevokeGrant", check_state=False, grants_count=False),
            "KmsResponse.encrypt": _kms_patch("KmsResponse.encrypt", "Encrypt"),
            "KmsResponse.decrypt": _kms_patch("KmsResponse.decrypt", "Decrypt"),
            "KmsResponse.generate_data_key": _kms_patch("KmsResponse.generate_data_key", "GenerateDataKey"),
            "KmsResponse.generate_data_key_without_plaintext": _kms_patch(
                "KmsResponse.generate_data_key_without_plaintext", "GenerateDataKeyWithoutPlaintext"
            ),
            "KmsResponse.create_grant": _create_grant,
            "KmsResponse.put_key_policy": _aws_managed_refusal("KmsResponse.put_key_policy", "PutKeyPolicy"),
            "KmsResponse.disable_key": _aws_managed_refusal("KmsResponse.disable_key", "DisableKey"),
            "KmsResponse.schedule_key_deletion": _aws_managed_refusal("KmsResponse.schedule_key_deletion", "ScheduleKeyDeletion"),
        }
        for qualified, handler in {**ec2_handlers, **kms_handlers}.items():
            cls_name, method = qualified.split(".")
            cls = classes[cls_name]
            _ORIGINALS[qualified] = getattr(cls, method)
            setattr(cls, method, handler)
        # moto has no GetEbsDefaultKmsKeyId at all (nothing to keep as the original).
        ElasticBlockStore.get_ebs_default_kms_key_id = _get_ebs_default_kms_key_id
        # Additions kept in modules of their own: block public access, role trust.
        from offline import sandbox_bpa, sandbox_roles

        sandbox_bpa.install()
        sandbox_roles.install()
        _INSTALLED = True


# --------------------------------------------------------------------------- public API


class Sandbox:
    """moto plus the AWS semantics amibot depends on.

    ``start()`` once (per test session), ``reset()`` between tests, ``stop()`` at the
    end. ``server=True`` runs a ``ThreadedMotoServer`` on 127.0.0.1 and points
    ``AWS_ENDPOINT_URL`` at it; otherwise moto intercepts boto3 in-process.
    ``org_members`` maps account id to OU id (``"ou-ab12-cdef3456"``, or a
    ``"ou-parent/ou-child"`` path) for accounts in the Organization
    ``organization_id`` (managed from ``management_account``). ``copy_duration``
    makes new images progress from pending to done over that many seconds of wall
    time (for the demo and ``serve --sandbox``); by default they finish at once.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        *,
        server: bool = False,
        organization_id: str = "o-sandbox1234",
        org_members: dict[str, str] | None = None,
        management_account: str = BOT_ACCOUNT,
        org_root_id: str = "r-sbx1",
        copy_duration: float | None = None,
    ):
        self.region = region
        self.server = server
        self.endpoint_url: str | None = None
        self._org = _OrgConfig(organization_id, dict(org_members or {}), management_account, org_root_id)
        self._copy_duration = copy_duration
        self._state = _State(org=copy.deepcopy(self._org), copy_duration=copy_duration)
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._server: Any = None
        self._started = False
        self._sessions: dict[tuple[str, str], boto3.Session] = {}
        self._creds: dict[str, dict[str, str]] = {}

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Set the environment (test credentials, region, no default AMIs) and start
        moto in-process or as a threaded server on a free loopback port."""
        if self._started:
            return
        _install()
        self._saved_env = {k: os.environ.get(k) for k in _ENV_KEYS}
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ["AWS_DEFAULT_REGION"] = self.region
        # Must be set before moto builds an EC2 backend: 1,300 default AMIs per
        # region make every DescribeImages slow.
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        for k in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
            os.environ.pop(k, None)
        try:
            if self.server:
                from moto.server import ThreadedMotoServer

                # Port 0: the OS picks a free port, with no window for another process to take it.
                self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                self._server.start()
                host, port = self._server.get_host_and_port()
                self.endpoint_url = f"http://{host}:{port}"
                os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
            else:
                from moto import mock_aws

                # Keep the "testing" credentials set above rather than moto's own.
                self._mock = mock_aws(
                    config={
                        "core": {
                            "mock_credentials": False,
                            "passthrough": {"urls": [], "services": []},
                            "reset_boto3_session": True,
                            "service_whitelist": None,
                        }
                    }
                )
                self._mock.start()
        except Exception:
            self._restore_env()
            raise
        with _LOCK:
            _STACK.append(self._state)
        self._started = True

    def stop(self) -> None:
        """Stop moto, forget the sandbox state and restore the environment."""
        if not self._started:
            return
        with _LOCK:
            if self._state in _STACK:
                _STACK.remove(self._state)
            if not _STACK:
                _KEY_ACCOUNTS.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._restore_env()
        self.endpoint_url = None
        self._sessions.clear()
        self._creds.clear()
        self._started = False

    def _restore_env(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def reset(self) -> None:
        """Clear all moto state and the sandbox state (holds, faults, counters,
        tokens, organisation changes). Sessions handed out stay valid."""
        from moto.moto_api._internal.models import moto_api_backend

        with _LOCK:
            moto_api_backend.reset()
            self._state.clear()
            self._state.org = copy.deepcopy(self._org)
            self._state.copy_duration = self._copy_duration

    # -- identities ----------------------------------------------------------------
    def session(self, account_id: str, region: str | None = None) -> boto3.Session:
        """A boto3 Session acting as ``account_id`` (AssumeRole into its ``amibot``
        role from the bot account; the bot account itself gets a plain session)."""
        region = region or self.region
        cached = self._sessions.get((account_id, region))
        if cached is not None:
            return cached
        if account_id == BOT_ACCOUNT:
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        else:
            creds = self._creds.get(account_id)
            if creds is None:
                sts = boto3.client(
                    "sts", region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing",
                    endpoint_url=self.endpoint_url,
                )
                creds = sts.assume_role(
                    RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE_NAME}", RoleSessionName="amibot-sandbox"
                )["Credentials"]
                self._creds[account_id] = creds
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
            )
        self._sessions[(account_id, region)] = session
        return session

    def client(self, service: str, account_id: str, region: str | None = None, **kwargs: Any) -> Any:
        """Shorthand for ``session(account_id, region).client(service, **kwargs)``."""
        return self.session(account_id, region).client(service, **kwargs)

    def configure_organization(
        self, organization_id: str | None = None, members: dict[str, str] | None = None, management_account: str | None = None
    ) -> None:
        """Change the Organization (until the next :meth:`reset`)."""
        with _LOCK:
            if organization_id is not None:
                self._state.org.organization_id = organization_id
            if members is not None:
                self._state.org.members = dict(members)
            if management_account is not None:
                self._state.org.management_account = management_account

    @property
    def organization_id(self) -> str:
        """The sandbox Organization's id."""
        return self._state.org.organization_id

    def organization_arn(self) -> str:
        """``arn:aws:organizations::<management>:organization/<org-id>``."""
        org = self._state.org
        return f"arn:aws:organizations::{org.management_account}:organization/{org.organization_id}"

    def ou_arn(self, ou_id: str) -> str:
        """``arn:aws:organizations::<management>:ou/<org-id>/<ou-id>``."""
        org = self._state.org
        return f"arn:aws:organizations::{org.management_account}:ou/{org.organization_id}/{ou_id}"

    # -- seeding -------------------------------------------------------------------
    def create_key(
        self, account_id: str, region: str | None = None, *, alias: str | None = None, policy: str | None = None,
        description: str = "amibot sandbox key",
    ) -> str:
        """A customer-managed KMS key in that account; returns its ARN. ``policy``
        defaults to KMS's default policy (the owning account's root may do all)."""
        region = region or self.region
        with _LOCK:
            backend = _kms_backends()[account_id][region]
            key = backend.create_key(policy, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description, None)
            if alias:
                backend.create_alias(key.id, alias if alias.startswith("alias/") else f"alias/{alias}")
            return key.arn

    def aws_managed_ebs_key(self, account_id: str, region: str | None = None) -> str:
        """The account's AWS-managed ``alias/aws/ebs`` key (``KeyManager: AWS``),
        created on first use as AWS does; returns its ARN."""
        region = region or self.region
        with _LOCK:
            return _key_by_alias(_kms_backends()[account_id][region], "alias/aws/ebs").arn

    def create_image(
        self,
        account_id: str,
        region: str | None = None,
        *,
        name: str = "app-server",
        kms_key_arn: str | None = None,
        tags: dict[str, str] | None = None,
        snapshots: int = 1,
        description: str = "",
        public: bool = False,
    ) -> str:
        """Register an available AMI owned by ``account_id`` with ``snapshots`` EBS
        snapshots, encrypted with ``kms_key_arn`` (key id, alias or ARN; the snapshots
        show the key ARN) or unencrypted when None. ``tags`` go on the image."""
        from moto.ec2.models.amis import Ami
        from moto.ec2.utils import random_ami_id

        region = region or self.region
        with _LOCK:
            backend = _ec2_backends()[account_id][region]
            key_arn = None
            if kms_key_arn:
                hit = _lookup_key(kms_key_arn, account_id, region)
                key_arn = hit[1].arn if hit else kms_key_arn
            image = Ami(backend, random_ami_id(), name=name, description=description, public=public,
                        virtualization_type="hvm", architecture="x86_64")
            backend.amis[image.id] = image
            devices = ["/dev/xvda"] + [f"/dev/sd{c}" for c in "fghijklmnop"]
            _make_snapshots(
                backend,
                image,
                [
                    {"device": devices[i], "size": 8 if i == 0 else 20, "encrypted": key_arn is not None, "kms_key_id": key_arn}
                    for i in range(max(1, snapshots))
                ],
                lambda i: f"Created by CreateImage(i-0sandbox) for {image.id}",
            )
            if tags:
                image.add_tags(tags)
            return image.id

    def network(self, account_id: str, region: str | None = None) -> dict[str, Any]:
        """The account's sandbox VPC with a subnet in each of two AZs (created on first
        use): ``{"vpc_id": ..., "subnets": {az: subnet_id}, "security_group_id": ...}``."""
        region = region or self.region
        ec2 = self.client("ec2", account_id, region)
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:amibot-sandbox", "Values": ["network"]}])["Vpcs"]
        if vpcs:
            vpc_id = vpcs[0]["VpcId"]
            subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
            groups = ec2.describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["app"]}]
            )["SecurityGroups"]
            return {
                "vpc_id": vpc_id,
                "subnets": {s["AvailabilityZone"]: s["SubnetId"] for s in subnets},
                "security_group_id": groups[0]["GroupId"],
            }
        vpc_id = ec2.create_vpc(
            CidrBlock="10.20.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "amibot-sandbox", "Value": "network"}]}],
        )["Vpc"]["VpcId"]
        subnets = {}
        for index, suffix in enumerate("ab"):
            az = f"{region}{suffix}"
            subnets[az] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{index + 1}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(GroupName="app", Description="sandbox app servers", VpcId=vpc_id)["GroupId"]
        return {"vpc_id": vpc_id, "subnets": subnets, "security_group_id": group_id}

    def create_instance(
        self,
        account_id: str,
        region: str | None = None,
        *,
        subnet_id: str | None = None,
        availability_zone: str | None = None,
        tags: dict[str, str] | None = None,
        instance_type: str = "t3.micro",
        image_id: str = DEFAULT_BASE_IMAGE_ID,
        key_name: str | None = "app-key",
        security_group_ids: list[str] | None = None,
        instance_profile: str | None = None,
        kms_key_arn: str | None = None,
    ) -> str:
        """Launch a running instance in the account's sandbox network (first AZ unless
        ``subnet_id``/``availability_zone``), with a key pair, the ``app`` security
        group, optional instance profile (created if missing) and tags; ``kms_key_arn``
        encrypts its root volume. Returns the instance id."""
        region = region or self.region
        net = self.network(account_id, region)
        if subnet_id is None:
            az = availability_zone or sorted(net["subnets"])[0]
            subnet_id = net["subnets"][az]
        ec2 = self.client("ec2", account_id, region)
        params: dict[str, Any] = {
            "ImageId": image_id,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": instance_type,
            "SubnetId": subnet_id,
            "SecurityGroupIds": security_group_ids or [net["security_group_id"]],
        }
        if key_name:
            if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name]}])["KeyPairs"]:
                ec2.create_key_pair(KeyName=key_name)
            params["KeyName"] = key_name
        if instance_profile:
            iam = self.client("iam", account_id, region)
            try:
                iam.get_instance_profile(InstanceProfileName=instance_profile)
            except iam.exceptions.NoSuchEntityException:
                iam.create_instance_profile(InstanceProfileName=instance_profile)
            params["IamInstanceProfile"] = {"Name": instance_profile}
        if tags:
            params["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        if kms_key_arn:
            params["BlockDeviceMappings"] = [
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": kms_key_arn}}
            ]
        return ec2.run_instances(**params)["Instances"][0]["InstanceId"]

    # -- controls ------------------------------------------------------------------
    def hold_pending(self, image_id_or_all: bool | str = True) -> None:
        """``True``: images made from now on by CopyImage/CreateImage stay ``pending``
        until released; ``False``: stop holding new ones (those held stay held);
        an image id: put that image (back) into ``pending`` and hold it."""
        with _LOCK:
            if isinstance(image_id_or_all, bool):
                self._state.hold_all = image_id_or_all
                return
            _, _, _, image = _locate_image(image_id_or_all)
            self._state.pending[image.id] = _Pending(image.id, held=True, started=time.monotonic())
            _set_pending(image)

    def set_copy_duration(self, seconds: float | None) -> None:
        """Make new copies progress over ``seconds`` of wall time (None: at once)."""
        with _LOCK:
            self._state.copy_duration = seconds

    def set_copy_progress(self, image_id: str, percent: int) -> None:
        """Show ``percent`` (0-99; :meth:`complete` finishes) as the ``Progress`` of a
        pending image's snapshots."""
        with _LOCK:
            pending = self._pending(image_id)
            pending.progress = max(0, min(99, int(percent)))
            _, _, _, image = _locate_image(image_id)
            _set_pending(image, pending.progress)

    def advance(self, image_id: str | None = None, percent: int = 25) -> dict[str, str]:
        """Move pending images (one, or all) ``percent`` forward; those reaching 100%
        finish as :meth:`complete` does. Returns image id -> state."""
        with _LOCK:
            out = {}
            ids = [image_id] if image_id else list(self._state.pending)
            for iid in ids:
                pending = self._pending(iid)
                _, _, _, image = _locate_image(iid)
                pending.progress += percent
                if pending.progress >= 100:
                    out[iid] = _resolve(self._state, image)
                else:
                    _set_pending(image, pending.progress)
                    out[iid] = image.state
            return out

    def complete(self, image_id: str) -> str:
        """Finish a pending image: ``available`` with its snapshots ``completed`` at
        100% -- unless the copy's key checks fail now (the caller cannot use the source
        key, the destination key is missing or disabled), in which case it becomes
        ``failed`` as it would in AWS. An image that is not pending is left as it
        is. Returns the final state."""
        with _LOCK:
            _, _, _, image = _locate_image(image_id)
            if image_id not in self._state.pending and image.state != "pending":
                return image.state
            return _resolve(self._state, image)

    def release(self, image_id: str | None = None) -> dict[str, str]:
        """Stop holding: finish one held image, or all pending images and stop holding
        new ones. Returns image id -> final state."""
        with _LOCK:
            if image_id is None:
                self._state.hold_all = False
                ids = list(self._state.pending)
            else:
                ids = [image_id]
            return {iid: self.complete(iid) for iid in ids}

    def fail(self, image_id: str, reason: str = "Copy failed: an internal error occurred.", code: str = "Server.InternalError") -> None:
        """Make an image ``failed`` with ``StateReason`` ``{Code, Message}``."""
        with _LOCK:
            _, _, _, image = _locate_image(image_id)
            self._state.pending.pop(image_id, None)
            _set_failed(image, code, reason)

    def _pending(self, image_id: str) -> _Pending:
        pending = self._state.pending.get(image_id)
        if pending is None:
            raise ValueError(f"{image_id} is not pending")
        return pending

    def pending_images(self) -> list[str]:
        """Ids of images that are pending now."""
        with _LOCK:
            return list(self._state.pending)

    def set_grant_delay(self, seconds: float) -> None:
        """New KMS grants take effect only after ``seconds`` (KMS grants are
        eventually consistent); 0 (the default) means at once."""
        with _LOCK:
            self._state.grant_delay = float(seconds)

    def inject_fault(
        self,
        operation: str,
        code: str = "RequestLimitExceeded",
        *,
        times: int = 1,
        status: int = 503,
        message: str = "Request limit exceeded.",
        account: str | None = None,
    ) -> None:
        """Make the next ``times`` requests of ``operation`` (the API name, e.g.
        "CopyImage", "ModifyImageAttribute", "CreateGrant"), from any account (or only
        ``account``), answer ``code``/``message`` with HTTP ``status``, in the
        service's wire format, so botocore's retry logic handles them as it would
        AWS's."""
        with _LOCK:
            self._state.faults.setdefault(operation, deque()).append(
                _Fault(code=code, status=status, message=message, remaining=times, account=account)
            )

    def clear_faults(self) -> None:
        """Drop every fault not yet delivered."""
        with _LOCK:
            self._state.faults.clear()

    def calls(self, operation: str, account: str | None = None) -> int:
        """How many requests of ``operation`` reached the sandbox (faulted attempts and
        retries included), from any account or from ``account``."""
        with _LOCK:
            if account is None:
                return self._state.calls[operation]
            return self._state.calls[(operation, account)]
