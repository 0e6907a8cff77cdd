"""The request form: opened by ``/ami`` with no text (see ``handlers.commands``), by
the global shortcut and by the App Home's button; its AMI picker's option loads; its
submission."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import forms
from bot.surfaces import SurfaceService


def register(app: App, surfaces: SurfaceService) -> None:
    @app.shortcut(forms.REQUEST_SHORTCUT)
    def on_shortcut(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        # A trigger_id works once, for 3 s: open the form here, before anything slow.
        client.views_open(trigger_id=body["trigger_id"], view=surfaces.form_view(None, body["user"]["id"]))

    @app.action(forms.OPEN_FORM_ACTION)
    def on_open_form(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=surfaces.form_view(None, body["user"]["id"]))

    @app.options(forms.AMI)
    def on_ami_options(ack: Ack, body: dict) -> None:
        # Answered within 2.5 s: the catalog answers from its cache, waiting for AWS
        # (at most 1.5 s) only when it has nothing for that account and region yet.
        ack(**surfaces.ami_options(body.get("view") or {}, body.get("value") or "", body["user"]["id"]))

    @app.view(forms.REQUEST_FORM_VIEW)
    def on_submit(ack: Ack, body: dict, view: dict) -> None:
        urls = body.get("response_urls") or []
        response_url = urls[0].get("response_url") if urls else None
        errors = surfaces.submit_form(view, body["user"]["id"], response_url)
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()
