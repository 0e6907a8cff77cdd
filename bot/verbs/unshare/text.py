"""What an unshare says: its card fields and risk line (the card and the Approve confirm)."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs import cardtext
from bot.verbs.cardtext import CardFacts, ami, encrypted, place
from bot.verbs.share.text import access_risk, to_words


def target_names(request: Request) -> list[str]:
    """The accounts losing access, by name: the plan stores their names beside their
    ids (an account nobody configured is named by its id)."""
    return list(request.params.get("target_names") or request.params.get("targets") or [])


def risk(request: Request) -> str:
    """An unshare's main risk: who loses access (by name), and the key changes it undoes."""
    return access_risk(request, "loses", target_names(request))


def card(request: Request) -> CardFacts:
    """An unshare's card fields."""
    params = request.params
    removed = ["launch"] + (["key use"] if encrypted(request) else [])
    who = to_words(request, target_names(request))
    return CardFacts(subject=ami(request), route=f"{place(params.get('source'), params.get('region'))} → {who} (access removed)",
                     access="removes: " + ", ".join(removed), duration="permanent")


def alert(request: Request) -> str:
    """What an unshare asks, for a lock screen: ``remove dev's access to payments-api-2026.11 in prod``."""
    params = request.params
    who = cardtext.several(params.get("targets") or []) or "the organisation"
    return f"remove {who}'s access to {cardtext.alert_ami(request)} in {cardtext.alert_place(params.get('source'))}"
