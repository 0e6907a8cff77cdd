"""Approve (as asked, or for less time) / Deny / Reassign / View exact changes listeners,
the Deny form, and the requester's Nudge and Cancel.

The same buttons (same action ids) are on the root message, on every copy of the
card (approval channels, owners' DMs, reminders) and on the App Home: a click
anywhere is one decision, with the same confirm (Approve) and the same form (Deny,
opened by the click itself). Every click is authorised by the use case it calls."""

from __future__ import annotations

import re
from typing import Callable

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.messages import (VIEW_STATEMENT_ACTION, statement_view)
from bot.cards import CANCEL_ACTION, NUDGE_ACTION
from bot.messages import (APPROVE_ACTION, APPROVE_FOR_PATTERN, DENY_ACTION, EXTEND_ACTION, DENY_REASON_VIEW, REASSIGN_ACTION, VIEW_CHANGES_ACTION, deny_form,
                          deny_reason, error_text)
from bot.requests import parse_display_id
from bot.services import RequestService
from bot.verbs import registry
from bot.surfaces import SurfaceService


def register(app: App, service: RequestService, surfaces: SurfaceService) -> None:
    def tell(body: dict, user: str, note: str) -> None:
        # The clicker alone sees why nothing happened: in the channel of the message
        # clicked, or at the top of their App Home (a Home click has no channel).
        channel = (body.get("channel") or {}).get("id")
        if channel:
            service.tell(channel, user, note)
        else:
            surfaces.home_notice(user, note)

    def decide(body: dict, act: Callable[[], str | None]) -> None:
        """Run a click's decision; what it says back (or the error in words, the one
        error path: messages.error_text) goes to the clicker alone."""
        try:
            note = act()
        except Exception as error:
            note = error_text(error)
        if note:
            tell(body, body["user"]["id"], note)

    @app.action(APPROVE_ACTION)
    def on_approve(ack: Ack, body: dict) -> None:
        ack()
        decide(body, lambda: service.decide(body["actions"][0]["value"], body["user"]["id"], approve=True))

    @app.action(re.compile(APPROVE_FOR_PATTERN))
    def on_approve_for(ack: Ack, body: dict) -> None:
        ack()
        action = body["actions"][0]
        hours = int(re.match(APPROVE_FOR_PATTERN, action["action_id"]).group(1))  # type: ignore[union-attr]
        decide(body, lambda: service.decide(action["value"], body["user"]["id"], approve=True, hours=hours))

    @app.action(REASSIGN_ACTION)
    def on_reassign(ack: Ack, body: dict) -> None:
        ack()
        action = body["actions"][0]
        decide(body, lambda: service.reassign((action.get("selected_option") or {}).get("value") or action.get("value", ""), body["user"]["id"]))

    @app.action(EXTEND_ACTION)
    def on_extend(ack: Ack, body: dict) -> None:
        ack()
        decide(body, lambda: service.extend(body["actions"][0]["value"], body["user"]["id"]))

    @app.action(DENY_ACTION)
    def on_deny(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, request_id = body["user"]["id"], body["actions"][0]["value"]
        try:
            request, _ = service.decidable(request_id, user)
        except Exception as error:
            tell(body, user, error_text(error))
            return
        try:
            # A trigger_id works once and expires 3 s after the click: open the form
            # here, in the listener, before anything slow.
            client.views_open(trigger_id=body["trigger_id"], view=deny_form(request))
        except SlackApiError as error:
            # No form, no decision: a Deny without the chance to say why is not what
            # the clicker meant to send.
            tell(body, user, service.deny_form_failed(request, error.response.get("error", "")))

    @app.view(DENY_REASON_VIEW)
    def on_deny_reason(ack: Ack, body: dict, view: dict) -> None:
        ack()
        service.deny_from_form(view["private_metadata"], body["user"]["id"], deny_reason(view))

    @app.action(VIEW_CHANGES_ACTION)
    def on_view_changes(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, request_id = body["user"]["id"], body["actions"][0]["value"]
        try:
            view = surfaces.changes_view(request_id, user)  # authorised: who may read the request
            client.views_open(trigger_id=body["trigger_id"], view=view)  # within the trigger's 3 s
        except SlackApiError as error:
            tell(body, user, service.changes_view_failed(request_id, error.response.get("error", "")))
        except Exception as error:  # one error path: messages.error_text
            tell(body, user, error_text(error))

    @app.action(VIEW_STATEMENT_ACTION)
    def on_view_statement(ack: Ack, body: dict, client: WebClient) -> None:
        """*View IAM statement* on a final reply: the statement in a modal, for those
        who may read the request (the rule of ``/ami status``)."""
        ack()
        user = body["user"]["id"]
        try:
            request = service.store.get(parse_display_id(body["actions"][0]["value"]) or 0)
            statement = registry.statement(request)
            if not service.visibility.may_see(request, user) or not statement:
                tell(body, user, f"{request.display_id}'s details are shown only to its requester, the owners of the accounts it touches "
                                 "and the members of the channel it was asked in.")
                return
            client.views_open(trigger_id=body["trigger_id"], view=statement_view(request, statement))  # within the trigger's 3 s
        except Exception as error:  # one error path: messages.error_text
            tell(body, user, error_text(error))
            tell(body, user, error_text(error))

    @app.action(NUDGE_ACTION)
    def on_nudge(ack: Ack, body: dict) -> None:
        ack()
        decide(body, lambda: surfaces.requester_click(body["actions"][0]["value"], body["user"]["id"], nudge=True))

    @app.action(CANCEL_ACTION)
    def on_cancel(ack: Ack, body: dict) -> None:
        ack()
        decide(body, lambda: surfaces.requester_click(body["actions"][0]["value"], body["user"]["id"], nudge=False))
