"""What a migration says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.slacktext import escape
from bot.verbs.cardtext import CardFacts, place


def risk(request: Request) -> str:
    """A migration's main risk: the reboot that images the instance (or, with
    ``no-reboot``, an image that may not be consistent)."""
    params = request.params
    instance = request.facts.get("instance") or {}
    who = f"{escape(instance['name'])} ({params.get('instance_id')})" if instance.get("name") else str(params.get("instance_id"))
    if params.get("no_reboot"):
        return f"creates an image of {who} in `{params.get('source')}` *without* a reboot (the image may not be consistent), then launches a copy"
    return f"reboots {who} in `{params.get('source')}` to image it, then launches a copy in {params.get('availability_zone')}"


def alert(request: Request) -> str:
    """What a migration asks, for a lock screen: ``migrate web-1 in prod (reboots it)``."""
    params = request.params
    instance = request.facts.get("instance") or {}
    who = escape(instance.get("name") or params.get("instance_id") or "an instance")
    return f"migrate {who} in {escape(params.get('source'))} to {escape(params.get('availability_zone'))}" + ("" if params.get("no_reboot") else " (reboots it)")
def card(request: Request) -> CardFacts:
    """A migration's card fields: the instance, and where its copy is launched."""
    params = request.params
    instance = request.facts.get("instance") or {}
    who = f"{escape(instance['name'])} ({params.get('instance_id')})" if instance.get("name") else str(params.get("instance_id"))
    reboot = "no reboot (the image may not be consistent)" if params.get("no_reboot") else "rebooted once to image it"
    return CardFacts(subject=who, subject_label="Instance", route=f"{place(params.get('source'), params.get('region'))} → {escape(params.get('availability_zone'))}",
                     access=f"a new instance from its image; the original is {reboot}", duration="permanent", )
