"""Every change amibot makes in AWS, one small class per action.

Each action is registered by name, declares the IAM permissions it uses (the IAM
policies are generated from these declarations, see ``aws.iam``), and has
``execute`` (idempotent: safe to run again after a crash) and, where the change can
be taken back, ``undo``, which removes exactly what ``execute`` added and nothing a
person had before. In the manner of Cloud Custodian's ``c7n`` actions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from aws.actions.holdings import Holdings, OwnHoldings
from aws.actions.retry import RetryPolicy
from aws.partitions import partition_for
from aws.sessions import AwsSessions

# Exactly the operations the target account needs on a shared AMI's key
# (design.md §1.3): no Encrypt, no RetireGrant, nothing broader.
SHARE_GRANT_OPERATIONS = ("DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom")


def account_root(account_id: str, region: str) -> str:
    """The principal that stands for a whole account in KMS grants and policies,
    in the partition of ``region``."""
    return f"arn:{partition_for(region)}:iam::{account_id}:root"


def grant_name(request_uid: str, grantee_account: str) -> str:
    """The deterministic KMS grant name for one request and grantee: a retry finds
    the grant with ListGrants instead of creating a second one."""
    return f"amibot-{request_uid}-{grantee_account}"


class StepWaiting(Exception):
    """Raised by an action whose work is under way in AWS but not finished (a copy,
    an image being created). The worker keeps the step pending, records ``result``
    (e.g. the new image id, so a restart continues the same copy), shows
    ``progress`` and runs the step again after ``retry_after`` seconds."""

    def __init__(self, progress: str | None = None, *, retry_after: float = 30.0, result: dict[str, Any] | None = None):
        super().__init__(progress or "in progress")
        self.progress = progress
        self.retry_after = retry_after
        self.result = result or {}


class Kept(Exception):
    """Raised by ``undo`` when it deliberately leaves something in place because a
    user may need it (a launched instance, a finished image); the message says what
    remains, and it is reported as such."""


@dataclass
class StepContext:
    """What an action needs to run: clients for the accounts, the request's ids,
    what the step recorded on an earlier attempt, a checkpoint callback, and a
    sleep that tests can shorten."""

    sessions: AwsSessions
    request_uid: str
    session_tag: str  # names the AssumeRole session: CloudTrail shows the request
    checkpoint: Callable[[dict[str, Any]], None] = lambda result: None
    sleep: Callable[[float], None] = time.sleep
    grant_wait_seconds: float = 300.0  # how long a new grant may take to spread
    # How long "not found" on something this request just created means "not visible
    # yet" (AWS is eventually consistent), see aws.actions.visibility.
    consistency_window_seconds: float = 300.0
    log: Callable[[str], None] = lambda text: None
    previous: dict[str, Any] = field(default_factory=dict)  # this step's result saved by an earlier attempt
    request_id: str = ""  # the display id, for tags and names people read
    requester: str = ""
    approvers: list[str] = field(default_factory=list)
    image_status: Any = None  # aws.actions.images.ImageStatusCache shared by all requests (batched polling)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # results of this request's earlier steps, by seq
    # This request's steps by seq: {"action", "account_id", "region", "params", "result", "state"}
    # (e.g. for a step that removes what earlier temporary steps added).
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Access other requests may rely on too (aws.actions.holdings): the worker's is
    # backed by the store; the default removes only what this request created.
    holdings: Holdings = field(default_factory=OwnHoldings)

    def client(self, service: str, account_id: str, region: str) -> Any:
        return self.sessions.client(service, account_id, region, self.session_tag)


class Action:
    """Base class of an AWS action."""

    name: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]  # IAM actions used by execute and undo
    undoable: ClassVar[bool] = True
    retry: ClassVar[RetryPolicy] = RetryPolicy()  # waits spread by its jitter; a failed removal backs off

    def execute(self, ctx: StepContext, account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def undo(self, ctx: StepContext, account_id: str, region: str, params: dict[str, Any], result: dict[str, Any]) -> str | None:
        """Take back what ``execute`` did; returns a sentence saying what was undone."""
        return None


ACTIONS: dict[str, Action] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: add an action to the registry under its name."""
    if not getattr(cls, "permissions", None):
        raise TypeError(f"action {cls.__name__} declares no IAM permissions")
    ACTIONS[cls.name] = cls()
    return cls


def get_action(name: str) -> Action:
    return ACTIONS[name]




# Importing the modules registers their actions.
from aws.actions import images as _images  # noqa: E402,F401
from aws.actions import share as _share  # noqa: E402,F401
from aws.actions import keypolicy as _keypolicy  # noqa: E402,F401
from aws.actions import autoscaling as _autoscaling  # noqa: E402,F401
from aws.actions import migrate as _migrate  # noqa: E402,F401
from aws.actions import verify as _verify  # noqa: E402,F401
from aws.actions import copy as _copy  # noqa: E402,F401
from aws.actions.inspect import PREFLIGHT_PERMISSIONS, ImageFacts, KeyFacts, inspect_image  # noqa: E402,F401
from aws.actions import launchroles as _launchroles  # noqa: E402,F401
from aws.actions import tags as _tags  # noqa: E402,F401
from aws.actions import launch_template as _launch_template  # noqa: E402,F401
from aws.actions import distribute as _distribute  # noqa: E402,F401
