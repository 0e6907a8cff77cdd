"""Use cases: what a slash command or a click asks of the domain.

Handlers call these and render what they return; nothing here knows Bolt. Slow work
(AWS preflight, execution) goes to the bot's own worker so Slack gets its answer
within 3 seconds.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Callable, Protocol

from aws.actions import ImageFacts, inspect_image
from aws.errors import is_aws_error, translate
from aws.sessions import AwsSessions
from bot import grammar, messages, plans
from bot.config import AccountConfig, Config
from bot.errors import AlreadyDecidedError, AmibotError, NobodyCanApproveError, NotAnApproverError, NotAllowedError, PreflightError
from bot.notifier import Notifier
from bot.requests import (
    APPROVED,
    CANCELLED,
    DENIED,
    EXPIRED,
    PENDING_APPROVAL,
    RUNNING,
    STATE_LABELS,
    Request,
    parse_display_id,
)
from bot.store import Store
from bot.worker import PlanRunner, Worker

log = logging.getLogger("amibot.services")


class Directory(Protocol):
    """Who is in a Slack user group."""

    def group_members(self, group_id: str) -> list[str]: ...


class RequestService:
    """The bot's use cases."""

    def __init__(self, config: Config, store: Store, sessions: AwsSessions, notifier: Notifier, worker: Worker,
                 runner: PlanRunner, directory: Directory, clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.sessions = sessions
        self.notifier = notifier
        self.worker = worker
        self.runner = runner
        self.directory = directory
        self.clock = clock

    # -- slash commands ----------------------------------------------------------------

    def handle_command(self, text: str, *, user: str, channel: str, response_url: str | None) -> str:
        """Answer a slash command. Returns the immediate ephemeral answer; requests
        that need AWS are handed to the worker and answered in the channel."""
        command = grammar.parse_command(text)
        if isinstance(command, (grammar.HelpCommand, grammar.EmptyCommand)):
            return "*amibot* — AMI operations with owner approval.\n```" + grammar.USAGE + "```"
        if isinstance(command, grammar.StatusCommand):
            return messages.status_text(self.store.get(self._number(command.request_id)))
        if isinstance(command, grammar.ListCommand):
            return self._list(command.scope, user)
        if isinstance(command, grammar.CancelCommand):
            return self.cancel(self._number(command.request_id), user)
        if isinstance(command, grammar.ShareCommand):
            self.worker.submit(self.submit_share, command, user=user, channel=channel, text=text, response_url=response_url)
            return f"Checking `{_clean(text)}` … the plan and the approval request will appear in this channel."
        raise AmibotError(f"`{type(command).__name__.replace('Command', '').lower()}` is not available yet.", fix="`/ami help` lists what works.")

    def _number(self, request_id: str) -> int:
        number = parse_display_id(request_id)
        if number is None:
            raise AmibotError(f"`{request_id}` is not a request id.", fix="Request ids look like `R-17`.")
        return number

    def _list(self, scope: str, user: str) -> str:
        if scope == "pending":
            found = self.store.find(states=(PENDING_APPROVAL,))
        elif scope == "mine":
            found = self.store.find(requester=user)
        elif scope == "active":
            found = self.store.find(states=(APPROVED, RUNNING, "active"))
        else:
            found = self.store.find()
        return messages.list_text(found, scope)

    # -- submitting ------------------------------------------------------------------------

    def submit_share(self, command: grammar.ShareCommand, *, user: str, channel: str, text: str, response_url: str | None) -> Request | None:
        """Preflight a share and, if it passes, ask the owners. Failures go back to the
        requester (ephemeral) and create nothing."""
        try:
            return self._submit_share(command, user=user, channel=channel, text=text, response_url=response_url)
        except Exception as error:  # error_text logs the unexpected ones with an id
            if response_url:
                self.notifier.respond(response_url, ":no_entry: " + messages.error_text(error))
            return None

    def _submit_share(self, command: grammar.ShareCommand, *, user: str, channel: str, text: str, response_url: str | None) -> Request:
        source = self.config.account(command.source.account)
        region = command.source.region or self.config.bot.default_region
        organization_arn = ou_arn = None
        if command.organization or command.ou_id:
            raise AmibotError("Sharing with an Organization or OU is not available yet.", fix="Name the accounts after `to`.")
        targets = plans.resolve_targets(self.config, command.targets, source)
        approvers = plans.approver_accounts("share", source)
        self._check_someone_can_approve(approvers, user)
        facts = self._preflight_image(source, region, command.image_id)
        plans.check_shareable(facts, source, region)
        uid = secrets.token_hex(8)  # ClientTokens and grant names derive from this, never from R-n
        steps = plans.share_steps(
            request_uid=uid, facts=facts, source=source, region=region, targets=targets,
            allow_copy=command.allow_copy, organization_arn=organization_arn, ou_arn=ou_arn,
        )
        checked = self._checked_lines(facts, source, region, targets)
        after = []
        if command.duration:
            after.append(f"At expiry ({_duration(command.duration.total_seconds())} after completion) all of the above is removed automatically; no second approval.")
        if not command.allow_copy:
            after.append("No snapshot permission: the targets can launch the AMI but not copy it (add `allow-copy` to let them).")
        request = self.store.create_request(
            kind="share",
            uid=uid,
            requester=user,
            channel=channel,
            command_text=_clean(text),
            params={"response_url": response_url, "image_id": command.image_id, "source": source.alias, "region": region,
                    "targets": [t.alias for t in targets], "allow_copy": command.allow_copy,
                    "duration_seconds": command.duration.total_seconds() if command.duration else None},
            facts={"checked": checked, "after": after, "image": plans.facts_for_message(facts)},
            approver_accounts=approvers,
            steps=steps,
            ttl_seconds=self.config.bot.approval_ttl_hours * 3600,
            state=PENDING_APPROVAL,
        )
        self.notifier.post_root(request.id)
        return request

    def _preflight_image(self, source: AccountConfig, region: str, image_id: str) -> ImageFacts:
        try:
            return inspect_image(self.sessions, source.id, region, image_id, tag=f"preflight-{source.alias}")
        except Exception as error:
            if is_aws_error(error):
                failure = translate(error)
                raise PreflightError(f"Could not read {image_id} in `{source.alias}` ({source.id}) {region}: {failure.cause or failure.aws_message}",
                                     fix=failure.fix or f"AWS said `{failure.code}`: {failure.aws_message}") from error
            raise

    def _checked_lines(self, facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig]) -> list[str]:
        lines = [f"{facts.image_id} `{facts.name}` is `{facts.state}` in {region}, owned by `{source.alias}` ({facts.owner_id})"]
        for key in facts.keys:
            alias = f" ({', '.join(key.aliases)})" if key.aliases else ""
            lines.append(f"Snapshots encrypted with a customer-managed key{alias}, {key.state}: {key.arn}")
        if facts.unencrypted_snapshots:
            lines.append(f"Unencrypted snapshots: {', '.join(facts.unencrypted_snapshots)} (no key to share)")
        lines.append("Targets configured and accepting shares: " + ", ".join(f"`{t.alias}` ({t.id})" for t in targets))
        lines.append("Public: " + ("*the image is already public* (amibot does not change that)" if facts.public else "no, and no step makes anything public"))
        return lines

    def _check_someone_can_approve(self, accounts: list[str], requester: str) -> None:
        for alias in accounts:
            account = self.config.account(alias)
            possible = self._owners(account) - ({requester} if not account.allow_self_approval else set())
            if not possible:
                if requester in self._owners(account):
                    raise NobodyCanApproveError(
                        f"Nobody but you could approve changes to `{alias}`, and you cannot approve your own request.",
                        fix=f"Add another owner to `accounts.{alias}.owners`, or set `allow_self_approval = true` for it.",
                    )
                raise NobodyCanApproveError(
                    f"Account `{alias}` has no owners, so nobody could approve this request.",
                    fix=f"Add Slack user or group ids to `accounts.{alias}.owners` in the config.",
                )

    def _owners(self, account: AccountConfig) -> set[str]:
        users: set[str] = set()
        for owner in account.owners:
            if owner.startswith("S"):
                users.update(self.directory.group_members(owner))
            else:
                users.add(owner)
        return users

    def owner_ids(self, alias: str) -> list[str]:
        """The configured owner ids (users and groups) of an account, for display."""
        return list(self.config.account(alias).owners)

    # -- deciding --------------------------------------------------------------------------

    def decide(self, request_id: str, user: str, approve: bool) -> str | None:
        """An Approve or Deny click. Returns an ephemeral note for the clicker, or None.

        Authorisation: only owners of an account still waiting for approval decide,
        and never for their own request unless the account allows self-approval."""
        number = self._number(request_id)
        request = self.store.get(number)
        if request.state != PENDING_APPROVAL:
            raise AlreadyDecidedError(self._decided_by(request))
        eligible = [a for a in request.approver_accounts if a not in request.approvals and self._may_approve(a, user, request)]
        if not eligible:
            raise NotAnApproverError(self._why_not(request, user))
        if not approve:
            if self.store.transition(number, PENDING_APPROVAL, DENIED, user, f"denied for {', '.join(eligible)}"):
                self.notifier.reply(number, f":no_entry: {messages.mention(request.requester)} {request.display_id} was denied by {messages.mention(user)}. Nothing was changed.", broadcast=True, dedupe=f"final:{number}")
                self.notifier.update_root(number)
                return None
            raise AlreadyDecidedError(self._decided_by(self.store.get(number)))
        recorded = self.store.record_approvals(number, eligible, user)
        request = self.store.get(number)
        if not recorded:
            raise AlreadyDecidedError(self._decided_by(request))
        if all(a in request.approvals for a in request.approver_accounts):
            if self.store.transition(number, PENDING_APPROVAL, APPROVED, user, "all accounts approved"):
                self.notifier.reply(number, f":white_check_mark: {request.display_id} approved by {messages.mention(user)} for {', '.join(f'`{a}`' for a in recorded)}. Starting.", dedupe=f"approved:{number}")
                self.notifier.update_root(number)
                self.worker.submit(self.runner.run, number)
                return None
            raise AlreadyDecidedError(self._decided_by(self.store.get(number)))
        self.notifier.reply(number, f"{request.display_id}: {messages.mention(user)} approved for {', '.join(f'`{a}`' for a in recorded)}; still waiting for the others.")
        self.notifier.update_root(number)
        return None

    def _may_approve(self, alias: str, user: str, request: Request) -> bool:
        account = self.config.account(alias)
        if user == request.requester and not account.allow_self_approval:
            return False
        return user in self._owners(account)

    def _why_not(self, request: Request, user: str) -> str:
        owners_of = [a for a in request.approver_accounts if user in self._owners(self.config.account(a))]
        if user == request.requester and owners_of:
            return f"You asked for {request.display_id}, so you cannot approve it for {', '.join(f'`{a}`' for a in owners_of)}; another owner must. Nothing was changed."
        need = ", ".join(f"`{a}`" for a in request.approver_accounts if a not in request.approvals)
        return f"Only an owner of {need} can decide {request.display_id}. Nothing was changed."

    def _decided_by(self, request: Request) -> str:
        for entry in reversed(self.store.audit(request.id)):
            if entry["to_state"] in (APPROVED, DENIED, CANCELLED, EXPIRED):
                by = "the bot" if entry["actor"] == "amibot" else messages.mention(entry["actor"])
                return f"{request.display_id} was already {STATE_LABELS[entry['to_state']]} by {by}. Nothing was changed."
        return f"{request.display_id} is {STATE_LABELS.get(request.state, request.state)}; it cannot be decided now."

    # -- cancelling ------------------------------------------------------------------------

    def cancel(self, number: int, user: str) -> str:
        """``/ami cancel``: the requester or an owner ends a request not yet running."""
        request = self.store.get(number)
        is_owner = any(user in self._owners(self.config.account(a)) for a in request.approver_accounts)
        if user != request.requester and not is_owner:
            raise NotAllowedError(f"Only the requester or an owner of {', '.join(request.approver_accounts)} can cancel {request.display_id}.")
        for from_state in (PENDING_APPROVAL, APPROVED):
            if request.state == from_state and self.store.transition(number, from_state, CANCELLED, user, "cancelled"):
                self.notifier.reply(number, f":heavy_multiplication_x: {request.display_id} was cancelled by {messages.mention(user)}. Nothing was changed.", broadcast=True, dedupe=f"final:{number}")
                self.notifier.update_root(number)
                return f"{request.display_id} cancelled."
        return f"{request.display_id} is {STATE_LABELS.get(request.state, request.state)} and can no longer be cancelled."


def _clean(text: str) -> str:
    return " ".join(text.split())


def _duration(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return f"{int(seconds // 3600)}h"
