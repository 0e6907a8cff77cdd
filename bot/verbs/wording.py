"""Words every verb's ``text.py`` builds its notification summary from (issue 18: the
lock screen): the AMI by its name (its id when it has none), accounts by their
configured names, arrows for from → to. AWS's words (an AMI name) are escaped here."""

from __future__ import annotations

from bot.requests import Request
from bot.slacktext import escape

__all__ = ["ami", "escape", "place", "several"]


def ami(request: Request) -> str:
    """The AMI as people know it: its name as the preflight read it, else its id."""
    image = request.facts.get("image") or {}
    name = image.get("name")
    return escape(name) if name else escape(request.params.get("image_id") or "an AMI")


def place(alias: object, region: object = None, home_region: object = None) -> str:
    """An account by its name, with the region where it differs from ``home_region``."""
    return escape(f"{alias}:{region}" if region and region != home_region else alias)


def several(names: list[str], shown: int = 3) -> str:
    """``a, b, c`` or ``a, b, c +2``: a list kept short for a phone."""
    head = ", ".join(escape(n) for n in names[:shown])
    return head + (f" +{len(names) - shown}" if len(names) > shown else "")
