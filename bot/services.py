"""Use cases: what a slash command or a click asks of the domain.

Handlers call these and render what they return; nothing here knows Bolt. Slow work
(AWS preflight, execution) goes to the bot's own worker so Slack gets its answer
within 3 seconds.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Callable, Protocol

from aws.audit import read_image_access
from aws.sessions import PREFLIGHT_DEADLINE_SECONDS, AwsSessions, PreflightTimeout, preflight_deadline

from bot import audit, cards, grammar, listing, messages, policy, slacktext
from bot.verbs import registry
from bot.verbs.common import PlanningContext, preflight_read, requests_that_changed_aws
from bot.access import Access
from bot.approvals import Approvals
from bot.config import AccountConfig, Config
from bot.engine import PlanRunner
from bot.history_service import HistoryUseCases
from bot.lifecycle import Lifecycle
from bot.logs import log_context
from bot.errors import AlreadyDecidedError, AmibotError, NotAnApproverError, NotAllowedError, PreflightError
from bot.notifier import Notifier
from bot.requests import APPROVED, CANCELLED, DENIED, EXPIRED, PENDING_APPROVAL, RUNNING, STATE_LABELS, Request, parse_display_id
from bot.store import Store
from bot.jobs import Jobs, request_jobs
from bot.worker import Worker

# The requester hears "AWS is answering slowly" after this many seconds of preflight
# (Slack shows "Checking…" until then).
PREFLIGHT_SLOW_SECONDS = 8.0

log = logging.getLogger("amibot.services")


class Directory(Protocol):
    """Who is in a Slack user group, and in a channel."""

    def group_members(self, group_id: str) -> list[str]: ...

    def channel_members(self, channel: str) -> frozenset[str]: ...

    def bot_is_member(self, channel: str) -> bool: ...


class RequestService(HistoryUseCases):
    """The bot's use cases (``/ami history``'s in :class:`bot.history_service.HistoryUseCases`)."""

    def __init__(self, config: Config, store: Store, sessions: AwsSessions, notifier: Notifier, worker: Worker,
                 runner: PlanRunner, directory: Directory, clock: Callable[[], float] = time.time,
                 preflight_slow_seconds: float = PREFLIGHT_SLOW_SECONDS, preflight_deadline_seconds: float = PREFLIGHT_DEADLINE_SECONDS,
                 lifecycle: Lifecycle | None = None, jobs: Jobs | None = None, count_use: Callable[[str, int], int] | None = None):
        self.preflight_slow_seconds = preflight_slow_seconds
        self.preflight_deadline_seconds = preflight_deadline_seconds
        self.config = config
        self.store = store
        self.sessions = sessions
        self.notifier = notifier
        self.worker = worker
        # Preflights, runs and cleanups by name: here, or in the worker processes (bot.jobs).
        self.jobs = jobs or Jobs(worker)
        request_jobs(self.jobs, self)
        self.runner = runner
        self.directory = directory
        self.clock = clock
        self.visibility = listing.Visibility(config, lambda alias: self._owners(config.account(alias)), directory.channel_members)
        self.lifecycle = lifecycle or (runner.lifecycle if runner is not None else Lifecycle(store, notifier, clock=clock))
        self.approvals = Approvals(config, store, notifier, self.lifecycle, self.owner_users, directory.group_members)
        self.access = Access(config, count_use or store.count_use, self.owner_users, directory.group_members)  # count_use: the front's inbox

    # -- slash commands ----------------------------------------------------------------

    def handle_command(self, text: str, *, user: str, channel: str, response_url: str | None) -> str:
        """Answer a slash command. Returns the immediate ephemeral answer; requests
        that need AWS are handed to the worker and answered in the channel."""
        command = grammar.parse_command(text)
        if isinstance(command, grammar.HelpCommand) and command.topic:
            return f"*{slacktext.escape(self.config.bot.command)} {command.topic}*\n```" + slacktext.escape(grammar.usage_for(command.topic, self.config.bot.command)) + "```"
        if isinstance(command, (grammar.HelpCommand, grammar.EmptyCommand)):
            return "*amibot* — AMI operations with owner approval.\n```" + slacktext.escape(grammar.usage(self.config.bot.command)) + "```"
        if isinstance(command, grammar.StatusCommand):
            request = self.store.get(self._number(command.request_id))
            visible = self.visibility.may_see(request, user)
            if visible and not request.permalink:
                request.permalink = self.notifier.permalink(request)
            return listing.status_text(request, visible)
        if isinstance(command, grammar.ListCommand):
            return self._list(command.scope, user)
        if isinstance(command, grammar.HistoryCommand):
            return self.history_command(command, user, response_url)
        if isinstance(command, grammar.CancelCommand):
            return self.cancel(self._number(command.request_id), user)
        if isinstance(command, grammar.AuditCommand):
            if command.image_id is None:
                self.access.check_channel(channel, dm_too=True)
                return audit.drift_list_text(self.config, self.access.drift_rows(self.store.drift_findings(), user))
            self.access.check_audit(command.source.account, user, channel)  # type: ignore[union-attr]
            self.access.check_rate(user)
            self.jobs.submit("audit", text=text, response_url=response_url, channel=channel, user=user)
            return f"Auditing {command.image_id} … (read-only) the answer follows here."
        if not registry.is_operation(command):
            registry.prepare(None, command)  # raises "not available yet"
        self.access.check_channel(channel)
        self.access.check_source(getattr(getattr(command, "source", None), "account", None), user)
        if self.config.bot.require_reason and not getattr(command, "reason", None):
            example = slacktext.code(f'{self.config.bot.command} {_clean(text)} reason "release 2.3 for the dev team"')
            raise AmibotError("Every request must say why (`bot.require_reason`). Nothing was changed.", fix=f'Add `reason "…"` to the command, e.g. {example}')
        self.access.check_rate(user)
        self.jobs.submit("command", text=text, user=user, channel=channel, response_url=response_url, uid=secrets.token_hex(8))
        return f"Checking {slacktext.code(_clean(text))} … the plan and the approval request will appear in this channel."

    def audit(self, command: grammar.AuditCommand, *, response_url: str | None, channel: str, user: str) -> str:
        """``/ami audit <ami> from <acct[:region]>``: read who can use the AMI (a bounded
        number of read-only calls) and mark what amibot made; with ``--drift``, the
        open drift findings of that AMI follow."""
        try:
            account = self.config.account(command.source.account)  # type: ignore[union-attr]
            region = command.source.region or self.config.bot.default_region  # type: ignore[union-attr]
            access = preflight_read(
                f"Could not audit {command.image_id} in `{account.alias}` ({account.id}) {region}",
                lambda: read_image_access(self.sessions, account.id, region, command.image_id, f"audit-{secrets.token_hex(4)}"),  # type: ignore[arg-type]
            )
            text = audit.audit_text(self.config, access, audit.build_ledger(requests_that_changed_aws(self.store), recent_since=self.clock() - self.config.bot.consistency_window_seconds), account.alias)
            if command.drift:
                rows = [r for r in self.access.drift_rows(self.store.drift_findings(), user) if r["image_id"] == command.image_id]
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

    _LIST_FILTERS = {"pending": (PENDING_APPROVAL,), "active": (APPROVED, RUNNING, "active"), "mine": None, "all": None}

    def _list(self, scope: str, user: str) -> str:
        states = self._LIST_FILTERS.get(scope)
        requester = user if scope == "mine" else None
        found = self.store.find(states=states, requester=requester, limit=listing.LIST_LIMIT)
        total = self.store.count(states=states, requester=requester) if len(found) >= listing.LIST_LIMIT else len(found)
        return listing.list_text(found, scope, total, lambda r: self.visibility.may_see(r, user))

    # -- submitting ------------------------------------------------------------------------

    def submit(self, command: object, *, user: str, channel: str, text: str, response_url: str | None, uid: str | None = None) -> Request | None:
        """Preflight an operation and, if it passes, ask the owners. Failures go back
        to the requester (ephemeral) and create nothing. The preflight has a short AWS
        budget (``aws.sessions.preflight_deadline``); if it takes longer than
        ``preflight_slow_seconds`` the requester is told AWS is slow."""
        notice = threading.Timer(self.preflight_slow_seconds, self._tell_slow, kwargs={"user": user, "channel": channel, "text": text, "response_url": response_url})
        notice.daemon = True
        notice.start()
        try:
            with preflight_deadline(self.preflight_deadline_seconds):
                return self._submit(command, user=user, channel=channel, text=text, response_url=response_url, uid=uid or secrets.token_hex(8))
        finally:
            notice.cancel()

    def _tell_slow(self, *, user: str, channel: str, text: str, response_url: str | None) -> None:
        said = f":hourglass_flowing_sand: AWS is answering slowly, still checking {slacktext.code(_clean(text))}…"
        if response_url:
            self.notifier.respond(response_url, said)
        else:
            self.notifier.ephemeral(channel, user, said)

    def _submit(self, command: object, *, user: str, channel: str, text: str, response_url: str | None, uid: str) -> Request | None:
        with log_context(request_id=f"new-{uid}"):  # no number before the request is stored
            try:
                request = self._plan_and_create(command, uid, user=user, channel=channel, text=text, response_url=response_url)
            except Exception as error:  # error_text logs the unexpected ones with an id
                if isinstance(error, PreflightTimeout):
                    error = PreflightError(str(error), fix="AWS is degraded or throttling: try again in a few minutes.")
                if response_url:
                    self.notifier.respond(response_url, ":no_entry: " + messages.error_text(error))
                else:  # asked from the App Home: no response_url to answer through
                    self.tell(channel, user, ":no_entry: " + messages.error_text(error))
                return None
        with log_context(request_id=request.display_id):
            if request.params.get("reason"):
                self.store.note(request.id, user, f"reason: {request.params['reason']}")
            self.ask(request)
        return request

    def ask(self, request: Request) -> None:
        """Post the card; under an ``approve = "auto"`` rule the rule approves and it runs, else the owners are asked where they look."""
        self.approvals.note_asked_by_dm(request)  # before the card: who gets a DM is not also mentioned on it
        self.notifier.post_root(request.id)
        if not self.approvals.auto_approve(request):
            return self.ask_owners_elsewhere(request)
        self.jobs.submit("run", request_id=request.id)

    def _plan_and_create(self, command: object, uid: str, *, user: str, channel: str, text: str, response_url: str | None) -> Request:
        """Preflight, then store the request waiting for approval (raises on refusal)."""
        ctx = PlanningContext(
            self.config, self.sessions, uid=uid, requester=user,
            check_approvers=lambda accounts: self.approvals.check_someone_can_approve(accounts, user),
            find_requests=lambda: requests_that_changed_aws(self.store),
        )
        prepared = registry.prepare(ctx, command)
        # The approval policy (bot.policy): the first matching rule, on the tags the preflight read.
        decision = policy.evaluate(self.config, prepared.kind, prepared.params, (prepared.extra_facts.get("image") or {}).get("tags"))
        policy.check_duration(decision, prepared.kind, prepared.params)
        rule = policy.decision_facts(decision)
        self.approvals.check_someone_can_approve(prepared.approver_accounts, user, rule)
        return self.store.create_request(
            kind=prepared.kind,
            uid=ctx.uid,
            requester=user,
            channel=channel,
            command_text=_clean(text),
            params={**prepared.params, "response_url": response_url, "reason": getattr(command, "reason", None)},
            facts={"checked": [*prepared.checked, policy.plan_line(rule)], "after": prepared.after, **prepared.extra_facts, "policy": rule},
            approver_accounts=prepared.approver_accounts,
            steps=prepared.steps,
            ttl_seconds=self.config.bot.approval_ttl_hours * 3600,
            state=PENDING_APPROVAL,
        )

    # -- reaching the owners (bot.approvals) ---------------------------------------------

    def ask_owners_elsewhere(self, request: Request) -> None:
        """Copies of the approval card in approval channels and owners' DMs."""
        self.approvals.ask_owners_elsewhere(request)

    def _owners(self, account: AccountConfig) -> set[str]:
        users: set[str] = set()
        for owner in account.owners:
            if owner.startswith("S"):
                users.update(self.directory.group_members(owner))
            else:
                users.add(owner)
        return users

    def owner_users(self, alias: str) -> set[str]:
        """The users who own an account (user groups expanded)."""
        return self._owners(self.config.account(alias))

    def number(self, request_id: str) -> int:
        """``R-17`` → 17; anything else is a usage error."""
        return self._number(request_id)

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
        if request.expires_at <= self.clock():
            # The expiry tick may not have run yet: past the window, nobody decides.
            raise AlreadyDecidedError(messages.expired_text(request))
        owned = [a for a in request.approver_accounts if self._may_approve(a, user, request)]
        if not owned:
            raise NotAnApproverError(self._why_not(request, user))
        eligible = [a for a in owned if a not in request.approvals]
        if not eligible:  # another owner approved these accounts a moment ago
            by = ", ".join(f"`{a}` by {messages.mention(request.approvals[a])}" for a in owned)
            raise AlreadyDecidedError(f"{request.display_id} was already approved for {by}. Nothing was changed.")
        return request, eligible

    def decide(self, request_id: str, user: str, approve: bool, reason: str | None = None, hours: int | None = None) -> str | None:
        """An Approve click (``hours``: Approve for less time), or a Deny (with the
        reason from its form). Returns an ephemeral note for the clicker, or None."""
        with log_context(request_id=request_id.upper() if len(request_id) < 20 else None):
            return self._decide(request_id, user, approve, reason, hours)

    def _decide(self, request_id: str, user: str, approve: bool, reason: str | None, hours: int | None = None) -> str | None:
        request, eligible = self.decidable(request_id, user)
        number = request.id
        if not approve:
            if self.lifecycle.denied(request, user, eligible, (reason or "").strip()):
                return None
            raise AlreadyDecidedError(self._decided_by(self.store.get(number)))
        eligible = self.approvals.not_yet_voted(request, user, eligible)  # under a two-owner rule a person counts once
        if hours:  # Approve for less time: checked before the approval, applied once it counted (before it may start the share)
            self.approvals.shorten(request, user, hours, apply=False)
        counted, recorded = self.approvals.record(request, eligible, user)
        request = self.store.get(number)
        if not counted:
            raise AlreadyDecidedError(messages.expired_text(request) if request.state == PENDING_APPROVAL and request.expires_at <= self.clock() else self._decided_by(request))
        if hours:
            self.approvals.shorten(request, user, hours)
        if user == request.requester and recorded:
            self.approvals.break_glass_used(request, user, recorded)
        if not recorded:
            return self.approvals.first_of_two(request, user, counted)
        if all(a in request.approvals for a in request.approver_accounts):
            if self.lifecycle.approve(request, user, recorded):
                self.jobs.submit("run", request_id=number)
                return None
            raise AlreadyDecidedError(self._decided_by(self.store.get(number)))
        self.notifier.reply(number, f"{request.display_id}: {messages.mention(user)} approved for {', '.join(f'`{a}`' for a in recorded)}; still waiting for the others.")
        self.notifier.update_root(number)
        return None

    def extend(self, request_id: str, user: str) -> str:
        """Extend an active time-boxed share: a new request (approved like any other) to move its end."""
        self.ask(extension := self.approvals.extension(self.store.get(self._number(request_id)), user))
        return f"{extension.display_id} asks the owners to extend {request_id.upper()}."

    def reassign(self, value: str, user: str) -> str:
        """Reassign (``R-5|<account>|<owner>``): that owner gets the card as an alert."""
        request_id, alias, to = (value.split("|") + ["", ""])[:3]
        return self.approvals.reassign(self.decidable(request_id, user)[0], user, alias, to)

    def _may_approve(self, alias: str, user: str, request: Request) -> bool:
        account = self.config.account(alias)
        if user == request.requester and (policy.needed(request.facts) > 1  # the requester never counts towards two owners
                                          or not (account.allow_self_approval or policy.break_glass(request.facts))):
            return False
        return user in self._owners(account) or user in self.approvals.escalated_to(request, alias)

    def _why_not(self, request: Request, user: str) -> str:
        owners_of = [a for a in request.approver_accounts if user in self._owners(self.config.account(a))]
        if user == request.requester and owners_of:
            return f"You asked for {request.display_id}, so you cannot approve it for {', '.join(f'`{a}`' for a in owners_of)}; another owner must. Nothing was changed."
        need = ", ".join(f"`{a}`" for a in request.approver_accounts if a not in request.approvals)
        return f"Only an owner of {need} can decide {request.display_id}. Nothing was changed."

    def _decided_by(self, request: Request) -> str:
        for entry in reversed(self.store.events(request.id)):
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

    def deny_form_failed(self, request: Request, code: str) -> str:
        """What the clicker is told when the Deny form could not open: nothing was decided."""
        return (f"The Deny form could not open (`{slacktext.escape(code)}`), so nothing was decided: "
                f"{request.display_id} is still waiting. Click *Deny* again.")

    def changes_view(self, request_id: str) -> dict:
        """The "View exact changes" modal of a request."""
        return cards.changes_view(self.store.get(self._number(request_id)), self.config.bot.command)

    def changes_view_failed(self, request_id: str, code: str) -> str:
        return (f"The exact changes could not open (`{slacktext.escape(code)}`). Click *View exact changes* again, "
                f"or see them with `{self.config.bot.command} status {slacktext.escape(request_id)}`.")

    def words(self, text: str) -> str:
        """Text for Slack, naming the configured slash command wherever ``/ami`` is written."""
        return slacktext.with_command(text, self.config.bot.command)

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
        if self.lifecycle.cancelled(request, user):
            return f"{request.display_id} cancelled."
        if request.state == RUNNING and self.lifecycle.stop_running(number, user):
            # The runner stops before its next step; the cleanup waits for the current one.
            self.jobs.submit("cancel", request_id=number, actor=user)
            return f"{request.display_id} cancelled; undoing what it already changed (see the thread)."
        return f"{request.display_id} is {STATE_LABELS.get(request.state, request.state)} and can no longer be cancelled."


def _clean(text: str) -> str:
    return " ".join(text.split())
