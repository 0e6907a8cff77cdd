"""What a tag request says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs import cardtext
from bot.slacktext import code, escape
from bot.verbs.cardtext import CardFacts, ami, place


def risk(request: Request) -> str:
    """A tag request's main risk: the tags it sets on the AMI and its snapshots (the
    values others may rely on, e.g. in IAM conditions or cost reports)."""
    params = request.params
    tags = ", ".join(code(f"{k}={v}", 80) for k, v in (params.get("tags") or {}).items())
    return f"changes the tags of {params.get('image_id')} and its snapshots in `{params.get('source')}`: {tags}"


def alert(request: Request) -> str:
    """What a tag request asks, for a lock screen: ``tag payments-api-2026.11 in prod: tier=gold``."""
    params = request.params
    tags = ", ".join(f"{k}={v}" for k, v in (params.get("tags") or {}).items())
    return f"tag {cardtext.alert_ami(request)} in {cardtext.alert_place(params.get('source'))}: {escape(tags if len(tags) < 60 else tags[:59] + '…')}"
def card(request: Request) -> CardFacts:
    """A tag request's card fields: no account gains or loses access."""
    params = request.params
    return CardFacts(subject=ami(request), route=place(params.get("source"), params.get("region")),
                     access="no change of access; tags only", duration="permanent")
