"""What a distribution says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs import wording


def risk(request: Request) -> str:
    """A distribution's main risk: copies of the image's data into other accounts and
    regions (and shares of those copies)."""
    params = request.params
    targets = ", ".join(f"`{t}`" for t in params.get("targets") or []) or "no target (every copy exists already)"
    shared = ", ".join(f"`{a}`" for a in params.get("share_with") or [])
    return (f"cross-account copies: {params.get('image_id')} from `{params.get('source')}` into {targets}"
            + (f"; each copy shared with {shared}" if shared else ""))


def alert(request: Request) -> str:
    """What a distribution asks, for a lock screen: ``distribute payments-api-2026.11 prod → dev:eu-west-1, prod:eu-west-1 +1``."""
    params = request.params
    targets = wording.several(params.get("targets") or []) or "no new target"
    return f"distribute {wording.ami(request)} {wording.place(params.get('source'))} → {targets}"
