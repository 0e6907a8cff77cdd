"""The history's Next button: the older page replaces the one clicked (through the
click's response_url; the page was the asker's own ephemeral answer)."""

from __future__ import annotations

from slack_bolt import Ack, App, Respond

from bot.history import NEXT_ACTION
from bot.messages import error_text
from bot.services import RequestService


def register(app: App, service: RequestService) -> None:
    @app.action(NEXT_ACTION)
    def on_next(ack: Ack, body: dict, respond: Respond) -> None:
        ack()
        try:
            page = service.history_next(body["actions"][0].get("value", ""), body["user"]["id"])
            respond(text=service.words(page), blocks=page.blocks, replace_original=True, response_type="ephemeral")
        except Exception as error:  # one error path: messages.error_text
            respond(text=":warning: " + error_text(error), replace_original=False, response_type="ephemeral")
