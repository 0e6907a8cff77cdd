"""What a copy says: its risk line on the card and in the Approve confirm, and the
launch-role notes its final reply ends with (an after-success hook)."""

from __future__ import annotations

from typing import Any

from bot.requests import Request
from bot.verbs import wording
from bot.verbs.common import statement_pointer, statement_text, verified_launch_notes


def risk(request: Request) -> str:
    """A copy's main risk: the image's data goes into another account (or region)."""
    params = request.params
    return f"cross-account: a copy of {params.get('image_id')} from `{params.get('source')}` into `{params.get('target')}` ({params.get('target_region')})"


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
    return (f"copy {wording.ami(request)} {wording.place(params.get('source'), params.get('source_region'), params.get('target_region'))}"
            f" → {wording.place(params.get('target'), params.get('target_region'), params.get('source_region'))}")
