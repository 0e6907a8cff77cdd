"""The slash command listener."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.messages import error_text
from bot.services import RequestService
from bot.surfaces import SurfaceService


def register(app: App, service: RequestService, command: str, surfaces: SurfaceService) -> None:
    @app.command(command)
    def on_command(ack: Ack, command: dict, client: WebClient) -> None:
        if not (command.get("text") or "").strip() and command.get("trigger_id"):
            # No text: the form. Its trigger_id works once, for 3 s: open it here.
            try:
                client.views_open(trigger_id=command["trigger_id"], view=surfaces.form_view(command["channel_id"], command["user_id"]))
                ack()
                return
            except SlackApiError:
                pass  # no form (trigger expired): the usage below instead
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
        blocks = getattr(text, "blocks", None)  # an answer with blocks (/ami history's page)
        ack(text=service.words(text), response_type="ephemeral", **({"blocks": blocks} if blocks else {}))
