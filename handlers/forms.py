"""The request form: opened by ``/ami`` with no text (see ``handlers.commands``), by
the global shortcut, by the App Home's button and by "Open the form" under a command the
grammar could not read (prefilled); redrawn when its operation changes; its AMI
picker's option loads; its submission."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import forms
from bot.surfaces import SurfaceService

log = logging.getLogger("amibot.forms")


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

    @app.action(forms.OPEN_PREFILLED_ACTION)
    def on_open_prefilled(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        text = body["actions"][0].get("value") or ""
        client.views_open(trigger_id=body["trigger_id"], view=surfaces.form_view(channel, body["user"]["id"], prefill=text))

    @app.action(forms.OPERATION)
    def on_operation(ack: Ack, body: dict, client: WebClient) -> None:
        # The operation menu dispatches its choice: redraw the form with that
        # operation's fields. The hash makes Slack refuse a redraw of a form that has
        # changed since this choice (a later choice already redrew it): nothing to do then.
        ack()
        view = body.get("view") or {}
        chosen = (body["actions"][0].get("selected_option") or {}).get("value")
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"), view=surfaces.form_for_operation(view, body["user"]["id"], chosen))
        except SlackApiError as error:
            if error.response.get("error") != "hash_conflict":
                raise
            log.info("form %s changed before its redraw for %s: a later choice wins", view.get("id"), chosen)

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
