"""What an unshare says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs import wording
from bot.verbs.share.text import access_risk


def risk(request: Request) -> str:
    """An unshare's main risk: the key policy it changes back, or who loses access."""
    return access_risk(request, "removes access")


def alert(request: Request) -> str:
    """What an unshare asks, for a lock screen: ``remove dev's access to payments-api-2026.11 in prod``."""
    params = request.params
    who = wording.several(params.get("targets") or []) or "the organisation"
    return f"remove {who}'s access to {wording.ami(request)} in {wording.place(params.get('source'))}"
