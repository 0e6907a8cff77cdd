"""What a distribution says: its card fields and risk line (the card and the Approve
confirm)."""

from __future__ import annotations

from bot.requests import Request
from bot.verbs import cardtext
from bot.slacktext import escape
from bot.verbs.cardtext import CardFacts, ami, aws_managed, aws_managed_warning, names, place


def _units(request: Request) -> list[tuple[str, str]]:
    """The targets as (account name, region)."""
    return [tuple(u.split(":", 1)) if ":" in u else (u, "") for u in request.params.get("targets") or []]  # type: ignore[misc]


def _skipped(request: Request) -> set[str]:
    return {s.get("unit") for s in request.params.get("skipped") or [] if isinstance(s, dict)}


def risk(request: Request) -> str:
    """A distribution's main risk: copies of the image's data into other accounts (by
    name), copies into other regions of the same account said as such, and the shares
    of the copies."""
    params = request.params
    source = params.get("source")
    skipped = _skipped(request)
    fresh = [(a, r) for a, r in _units(request) if f"{a}:{r}" not in skipped]
    other = [(a, r) for a, r in fresh if a != source]
    same = [r for a, r in fresh if a == source]
    parts = []
    if other:
        parts.append(f"cross-account: copies of {params.get('image_id')}'s data go from `{escape(source)}` into "
                     + ", ".join(f"`{escape(a)}` ({escape(r)})" for a, r in other) + ", each owned and controlled by its account")
    if same:
        regions = ", ".join(escape(r) for r in same)
        parts.append(f"also a copy in {regions}, same account `{escape(source)}`" if other
                     else f"copies of {params.get('image_id')} in other regions of `{escape(source)}` ({regions}): no other account gains access")
    if not parts:
        parts.append("no new copy: every target has its copy already")
    shared = params.get("share_with") or []
    if shared:
        parts.append(f"each copy is shared with {names(shared)} (launch access)")
    return "; ".join(parts)


def card(request: Request) -> CardFacts:
    """A distribution's card fields; a warning for each target that would get an
    AWS-managed key (the plan's default when no key is configured for it)."""
    params = request.params
    skipped = _skipped(request)
    targets = ", ".join(place(a, r) + (" (has its copy)" if f"{a}:{r}" in skipped else "") for a, r in _units(request))
    access = "each target account owns its copy: launch, copy, share"
    if params.get("share_with"):
        access += f"; {names(params['share_with'])} can launch each copy"
    keys = params.get("keys") or {}
    managed = [(unit, key) for unit, key in keys.items() if aws_managed(key)]
    warnings = (aws_managed_warning([f"`{escape(unit)}`" for unit, _ in managed], managed[0][1]),) if managed else ()
    return CardFacts(subject=ami(request), route=f"{place(params.get('source'), params.get('source_region'))} → {targets}",
                     access=access, duration="permanent (each copy is its account's)", warnings=warnings)


def alert(request: Request) -> str:
    """What a distribution asks, for a lock screen: ``distribute payments-api-2026.11 prod → dev:eu-west-1, prod:eu-west-1 +1``."""
    params = request.params
    targets = cardtext.several(params.get("targets") or []) or "no new target"
    return f"distribute {cardtext.alert_ami(request)} {cardtext.alert_place(params.get('source'))} → {targets}"
