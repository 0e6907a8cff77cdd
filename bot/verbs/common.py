"""What every verb's preflight shares: the planning context and its result
(:class:`Prepared`), the read-only AWS call that turns errors into a refusal
(:func:`preflight_read`), and the shared checks — approvers, targets, the source
image, the required tags, key labels — plus the launch-role notes a share or copy
ends with.

Nothing here changes AWS (the preflight only reads).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from aws.actions import ImageFacts, inspect_image
from aws.actions.launchroles import render_required_statement
from aws.reads import ParallelReads, Pending
from aws.errors import is_aws_error, translate
from aws.sessions import AwsSessions, PreflightTimeout
from bot import slacktext
from bot.config import AccountConfig, Config
from bot.errors import PreflightError
from bot.requests import STEP_DONE, PlannedStep, Request

T = TypeVar("T")


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
    # The preflight's independent reads run here, in parallel (aws.reads); closed when
    # the preflight ends (bot.verbs.registry.prepare).
    reads: ParallelReads = field(default_factory=ParallelReads)
    # Account-level facts (aws.account_facts): from the minute-long cache unless
    # ``fresh``; ``cached_facts_used`` says whether any answer came from it.
    fresh: bool = False
    cached_facts_used: bool = False

    @property
    def tag(self) -> str:
        """The preflight's session tag: its AssumeRole sessions are named after the request."""
        return f"preflight-{self.uid}"

    def account_fact(self, fact: str, account_id: str, region: str, read: Callable[[], T]) -> T:
        """An account-level fact (``aws.account_facts``), cached for a minute."""
        value, cached = self.sessions.account_facts.get(fact, account_id, region, read, fresh=self.fresh)
        if cached:
            self.cached_facts_used = True
        return value

    def start_sessions(self, account_ids: list[str]) -> None:
        """Assume the preflight's role sessions in these accounts now, in parallel
        (no call of its own: the session is the one a later read would assume; it
        only starts earlier, beside the other reads)."""
        for account_id in dict.fromkeys(account_ids):
            self.reads.start(f"session {account_id}", lambda account_id=account_id: self.sessions.session(account_id, self.tag))

    def start_image(self, source: AccountConfig, region: str, image_id: str,
                    on_image: Callable[[dict[str, Any]], None] | None = None) -> Pending[ImageFacts]:
        """Start inspecting the AMI (:meth:`preflight_image` takes the result);
        ``on_image`` is told DescribeImages' answer as soon as it comes."""
        return self.reads.start("image", lambda: inspect_image(self.sessions, source.id, region, image_id, tag=self.tag,
                                                               reads=self.reads, on_image=on_image))

    def region_of(self, region: str | None) -> str:
        """The region typed, else the configured default."""
        return region or self.config.bot.default_region

    def preflight_image(self, source: AccountConfig, region: str, image_id: str, started: Pending[ImageFacts] | None = None) -> ImageFacts:
        """Inspect the AMI as its source account sees it (or take the inspection
        ``started`` earlier); AWS errors become a PreflightError in plain words."""
        pending = started or self.start_image(source, region, image_id)
        return preflight_read(f"Could not read {image_id} in `{source.alias}` ({source.id}) {region}", pending.result)


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
            fix="Name the owning account after `from` (its owners approve), or copy the AMI into this account first.",
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


def check_required_tags(ctx: PlanningContext, facts: ImageFacts, source: AccountConfig, region: str, verb: str) -> None:
    """Refuse an AMI that lacks a tag of ``bot.required_tags`` (empty values count as
    missing), with the exact commands that add them."""
    required = ctx.config.bot.required_tags
    missing = [key for key in required if not (facts.tags.get(key) or "").strip()]
    if not missing:
        return
    resources = " ".join([facts.image_id, *facts.snapshot_ids])
    cli_tags = " ".join(f"Key={shlex.quote(key)},Value=…" for key in missing)
    slash = " ".join(f"{key}=…" for key in missing)
    raise PreflightError(
        f"{facts.image_id} lacks the tag{'s' if len(missing) > 1 else ''} {', '.join(f'`{k}`' for k in missing)} "
        f"that this workspace requires before an AMI is {verb} (`bot.required_tags` = {', '.join(required)}).",
        fix=(
            f"Tag it, then ask again: `aws ec2 create-tags --region {region} --resources {resources} --tags {cli_tags}` "
            f"(as `{source.alias}`), or `/ami tag {facts.image_id} from {source.alias}:{region} {slash}` (approved by `{source.alias}`'s owners)."
        ),
    )


def approver_accounts(kind: str, source: AccountConfig, target: AccountConfig | None = None) -> list[str]:
    """Aliases of the accounts whose owners must approve (design.md §2)."""
    accounts = [source.alias]
    if kind == "copy" and target is not None and target.alias != source.alias:
        accounts.append(target.alias)
    return accounts


def resolve_targets(config: Config, refs: tuple[str, ...], source: AccountConfig) -> list[AccountConfig]:
    """Configured accounts for the target refs; refuses the source itself and
    accounts that do not accept shares."""
    targets = []
    for ref in refs:
        target = config.account(ref)
        if target.id == source.id:
            raise PreflightError(f"`{ref}` is the source account itself.", fix="Name other accounts after `to`.")
        if not target.accept_shares:
            raise PreflightError(
                f"Account `{target.alias}` is configured not to receive shares (accept_shares = false).",
                fix="Ask its owners to change the setting, or pick another account.",
            )
        targets.append(target)
    return targets


def facts_for_message(facts: ImageFacts) -> dict[str, Any]:
    """The preflight facts in a JSON-friendly form, stored with the request."""
    return asdict(facts)


def key_label(key: Any) -> str:
    """A key as the plan names it: its first alias and its ARN, or the ARN alone."""
    alias = next(iter(key.aliases), None)
    return f"{alias} ({key.arn})" if alias else key.arn


# States in which a request may have done steps still in force in AWS (a failed or
# cancelled request whose undo failed, too); the done steps themselves tell.
CHANGED_AWS_STATES = ("running", "succeeded", "failed", "active", "cancelled", "revoked", "partial")


def requests_that_changed_aws(store: Any) -> list[Request]:
    """For ``PlanningContext.find_requests``: every request whose done steps may
    still be in force in AWS."""
    return store.find(states=CHANGED_AWS_STATES, limit=1_000_000)


def statement_pointer(request: Any, who: str) -> str:
    """The final-message line in place of the statement itself (results first): the
    policy is one click away (*View IAM statement*) and in ``/ami status``."""
    return (f"Roles in {who} that launch it need IAM allowing the key too (the grant or key-policy statement is only the key's side): "
            f"*View IAM statement* shows the policy to attach (also in `/ami status {request.display_id}`).")


def statement_text(key_arns: list[str], region: str, who: str) -> str:
    """The statement modal's and ``/ami status``'s text: the IAM policy ``who`` needs, in a code block."""
    return statement_note(key_arns, region, who)


def statement_note(key_arns: list[str], region: str, who: str) -> str:
    """The final-message lines: the IAM policy ``who`` needs, in a code block."""
    return (
        f"Roles in {who} that launch it need IAM allowing the key too (the grant or key-policy statement is only "
        "the key's side). Attach this policy to them:\n"
        f"```{slacktext.escape(render_required_statement(key_arns, region))}```"
    )


def verified_launch_notes(request: Any) -> list[str]:
    """What the launch-role checks found after the change (their final notes)."""
    return [
        slacktext.escape(step.result["final_note"])
        for step in request.steps
        if step.action == "verify.launch_roles" and step.state == STEP_DONE and step.result.get("final_note")
    ]
