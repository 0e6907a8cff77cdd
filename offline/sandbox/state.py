"""The sandbox's own state and its way into moto's backends.

What the sandbox adds to moto lives here, per started :class:`~offline.sandbox.Sandbox`:
the Organization it models, pending copies and their checks, ClientTokens, injected
faults, request counters and grant creation times; plus the process-wide registers the
patches share (the stack of started sandboxes, assumed-role credentials, moto's original
methods) and the lookups of moto's EC2/KMS backends and images.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3

BOT_ACCOUNT = "123456789012"
"""moto's default account: the bot's own credentials act as this account."""

ROLE_NAME = "amibot"
"""The role amibot's configuration assumes in member accounts (held to the generated
member policy when one is attached with :meth:`Sandbox.attach_role_policy`)."""

ADMIN_ROLE_NAME = "sandbox-admin"
"""The role :meth:`Sandbox.session` assumes: the account's administrator, whom no
identity policy restricts (tests look and set up through it)."""

DEFAULT_BASE_IMAGE_ID = "ami-0abcdef1234567890"
"""The (unregistered) image id :meth:`Sandbox.create_instance` launches by default."""


_LOCK = threading.RLock()
# Sandboxes started and not stopped, most recent last; the patches follow the last one.
_STACK: list["_State"] = []
# Access key id -> (account id, principal ARN) for credentials made by sts.assume_role.
# Kept across moto resets so that sessions handed out earlier keep their account.
_KEY_ACCOUNTS: dict[str, tuple[str, str]] = {}
_ORIGINALS: dict[str, Any] = {}


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
    delay: float = 0.0  # seconds to wait before answering (a slow AWS)


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
    # The sandbox's time (seconds): grant delays, consistency windows and timed copies
    # follow it. Real time by default; tests inject their clock (Sandbox.use_clock),
    # so a window ends when the test moves its clock, whatever the machine's speed.
    clock: Callable[[], float] = time.monotonic
    # Eventual consistency: resources made by the bot are invisible to describes for
    # this many seconds after creation (resource id -> creation time on ``clock``).
    consistency_delay: float = 0.0
    born: dict[str, float] = field(default_factory=dict)
    # Launch/createVolume permission added: (resource id, grantee account) -> time on
    # ``clock``; the grantee does not see it for ``permission_delay`` (None: the
    # consistency delay). Status checks: instance id -> time first seen running; they
    # answer ``initializing`` for ``status_delay`` (None: the consistency delay), then
    # ``ok`` -- or ``impaired`` for the instances in ``impaired``.
    permission_delay: float | None = None
    granted: dict[tuple[str, str], float] = field(default_factory=dict)
    status_delay: float | None = None
    status_started: dict[str, float] = field(default_factory=dict)
    impaired: set[str] = field(default_factory=set)
    # IAM identity policies are evaluated only while this is on (see ``identity``).
    identity_enforced: bool = False
    bot_policy_statements: list | None = None
    # Calls refused by an identity policy: (operation, principal, IAM action, resource).
    iam_denials: list = field(default_factory=list)

    def clear(self) -> None:
        self.hold_all = False
        self.grant_delay = 0.0
        self.pending.clear()
        self.checks.clear()
        self.tokens.clear()
        self.faults.clear()
        self.calls.clear()
        self.grant_created.clear()
        self.born.clear()
        self.permission_delay = None
        self.granted.clear()
        self.status_delay = None
        self.status_started.clear()
        self.impaired.clear()
        self.identity_enforced = False
        self.bot_policy_statements = None
        self.iam_denials.clear()

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
