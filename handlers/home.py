"""The App Home: published when opened, and its Unshare button."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot import forms
from bot.surfaces import SurfaceService


def register(app: App, surfaces: SurfaceService) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict, body: dict) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        # A redelivery (X-Slack-Retry-Num) carries the same event_id: no second effect.
        surfaces.home_opened(event["user"], body.get("event_id"))

    @app.action(forms.HOME_UNSHARE_ACTION)
    def on_unshare(ack: Ack, body: dict) -> None:
        ack()
        surfaces.unshare_from_home(body["actions"][0]["value"], body["user"]["id"])
