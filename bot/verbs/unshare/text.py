"""What an unshare says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs.share.text import access_risk


def risk(request: Request) -> str:
    """An unshare's main risk: the key policy it changes back, or who loses access."""
    return access_risk(request, "removes access")
