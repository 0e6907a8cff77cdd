"""What a copy says: its card fields and risk line (the card and the Approve confirm),
and the launch-role notes its final reply ends with (an after-success hook)."""

from __future__ import annotations

from typing import Any

from bot.requests import Request
from bot.verbs import cardtext
from bot.verbs.common import statement_pointer, statement_text, verified_launch_notes
from bot.slacktext import escape
from bot.verbs.cardtext import CardFacts, ami, aws_managed, aws_managed_warning, key_name, place


def risk(request: Request) -> str:
    """A copy's main risk: the image's data goes into another account (or only into
    another region of the same account: then it is said so, not "cross-account")."""
    params = request.params
    source, target = escape(params.get("source")), escape(params.get("target"))
    if source == target:
        return f"a copy of {params.get('image_id')} in another region of `{source}` ({escape(params.get('target_region'))}); no other account gains access"
    return (f"cross-account: a copy of {params.get('image_id')}'s data goes from `{source}` into `{target}` "
            f"({escape(params.get('target_region'))}), owned and controlled by `{target}`")


def card(request: Request) -> CardFacts:
    """A copy's card fields; a warning when the copy would get an AWS-managed key."""
    params = request.params
    key = request.facts.get("destination_key") or {}
    target = escape(params.get("target"))
    access = f"`{target}` owns the copy: launch, copy, share" + (f"; encrypted with its key {key_name(key)}" if key else "")
    warnings = (aws_managed_warning([f"`{target}` ({escape(params.get('target_region'))})"], key),) if aws_managed(key) else ()
    return CardFacts(subject=ami(request), route=f"{place(params.get('source'), params.get('source_region'))} → {place(params.get('target'), params.get('target_region'))}",
                     access=access, duration=f"permanent (the copy is `{target}`'s)", warnings=warnings)


def launch_notes(request: Request, store: Any, third: Any) -> list[str]:
    """An encrypted copy's final message: the statement the target's roles need for
    the copy's key (the target's own key, used through EC2 like any other)."""
    if not request.params.get("kms_key_arn"):
        return []
    return verified_launch_notes(request) + [statement_pointer(request, f"`{request.params['target']}`")]


def statement(request: Request) -> str | None:
    """The IAM statement the target's roles need for the copy's key."""
    key = request.params.get("kms_key_arn")
    return statement_text([key], request.params["region"], f"`{request.params['target']}`") if key else None


def alert(request: Request) -> str:
    """What a copy asks, for a lock screen: ``copy payments-api-2026.11 prod → dev:eu-west-1``."""
    params = request.params
    return (f"copy {cardtext.alert_ami(request)} {cardtext.alert_place(params.get('source'), params.get('source_region'), params.get('target_region'))}"
            f" → {cardtext.alert_place(params.get('target'), params.get('target_region'), params.get('source_region'))}")
