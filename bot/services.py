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

from aws.sessions import AwsSessions
from aws.audit import read_image_access
from bot import audit, grammar, messages, operations
from bot.config import AccountConfig, Config
from bot.errors import AlreadyDecidedError, AmibotError, NobodyCanApproveError, NotAnApproverError, NotAllowedError
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
        if isinstance(command, grammar.AuditCommand):
            if command.image_id is None:
                return audit.drift_list_text(self.config, self.store.drift_findings())
            self.worker.submit(self.audit, command, response_url=response_url, channel=channel, user=user)
            return f"Auditing {command.image_id} … (read-only) the answer follows here."
        if not operations.is_operation(command):
            operations.prepare(None, command)  # raises "not available yet"
        self.worker.submit(self.submit, command, user=user, channel=channel, text=text, response_url=response_url)
        return f"Checking `{_clean(text)}` … the plan and the approval request will appear in this channel."

    def audit(self, command: grammar.AuditCommand, *, response_url: str | None, channel: str, user: str) -> str:
        """``/ami audit <ami> from <acct[:region]>``: read who can use the AMI (a bounded
        number of read-only calls) and mark what amibot made; with ``--drift``, the
        open drift findings of that AMI follow."""
        try:
            account = self.config.account(command.source.account)  # type: ignore[union-attr]
            region = command.source.region or self.config.bot.default_region  # type: ignore[union-attr]
            access = operations.preflight_read(
                f"Could not audit {command.image_id} in `{account.alias}` ({account.id}) {region}",
                lambda: read_image_access(self.sessions, account.id, region, command.image_id, f"audit-{secrets.token_hex(4)}"),  # type: ignore[arg-type]
            )
            text = audit.audit_text(self.config, access, audit.build_ledger(operations.requests_that_changed_aws(self.store)), account.alias)
            if command.drift:
                rows = [r for r in self.store.drift_findings() if r["image_id"] == command.image_id]
                text += "\n" + audit.drift_list_text(self.config, rows)
        except Exception as error:  # one error path: messages.error_text
            text = ":no_entry: " + messages.error_text(error)
        if response_url:
            self.notifier.respond(response_url, text)
        else:
            self.tell(channel, user, text)
        return text

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

    def submit(self, command: object, *, user: str, channel: str, text: str, response_url: str | None) -> Request | None:
        """Preflight an operation and, if it passes, ask the owners. Failures go back
        to the requester (ephemeral) and create nothing."""
        try:
            ctx = operations.PlanningContext(
                self.config, self.sessions, uid=secrets.token_hex(8), requester=user,
                check_approvers=lambda accounts: self._check_someone_can_approve(accounts, user),
                find_requests=lambda: operations.requests_that_changed_aws(self.store),
            )
            prepared = operations.prepare(ctx, command)
            self._check_someone_can_approve(prepared.approver_accounts, user)
            request = self.store.create_request(
                kind=prepared.kind,
                uid=ctx.uid,
                requester=user,
                channel=channel,
                command_text=_clean(text),
                params={**prepared.params, "response_url": response_url},
                facts={"checked": prepared.checked, "after": prepared.after, **prepared.extra_facts},
                approver_accounts=prepared.approver_accounts,
                steps=prepared.steps,
                ttl_seconds=self.config.bot.approval_ttl_hours * 3600,
                state=PENDING_APPROVAL,
            )
        except Exception as error:  # error_text logs the unexpected ones with an id
            if response_url:
                self.notifier.respond(response_url, ":no_entry: " + messages.error_text(error))
            return None
        self.notifier.post_root(request.id)
        return request

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

    def decidable(self, request_id: str, user: str) -> tuple[Request, list[str]]:
        """The request and the accounts ``user`` may still decide for it; raises
        NotAnApproverError or AlreadyDecidedError (Deny checks this before its form).

        Authorisation: only owners of an account still waiting for approval decide,
        and never for their own request unless the account allows self-approval."""
        request = self.store.get(self._number(request_id))
        if request.state != PENDING_APPROVAL:
            raise AlreadyDecidedError(self._decided_by(request))
        owned = [a for a in request.approver_accounts if self._may_approve(a, user, request)]
        if not owned:
            raise NotAnApproverError(self._why_not(request, user))
        eligible = [a for a in owned if a not in request.approvals]
        if not eligible:  # another owner approved these accounts a moment ago
            by = ", ".join(f"`{a}` by {messages.mention(request.approvals[a])}" for a in owned)
            raise AlreadyDecidedError(f"{request.display_id} was already approved for {by}. Nothing was changed.")
        return request, eligible

    def decide(self, request_id: str, user: str, approve: bool, reason: str | None = None) -> str | None:
        """An Approve click, or a Deny (with the reason from its form). Returns an
        ephemeral note for the clicker, or None."""
        request, eligible = self.decidable(request_id, user)
        number = request.id
        if not approve:
            reason = (reason or "").strip()
            detail = f"denied for {', '.join(eligible)}" + (f": {reason}" if reason else "")
            if self.store.transition(number, PENDING_APPROVAL, DENIED, user, detail):
                text = f":no_entry: {messages.mention(request.requester)} {request.display_id} was denied by {messages.mention(user)}. Nothing was changed."
                if reason:
                    text += f"\nReason: {messages.escape(reason)}"
                self.notifier.reply(number, text, broadcast=True, dedupe=f"final:{number}")
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

    def deny_from_form(self, request_id: str, user: str, reason: str | None) -> None:
        """The Deny form was submitted; a refusal is told to the user in the request's channel."""
        try:
            self.decide(request_id, user, approve=False, reason=reason)
        except Exception as error:  # one error path: messages.error_text
            channel = self.store.get(self._number(request_id)).channel
            self.tell(channel, user, messages.error_text(error))

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral note to one person (through the outbox: not lost)."""
        self.notifier.ephemeral(channel, user, text)

    # -- cancelling ------------------------------------------------------------------------

    def cancel(self, number: int, user: str) -> str:
        """``/ami cancel``: the requester or an owner ends a request not yet running."""
        request = self.store.get(number)
        is_owner = any(user in self._owners(self.config.account(a)) for a in request.approver_accounts)
        if user != request.requester and not is_owner:
            raise NotAllowedError(f"Only the requester or an owner of {', '.join(request.approver_accounts)} can cancel {request.display_id}.")
        for from_state in (PENDING_APPROVAL, APPROVED):
            if request.state == from_state and self.store.transition(number, from_state, CANCELLED, user, "cancelled"):
                self.notifier.reply(number, f":heavy_multiplication_x: {messages.mention(request.requester)} {request.display_id} was cancelled by {messages.mention(user)}. Nothing was changed.", broadcast=True, dedupe=f"final:{number}")
                self.notifier.update_root(number)
                return f"{request.display_id} cancelled."
        if request.state == RUNNING and self.store.transition(number, RUNNING, CANCELLED, user, "cancelled while running"):
            # The runner stops before its next step; the cleanup waits for the current one.
            self.worker.submit(self.runner.cancel_running, number, user)
            return f"{request.display_id} cancelled; undoing what it already changed (see the thread)."
        return f"{request.display_id} is {STATE_LABELS.get(request.state, request.state)} and can no longer be cancelled."


def _clean(text: str) -> str:
    return " ".join(text.split())
