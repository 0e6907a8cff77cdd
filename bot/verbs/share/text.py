"""What a share says: its card fields and risk line (the card and the Approve confirm),
and the launch-role notes its final reply ends with (an after-success hook)."""

from __future__ import annotations

from typing import Any

from bot.requests import Request
from bot.verbs import cardtext
from bot.verbs.common import statement_pointer, statement_text, verified_launch_notes
from bot.slacktext import escape
from bot.verbs.cardtext import CardFacts, ami, duration, encrypted, names, place, source_key_names


def key_policy_keys(request: Request) -> str:
    """The keys whose policy the plan changes (org and OU shares), by their key id."""
    steps = [s for s in request.steps if "key_policy" in s.action]
    return ", ".join(sorted({escape(str(s.params.get("key_arn", "")).rsplit("/", 1)[-1]) for s in steps}))


def audience(request: Request, target_names: list[str] | None = None) -> str:
    """Who gains (or loses) access, by name: the accounts, the organisation, or the OU."""
    params = request.params
    if params.get("ou_id"):
        return f"every account in OU {escape(params['ou_id'])}"
    if params.get("organization"):
        return "every account in the organisation"
    return names(target_names if target_names is not None else params.get("targets") or [])


def access_risk(request: Request, effect: str, target_names: list[str] | None = None) -> str:
    """The risk of a change of access: who gains (``effect`` = "gains") or loses
    ("loses") launch access to which AMI, and the key it touches."""
    params = request.params
    who = audience(request, target_names)
    line = f"{who} {effect} launch access to {params.get('image_id')} in `{escape(params.get('source'))}`"
    keys = key_policy_keys(request)
    if keys:
        line += f"; the key policy of {keys} in `{escape(params.get('source'))}` " + ("lets them use the key" if effect == "gains" else "loses amibot's statements")
    elif encrypted(request) and effect == "gains":
        line += f" and use of its key {source_key_names(request)} (a KMS grant)"
    elif encrypted(request) and any(s.action.startswith("kms.") for s in request.steps):
        line += "; the KMS grants amibot made are revoked"
    if params.get("allow_copy") and effect == "gains":
        line += "; with `allow-copy` the data can be copied out"
    return line


def risk(request: Request) -> str:
    """A share's main risk: who gains access, to what, with which key."""
    return access_risk(request, "gains")


def access_words(request: Request) -> str:
    """What the targets can do once shared."""
    can = ["launch"]
    if request.params.get("allow_copy"):
        can.append("copy (`allow-copy`)")
    if encrypted(request):
        can.append(f"use the key {source_key_names(request)}" + (" (key policy)" if key_policy_keys(request) else " (grant)"))
    return ", ".join(can)


def to_words(request: Request, target_names: list[str] | None = None) -> str:
    """The To of a share or unshare: account names, the organisation, or the OU."""
    params = request.params
    if params.get("ou_id"):
        return f"OU {escape(params['ou_id'])}"
    if params.get("organization"):
        return "the organisation"
    return ", ".join(escape(t) for t in (target_names if target_names is not None else params.get("targets") or []))


def card(request: Request) -> CardFacts:
    """A share's card fields."""
    params = request.params
    to = to_words(request)
    return CardFacts(subject=ami(request), route=f"{place(params.get('source'), params.get('region'))} → {to}",
                     access=access_words(request), duration=duration(request, permanent="until unshared"))


def launch_notes(request: Request, store: Any, third: Any) -> list[str]:
    """An encrypted share's final message: IAM's answers for the launch roles, and
    the statement every target's roles need."""
    if not _keys(request):
        return []
    return verified_launch_notes(request) + [statement_pointer(request, _who(request))]


def _keys(request: Request) -> list[str]:
    return [k["arn"] for k in (request.facts.get("image") or {}).get("keys", [])]


def _who(request: Request) -> str:
    return ", ".join(f"`{t}`" for t in request.params.get("targets") or []) or "the organisation's accounts"


def statement(request: Request) -> str | None:
    """The IAM statement the targets' roles need for the image's keys (an encrypted share)."""
    keys = _keys(request)
    return statement_text(keys, request.params["region"], _who(request)) if keys and request.kind == "share" else None


def alert(request: Request) -> str:
    """What a share asks, for a lock screen: ``share payments-api-2026.11 prod → dev``."""
    params = request.params
    to = cardtext.several(params.get("targets") or []) or ("the organisation" + (f" OU {params['ou_id']}" if params.get("ou_id") else ""))
    hours = (params.get("duration_seconds") or 0) / 3600
    return f"share {cardtext.alert_ami(request)} {cardtext.alert_place(params.get('source'))} → {to}" + (f" for {hours:g} h" if hours else "")
