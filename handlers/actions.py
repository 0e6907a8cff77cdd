"""Approve / Deny button listeners."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.messages import APPROVE_ACTION, DENY_ACTION, error_text
from bot.services import RequestService


def register(app: App, service: RequestService) -> None:
    def decide(ack: Ack, body: dict, client: WebClient, approve: bool) -> None:
        ack()
        action = body["actions"][0]
        user = body["user"]["id"]
        try:
            note = service.decide(action["value"], user, approve)
        except Exception as error:  # one error path: messages.error_text
            note = error_text(error)
        if note:
            # The clicker alone sees why nothing happened; the request is untouched.
            service.tell(body["channel"]["id"], user, note)

    @app.action(APPROVE_ACTION)
    def on_approve(ack: Ack, body: dict, client: WebClient) -> None:
        decide(ack, body, client, approve=True)

    @app.action(DENY_ACTION)
    def on_deny(ack: Ack, body: dict, client: WebClient) -> None:
        decide(ack, body, client, approve=False)
