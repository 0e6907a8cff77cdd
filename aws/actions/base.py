"""The base of every action: its typed parameters, how it runs and is undone, how it
describes its own planned step, and the registry the action modules add to.

The engine calls ``execute(ctx, account_id, region, params: dict)`` and
``undo(ctx, account_id, region, params: dict, result: dict)`` with the params dict
stored in the plan; the base class turns that dict into the action's frozen
``Params`` dataclass and calls the typed ``run`` / ``revert``. ``plan`` builds the
``PlannedStep`` an operation puts in its plan, with the action's own description.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Mapping

from aws.actions.holdings import Holdings, OwnHoldings
from aws.actions.plan import Account, PlannedStep
from aws.actions.retry import RetryPolicy
from aws.partitions import partition_for
from aws.sessions import AwsSessions

# Exactly the operations the target account needs on a shared AMI's key
# (design.md §1.3): no Encrypt, no RetireGrant, nothing broader.
SHARE_GRANT_OPERATIONS = ("DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom")

# Keys the plan adds to any step's params for itself, not for the action (a
# distribution's target: ``unit``); the typed params leave them out.
PLAN_KEYS = frozenset({"unit"})


def account_root(account_id: str, region: str) -> str:
    """The principal that stands for a whole account in KMS grants and policies,
    in the partition of ``region``."""
    return f"arn:{partition_for(region)}:iam::{account_id}:root"


def grant_name(request_uid: str, grantee_account: str) -> str:
    """The deterministic KMS grant name for one request and grantee: a retry finds
    the grant with ListGrants instead of creating a second one."""
    return f"amibot-{request_uid}-{grantee_account}"


def image_of(params: Any, results_by_seq: Mapping[int, Mapping[str, Any]]) -> str | None:
    """Which image a step makes or uses: its ``image_id``, or the ``image_id`` in the
    result of the step ``image_from_step`` (a copy, an image from an instance).
    ``params`` is a step's params dict or an action's typed params; None while that
    earlier step has not said yet."""
    get = params.get if isinstance(params, Mapping) else (lambda key: getattr(params, key, None))
    if get("image_id"):
        return get("image_id")
    seq = get("image_from_step")
    if seq is None:
        return None
    return (results_by_seq.get(int(seq)) or {}).get("image_id")


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
    # The time the window is measured in (the bot's clock: tests move it forward).
    clock: Callable[[], float] = time.time
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


@dataclass(frozen=True)
class ActionParams:
    """Base of an action's typed parameters: a frozen, keyword-only dataclass of
    JSON values, stored in the plan as the dict ``to_dict`` gives."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ActionParams":
        """The typed params of a stored step: exactly the keys the plans hold (a key
        absent takes its default; the plan's own keys, ``PLAN_KEYS``, are left out)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - PLAN_KEYS
        if unknown:
            raise TypeError(f"{cls.__qualname__} has no parameter {', '.join(sorted(unknown))}")
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        """The dict stored in the plan (a copy: changing it leaves the params as they
        are); an optional value left unset (None) is left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[f.name] = copy.deepcopy(value)
        return out


class Action:
    """Base class of an AWS action."""

    name: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]  # IAM actions used by execute and undo
    undoable: ClassVar[bool] = True
    retry: ClassVar[RetryPolicy] = RetryPolicy()  # waits spread by its jitter; a failed removal backs off
    Params: ClassVar[type[ActionParams]] = ActionParams

    def execute(self, ctx: StepContext, account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run the step with the params dict stored in the plan."""
        return self.run(ctx, account_id, region, self.typed(params))

    def undo(self, ctx: StepContext, account_id: str, region: str, params: dict[str, Any], result: dict[str, Any]) -> str | None:
        """Take back what ``execute`` did; returns a sentence saying what was undone."""
        return self.revert(ctx, account_id, region, self.typed(params), result)

    def typed(self, params: Mapping[str, Any] | ActionParams) -> Any:
        """This action's typed params, from a stored params dict (or already typed)."""
        return params if isinstance(params, self.Params) else self.Params.from_dict(params)

    def run(self, ctx: StepContext, account_id: str, region: str, params: Any) -> dict[str, Any]:
        """``execute`` with the typed params."""
        raise NotImplementedError

    def revert(self, ctx: StepContext, account_id: str, region: str, params: Any, result: dict[str, Any]) -> str | None:
        """``undo`` with the typed params."""
        return None

    def holdings(self, account_id: str, region: str, params: Any) -> list[str]:
        """The access this step holds for its request (``aws.actions.holdings`` names):
        another request's removal keeps it while this request relies on it. None
        for most actions."""
        return []

    @classmethod
    def plan(cls, account: Account, region: str, params: ActionParams, **context: Any) -> PlannedStep:
        """The planned step of this action in ``account`` and ``region``; ``context``
        is what the description needs beyond the params (see each ``describe``)."""
        if not isinstance(params, cls.Params):
            raise TypeError(f"{cls.name} takes {cls.Params.__qualname__}, not {type(params).__qualname__}")
        return PlannedStep(
            action=cls.name,
            account_alias=account.alias,
            account_id=account.id,
            region=region,
            params=params.to_dict(),
            description=cls.describe(params, account=account, region=region, **context),
        )

    @classmethod
    def describe(cls, params: Any, *, account: Account, region: str, **context: Any) -> str:
        """The sentence the card and the exact-changes list show for the step."""
        raise NotImplementedError(f"{cls.name} does not describe its planned step")


ACTIONS: dict[str, Action] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: add an action to the registry under its name."""
    if not getattr(cls, "permissions", None):
        raise TypeError(f"action {cls.__name__} declares no IAM permissions")
    ACTIONS[cls.name] = cls()
    return cls


def get_action(name: str) -> Action:
    """The registered action called ``name``."""
    return ACTIONS[name]
