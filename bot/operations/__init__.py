"""Operations: from a parsed command to a prepared request (preflight facts, the
approving accounts and the exact plan), one module per operation.

The services persist what ``prepare`` returns and ask the owners; nothing here
changes AWS (the preflight only reads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from aws.actions import ImageFacts, inspect_image
from aws.errors import is_aws_error, translate
from aws.sessions import AwsSessions, PreflightTimeout
from bot import slacktext
from bot.config import AccountConfig, Config
from bot.errors import AmibotError, PreflightError
from bot.requests import PlannedStep, Request


@dataclass
class Prepared:
    """A request ready to be stored and shown to the approvers."""

    kind: str
    params: dict[str, Any]
    checked: list[str]  # what the preflight checked, shown to the approver
    approver_accounts: list[str]
    steps: list[PlannedStep]
    after: list[str] = field(default_factory=list)  # notes shown under the plan
    extra_facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanningContext:
    """What an operation needs to prepare a request."""

    config: Config
    sessions: AwsSessions
    uid: str  # the request's random id: ClientTokens and grant names derive from it
    requester: str
    # Refuses a request nobody could approve; operations call it before any AWS call.
    check_approvers: Callable[[list[str]], None] = lambda accounts: None
    # Earlier requests that may have changed AWS (running, done, active, failed), with
    # their steps: unshare finds what amibot added, and grants by their recorded ids.
    find_requests: Callable[[], list[Request]] = lambda: []

    def region_of(self, region: str | None) -> str:
        return region or self.config.bot.default_region

    def preflight_image(self, source: AccountConfig, region: str, image_id: str) -> ImageFacts:
        """Inspect the AMI as its source account sees it; AWS errors become a
        PreflightError in plain words."""
        return preflight_read(
            f"Could not read {image_id} in `{source.alias}` ({source.id}) {region}",
            lambda: inspect_image(self.sessions, source.id, region, image_id, tag=f"preflight-{self.uid}"),
        )


T = TypeVar("T")


def preflight_read(problem: str, read: Callable[[], T], *, fix: str | None = None, own_fix: bool = False) -> T:
    """Run a read-only preflight call. An AWS error becomes a PreflightError:
    ``problem``, then the error's cause in plain words and AWS's own words; the fix
    known for the error, else ``fix`` (``own_fix``: always ``fix``)."""
    try:
        return read()
    except PreflightTimeout as error:
        raise PreflightError(f"{problem}: {error}", fix="AWS is degraded or throttling: try again in a few minutes (the AWS Health Dashboard shows incidents).") from error
    except Exception as error:
        if not is_aws_error(error):
            raise
        failure = translate(error)
        # AWS's words (and the known fixes' <placeholders>) are shown, not parsed, by Slack.
        said = f"AWS said `{slacktext.escape(failure.code)}`: {slacktext.escape(failure.aws_message)}"
        detail = f"{slacktext.escape(failure.cause)} ({said})" if failure.cause else said
        chosen = fix if (own_fix and fix) or not failure.fix else slacktext.escape(failure.fix)
        raise PreflightError(f"{problem}: {detail}", fix=chosen or said) from error


def check_source_image(facts: ImageFacts, source: AccountConfig, region: str, *, verb: str, done: str, aws_managed_ok: bool = False) -> None:
    """Refuse, before anyone is asked, a source AMI that AWS would refuse to
    ``verb`` (share, copy): not the source's own, not available, a disabled key, or
    (unless ``aws_managed_ok``) snapshots under the AWS-managed ``aws/ebs`` key, which
    no other account can ever use."""
    where = f"`{source.alias}` ({source.id}) in {region}"
    if facts.owner_id != source.id:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}, not by {where}; only the owner can {verb} it.",
            fix=f"Name the owning account after `from` (its owners approve), or copy the AMI into this account first.",
        )
    if facts.state != "available":
        raise PreflightError(
            f"{facts.image_id} is `{facts.state}`, not `available`: AWS can {verb} only available images.",
            fix="Wait until the image is available (a new image or copy takes minutes), then ask again.",
        )
    unusable = [k for k in facts.keys if k.state != "Enabled"]
    if unusable:
        raise PreflightError(
            f"The key {unusable[0].arn} of {facts.image_id} is `{unusable[0].state}`: AWS could not read the snapshots.",
            fix="Enable the key (or cancel its deletion), then ask again.",
        )
    aws_managed = [k for k in facts.keys if k.manager == "AWS"]
    if aws_managed and not aws_managed_ok:
        raise PreflightError(
            f"{facts.image_id} is encrypted with the AWS-managed key `aws/ebs` ({aws_managed[0].arn}), "
            f"which no other account can use, so AWS does not let it be {done} with another account.",
            fix=(
                f"Re-encrypt it with a customer-managed key inside `{source.alias}`: "
                f"`/ami copy {facts.image_id} from {source.alias}:{region} to {source.alias}:{region} kms <your-cmk>`, "
                f"then {verb} that copy."
            ),
        )


Preparer = Callable[[PlanningContext, Any], Prepared]
_PREPARERS: dict[type, Preparer] = {}


def preparer(command_type: type) -> Callable[[Preparer], Preparer]:
    """Register the function that prepares requests of one command type."""

    def decorate(fn: Preparer) -> Preparer:
        _PREPARERS[command_type] = fn
        return fn

    return decorate


def prepare(ctx: PlanningContext, command: Any) -> Prepared:
    """Prepare a request for any operation command."""
    fn = _PREPARERS.get(type(command))
    if fn is None:
        verb = type(command).__name__.replace("Command", "").lower()
        raise AmibotError(f"`{verb}` is not available yet.", fix="`/ami help` lists what works.")
    return fn(ctx, command)


def is_operation(command: Any) -> bool:
    return type(command) in _PREPARERS


# States in which a request may have done steps still in force in AWS (a failed or
# cancelled request whose undo failed, too); the done steps themselves tell.
CHANGED_AWS_STATES = ("running", "succeeded", "failed", "active", "cancelled", "revoked", "partial")


def requests_that_changed_aws(store: Any) -> list[Request]:
    """For ``PlanningContext.find_requests``: every request whose done steps may
    still be in force in AWS."""
    return store.find(states=CHANGED_AWS_STATES, limit=1_000_000)


# After a request succeeds: what its kind must settle in the store (e.g. an unshare
# marks the earlier shares' steps it removed). Called by the worker with
# (request, store, notifier); returns lines for the final reply.
AfterSuccess = Callable[[Request, Any, Any], list[str]]
_AFTER_SUCCESS: dict[str, list[AfterSuccess]] = {}


def after_success(kind: str) -> Callable[[AfterSuccess], AfterSuccess]:
    """Register what to settle in the store when a request of ``kind`` succeeds
    (several hooks per kind run in registration order)."""

    def decorate(fn: AfterSuccess) -> AfterSuccess:
        _AFTER_SUCCESS.setdefault(kind, []).append(fn)
        return fn

    return decorate


def settle_after_success(request: Request, store: Any, lifecycle: Any) -> list[str]:
    """Run the after-success hooks of the request's kind, if any. A hook's failure is
    logged, never turns a finished request into a failed one."""
    lines: list[str] = []
    for fn in _AFTER_SUCCESS.get(request.kind, []):
        try:
            lines += fn(request, store, lifecycle)
        except Exception:
            logging.getLogger("amibot.operations").exception("after-success hook of %s failed", request.display_id)
    return lines


from bot.operations import share as _share  # noqa: E402,F401  (registers)
from bot.operations import unshare as _unshare  # noqa: E402,F401  (registers)
from bot.operations import migrate as _migrate  # noqa: E402,F401  (registers)
from bot.operations import copy as _copy  # noqa: E402,F401  (registers)
from bot.operations import launchroles as _launchroles  # noqa: E402,F401  (registers)
from bot.operations import tags as _tags  # noqa: E402,F401  (registers)
from bot.operations import distribute as _distribute  # noqa: E402,F401  (registers)
