"""What a share says: its risk line on the card and in the Approve confirm, and the
launch-role notes its final reply ends with (an after-success hook)."""

from __future__ import annotations

from typing import Any

from bot.requests import Request
from bot.verbs import wording
from bot.verbs.common import statement_pointer, statement_text, verified_launch_notes


def key_policy_keys(request: Request) -> str:
    """The keys whose policy the plan changes (org and OU shares), by their key id."""
    steps = [s for s in request.steps if "key_policy" in s.action]
    return ", ".join(sorted({str(s.params.get("key_arn", "")).rsplit("/", 1)[-1] for s in steps}))


def access_risk(request: Request, effect: str) -> str:
    """The risk of a change of access (``effect``: what it does to it): the key policy
    it changes, else who gains or loses access."""
    params = request.params
    targets = ", ".join(f"`{t}`" for t in params.get("targets") or [])
    keys = key_policy_keys(request)
    if keys:
        return f"changes the key policy of {keys} in `{params.get('source')}`" + (f"; cross-account to {targets}" if targets else "")
    scope = targets or ("the organisation" + (f" OU {params['ou_id']}" if params.get("ou_id") else ""))
    extra = " with `allow-copy` (the data can be copied out)" if params.get("allow_copy") else ""
    return f"{effect}: {params.get('image_id')} in `{params.get('source')}` for {scope}{extra}"


def risk(request: Request) -> str:
    """A share's main risk: the key policy it changes, or who gains access."""
    return access_risk(request, "cross-account access")


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
    to = wording.several(params.get("targets") or []) or ("the organisation" + (f" OU {params['ou_id']}" if params.get("ou_id") else ""))
    hours = (params.get("duration_seconds") or 0) / 3600
    return f"share {wording.ami(request)} {wording.place(params.get('source'))} → {to}" + (f" for {hours:g} h" if hours else "")
