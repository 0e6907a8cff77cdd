"""Bolt listeners: thin. Each acks within Slack's 3 seconds, calls one service and
renders its answer. No boto3, no SQL, no Block Kit built here."""

from __future__ import annotations

from slack_bolt import App

from bot.services import RequestService
from bot.surfaces import SurfaceService
from handlers import actions, commands, errors, forms, history, home


def register(app: App, service: RequestService, command: str, surfaces: SurfaceService) -> None:
    """Attach every listener to the Bolt app."""
    commands.register(app, service, command, surfaces)
    actions.register(app, service, surfaces)
    forms.register(app, surfaces)
    home.register(app, surfaces)
    history.register(app, service)
    errors.register(app)
