"""The slash command listener."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.messages import error_text
from bot.services import RequestService


def register(app: App, service: RequestService, command: str) -> None:
    @app.command(command)
    def on_command(ack: Ack, command: dict) -> None:
        # Parsing and DB reads are fast; AWS work is handed to the bot's worker by the
        # service, so the ack always comes well inside 3 s. Errors are answered in
        # the ack itself: raising after ack() would turn the response into a 404.
        try:
            text = service.handle_command(
                command.get("text", ""),
                user=command["user_id"],
                channel=command["channel_id"],
                response_url=command.get("response_url"),
            )
        except Exception as error:  # one error path: messages.error_text
            text = ":warning: " + error_text(error)
        ack(text=service.words(text), response_type="ephemeral")
