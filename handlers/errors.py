"""The global error handler: the last net for anything a listener did not catch."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.messages import error_text

log = logging.getLogger("amibot.handlers")


def register(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict) -> None:
        # error_text logs unexpected errors with a short id; listeners answer users themselves.
        log.warning("listener error: %s", error_text(error))
