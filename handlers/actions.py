"""Approve / Deny button listeners and the Deny form."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.messages import APPROVE_ACTION, DENY_ACTION, DENY_REASON_VIEW, deny_form, deny_reason, error_text
from bot.services import RequestService


def register(app: App, service: RequestService) -> None:
    @app.action(APPROVE_ACTION)
    def on_approve(ack: Ack, body: dict) -> None:
        ack()
        user, channel = body["user"]["id"], body["channel"]["id"]
        try:
            note = service.decide(body["actions"][0]["value"], user, approve=True)
        except Exception as error:  # one error path: messages.error_text
            note = error_text(error)
        if note:
            # The clicker alone sees why nothing happened; the request is untouched.
            service.tell(channel, user, note)

    @app.action(DENY_ACTION)
    def on_deny(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, channel, request_id = body["user"]["id"], body["channel"]["id"], body["actions"][0]["value"]
        try:
            request, _ = service.decidable(request_id, user)
        except Exception as error:
            service.tell(channel, user, error_text(error))
            return
        try:
            # A trigger_id works once and expires 3 s after the click: open the form
            # here, in the listener, before anything slow.
            client.views_open(trigger_id=body["trigger_id"], view=deny_form(request))
        except SlackApiError:
            # No form (trigger expired): the click itself was a decision; deny without a reason.
            service.deny_from_form(request_id, user, None)

    @app.view(DENY_REASON_VIEW)
    def on_deny_reason(ack: Ack, body: dict, view: dict) -> None:
        ack()
        service.deny_from_form(view["private_metadata"], body["user"]["id"], deny_reason(view))
