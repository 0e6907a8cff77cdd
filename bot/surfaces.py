"""Use cases of the request form, the App Home and the card's clicks that are not a
decision: View exact changes, the requester's Nudge and Cancel (no Bolt here;
handlers call these).

The form renders its answers into the slash grammar's text and hands that to
:meth:`RequestService.handle_command`, so a form creates exactly what ``/ami`` would.
The Home's Unshare asks for an ordinary ``unshare`` the same way: it needs the usual
approval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from aws.catalog import ImageCatalog
from bot import cards, forms, messages
from bot.errors import AmibotError, NotAllowedError, UnknownAccountError
from bot.requests import ACTIVE, PENDING_APPROVAL, Request
from bot.services import RequestService

log = logging.getLogger("amibot.surfaces")

RECENT_ON_HOME = 10
EVENT_MEMORY_SECONDS = 86400.0
NOTICE_SECONDS = 600.0  # how long a notice stays at the top of a Home (later refreshes keep it)


class SurfaceService:
    """The modal and the App Home."""

    def __init__(self, requests: RequestService, catalog: ImageCatalog):
        self.requests = requests
        self.catalog = catalog
        self.config = requests.config
        self.store = requests.store
        self.notifier = requests.notifier
        self._notices: dict[str, tuple[float, str]] = {}  # user -> (until, text); shown, not stored
        self._lock = threading.Lock()

    # -- the form ---------------------------------------------------------------------

    def form_view(self, channel: str | None, user: str) -> dict[str, Any]:
        """The request form, its source menu holding only the accounts ``user`` may
        request from; starts loading the first of those accounts' AMIs meanwhile."""
        sources = self.requests.access.sources_for(user)
        if sources:
            self.catalog.warm(sources[0].id, self.config.bot.default_region)
        return forms.request_form(self.config, channel, [a.alias for a in sources])

    def ami_options(self, view: dict[str, Any], query: str, user: str) -> dict[str, Any]:
        """Options for the AMI picker: the chosen source account's own AMIs, when
        ``user`` may request from it and is within the rate limit; else none."""
        access = self.requests.access
        alias, region = forms.chosen_source(view, self.config)
        if alias is None:
            alias = next((a.alias for a in access.sources_for(user)), None)
        try:
            account = self.config.account(alias or "")
        except UnknownAccountError:
            return {"options": []}
        if not access.may_request_from(account, user):
            return {"options": []}
        try:
            access.check_rate(user)
        except NotAllowedError:
            return {"options": [forms.option("Too many lookups in a minute: wait a minute and search again", "none")]}
        found = self.catalog.search(account.id, region, query)
        return forms.ami_options(found.images, loading=found.loading, query=query)

    def submit_form(self, view: dict[str, Any], user: str, response_url: str | None) -> dict[str, str]:
        """A submitted form: field errors (``{block_id: words}``), or ``{}`` once the
        request is on its way exactly as ``/ami <text>`` would be."""
        answers = forms.answers(view)
        errors = forms.field_errors(answers)
        if errors:
            return errors
        assert answers.channel is not None
        refused = self._channel_refused(user, answers.channel)
        if refused:
            return {forms.CHANNEL: refused}
        text = forms.render(answers)
        try:
            note = self.requests.handle_command(text, user=user, channel=answers.channel, response_url=response_url)
        except Exception as error:  # the grammar accepted it, so this is rare: show it on the form
            return {forms.OPERATION: messages.error_text(error)[: forms.ERROR_TEXT_LIMIT]}
        self._answer(user, answers.channel, response_url, f"{self.config.bot.command} {text}\n{note}")
        return {}

    def _channel_refused(self, user: str, channel: str) -> str | None:
        """The form names the channel its request lives in (issue 17): the requester
        must be a member of it (failing closed when its members cannot be read), and the
        bot must be in it already: it never joins a channel for a form submission."""
        directory = self.requests.directory
        if user not in directory.channel_members(channel):
            return "You are not a member of that channel (or amibot cannot see its members): pick a channel you are in."
        if not directory.bot_is_member(channel):
            return "amibot is not in that channel and does not join one for a form: invite it there, or pick another channel."
        return None

    def _answer(self, user: str, channel: str, response_url: str | None, text: str) -> None:
        if response_url:
            self.notifier.respond(response_url, text)
        else:
            self.notifier.ephemeral(channel, user, text)

    # -- the App Home ----------------------------------------------------------------------

    def home_opened(self, user: str, event_id: str | None) -> bool:
        """``app_home_opened``: publish the person's Home. A redelivery of the same
        event (Slack retries with ``X-Slack-Retry-Num``) does nothing: False."""
        if event_id and not self.store.first_delivery(event_id):
            return False
        # Slack retries within minutes; a day of event ids is plenty to remember.
        self.store.forget_events_before(self.requests.clock() - EVENT_MEMORY_SECONDS)
        self.store.record_home_viewer(user)
        with self._lock:
            self._notices.pop(user, None)  # seen: a fresh look starts clean
        self.notifier.publish_home(user)
        return True

    def home_notice(self, user: str, text: str) -> None:
        """Show what a click on the Home did (or why it changed nothing) at the top of
        the Home, for a few minutes of refreshes."""
        with self._lock:
            self._notices[user] = (time.monotonic() + NOTICE_SECONDS, text)
        self.notifier.publish_home(user, notice=text)

    def _notice(self, user: str) -> str | None:
        with self._lock:
            until, text = self._notices.get(user, (0.0, ""))
        return text if until > time.monotonic() else None

    def audience(self, request_id: int) -> list[str]:
        """Who has the request on their Home (requester, owners of its approving
        accounts), among those who have opened the Home."""
        request = self.store.get(request_id)
        users = {request.requester}
        for alias in request.approver_accounts:
            users |= self.requests.owner_users(alias)
        return self.store.home_viewers(sorted(users))

    def view(self, user: str, notice: str | None = None) -> dict[str, Any]:
        """The person's App Home, from the store as it is now."""
        waiting = []
        for request in self.store.find(states=(PENDING_APPROVAL,), limit=200):
            try:
                _, accounts = self.requests.decidable(request.display_id, user)
            except AmibotError:
                continue
            waiting.append((request, accounts))
        mine = self.store.find(requester=user, limit=RECENT_ON_HOME)
        total = self.store.count(requester=user) if len(mine) >= RECENT_ON_HOME else len(mine)
        shares = [r for r in self.store.find(states=(ACTIVE,), limit=200) if r.kind == "share" and self._concerns(r, user)]
        content = forms.HomeContent(waiting=waiting, mine=mine, mine_total=total, shares=shares, notice=notice or self._notice(user))
        return forms.home_view(content, self.config.bot.command)

    def _concerns(self, request: Request, user: str) -> bool:
        return user == request.requester or any(user in self.requests.owner_users(a) for a in request.approver_accounts)

    def unshare_from_home(self, share_id: str, user: str) -> None:
        """Unshare on the Home: ask for the ``unshare`` of an active time-boxed share,
        through the usual approval. What happened is shown at the top of the Home."""
        try:
            share = self.store.get(self.requests.number(share_id))
            if share.state != ACTIVE or share.kind != "share":
                raise NotAllowedError(f"{share.display_id} is not an active share any more; nothing was asked.")
            if not self._concerns(share, user):
                raise NotAllowedError(f"Only the requester of {share.display_id} or an owner of its accounts can ask to end it here.")
            text = forms.unshare_text(share.command_text, share.params.get("region"))
            self.requests.handle_command(text, user=user, channel=share.channel, response_url=None)
            notice = f":hourglass_flowing_sand: Asked: `{messages.escape(text)}` — the approval request appears in <#{share.channel}>."
        except Exception as error:  # one error path: messages.error_text
            notice = ":warning: " + messages.error_text(error)
        self.home_notice(user, notice)

    # -- the card's other clicks ----------------------------------------------------------

    def changes_view(self, request_id: str, user: str) -> dict[str, Any]:
        """The "View exact changes" modal, for whoever may read the request (the rule of
        ``/ami status``: its requester, the owners of its accounts, its channel's members)."""
        request = self.store.get(self.requests.number(request_id))
        if not self.requests.visibility.may_see(request, user):
            raise NotAllowedError(f"{request.display_id}'s exact changes are shown only to its requester, the owners of the accounts "
                                  "it touches and the members of its channel.")
        return cards.changes_view(request, self.config.bot.command)

    def requester_click(self, request_id: str, user: str, *, nudge: bool) -> str:
        """The requester's Nudge (the approvers get the reminder again, rate-limited) or
        Cancel (what ``/ami cancel`` does) on the card: theirs alone."""
        request = self.store.get(self.requests.number(request_id))
        approvals = self.requests.approvals
        if nudge:
            return approvals.nudge(request, user, self.requests.clock())
        approvals.check_requester(request, user, "cancel")
        return self.requests.cancel(request.id, user)
