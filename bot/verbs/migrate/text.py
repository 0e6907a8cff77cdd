"""What a migration says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.slacktext import escape


def risk(request: Request) -> str:
    """A migration's main risk: the reboot that images the instance (or, with
    ``no-reboot``, an image that may not be consistent)."""
    params = request.params
    instance = request.facts.get("instance") or {}
    who = f"{escape(instance['name'])} ({params.get('instance_id')})" if instance.get("name") else str(params.get("instance_id"))
    if params.get("no_reboot"):
        return f"creates an image of {who} in `{params.get('source')}` *without* a reboot (the image may not be consistent), then launches a copy"
    return f"reboots {who} in `{params.get('source')}` to image it, then launches a copy in {params.get('availability_zone')}"
