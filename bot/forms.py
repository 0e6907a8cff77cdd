"""The request form (a modal), the answer that offers it for a command the grammar
could not read, and the App Home tab: the Block Kit of these surfaces and the form's
answers read back.

The form itself is ``bot.form_view`` (its blocks, following the chosen operation, whose
fields each verb declares in ``bot/verbs/<verb>/form.py``) and ``bot.form_answers``
(reading, rendering into the slash grammar's text, field errors); ``bot.form_prefill``
reads what an unreadable command still says. Their names are re-exported here.

The form does not have rules of its own: a submission is rendered into the text the
slash command would take (``render``) and judged by the grammar, so the form accepts
and refuses exactly what ``/ami`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from bot import cards, grammar, listing
from bot.config import Config
from bot.errors import UsageError
from bot.form_answers import ERROR_TEXT_LIMIT, answers, field_errors, in_form_words, render
from bot.form_prefill import understood
from bot.form_view import (
    MAX_OPTIONS,
    OPERATIONS,
    OPTION_TEXT_LIMIT,
    REQUEST_FORM_VIEW,
    clip_option_text,
    opened_in,
    option,
    plain as _plain,
    regions,
    request_form,
)
from bot.messages import escape
from bot.requests import STATE_LABELS, Request
from bot.verbs import registry
from bot.verbs.lexer import keyword_form
from bot.verbs.form_fields import CHANNEL, OPERATION, REASON, REASON_FIELD, FormAnswers

__all__ = [  # the form's names, re-exported for the handlers and services
    "AMI", "CHANNEL", "ERROR_TEXT_LIMIT", "FormAnswers", "HOME_UNSHARE_ACTION", "HomeContent", "MAX_OPTIONS", "OPEN_FORM_ACTION",
    "OPEN_PREFILLED_ACTION", "OPERATION", "OPERATIONS", "OPTION_TEXT_LIMIT", "REASON", "REASON_FIELD", "REGION", "REQUEST_FORM_VIEW",
    "REQUEST_SHORTCUT", "SOURCE", "ami_options", "answers", "chosen_source", "clip_option_text", "field_errors", "home_view",
    "in_form_words", "offers_form", "opened_in", "option", "prefilled", "regions", "render", "request_form", "unreadable_answer",
    "unshare_text",
]

REQUEST_SHORTCUT = "amibot_request"  # the global shortcut's callback id (slack/manifest*.yml)
OPEN_FORM_ACTION = "amibot_open_form"  # "New request" on the App Home
OPEN_PREFILLED_ACTION = "amibot_open_form_prefilled"  # "Open the form" under a command the grammar could not read
HOME_UNSHARE_ACTION = "amibot_home_unshare"
SOURCE, REGION, AMI = "source", "region", "ami"  # the fields the AMI picker reads
MAX_HOME_ITEMS = 15
BUTTON_VALUE_LIMIT = 2000  # Slack's limit on a button's value


def ami_options(images: Iterable[Any], *, loading: bool = False, query: str = "") -> dict[str, Any]:
    """The answer to an option load of the AMI picker (``images`` have ``image_id``
    and ``name``): at most 100 options, each text ≤ 75 characters, escaped."""
    options = [option(f"{i.image_id} · {i.name}" if i.name else i.image_id, i.image_id) for i in images][:MAX_OPTIONS]
    if not options and loading:
        options = [option("Still loading this account's AMIs… type again in a moment", "loading")]
    return {"options": options}


def chosen_source(view: dict[str, Any], config: Config) -> tuple[str | None, str]:
    """The source account alias and region chosen so far (for the AMI picker)."""
    values = (view.get("state") or {}).get("values") or {}
    pick = lambda block: (((values.get(block) or {}).get(block) or {}).get("selected_option") or {}).get("value")  # noqa: E731
    return pick(SOURCE), pick(REGION) or config.bot.default_region


def prefilled(text: str, config: Config) -> FormAnswers:
    """The form answers an unreadable command still holds (``bot.form_prefill``)."""
    return understood(text, config)


def offers_form(command_text: str) -> bool:
    """Whether "Open the form" goes with the answer to this unreadable command: not when
    it names a verb the form does not offer (``status``, ``list``…)."""
    first = (command_text.split() or [""])[0]
    found = registry.verb(keyword_form(first.strip("\"'")))
    return found is None or found.in_form


def unreadable_answer(problem: str, command_text: str) -> dict[str, Any]:
    """The ephemeral answer to a command the grammar could not read: the problem (and
    usage) as text, and a button that opens the form prefilled with what was understood
    (the command's text rides in the button's value)."""
    return {
        "text": problem,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": problem[:3000]}},
            {"type": "actions", "block_id": "amibot_unreadable", "elements": [
                {"type": "button", "action_id": OPEN_PREFILLED_ACTION, "text": _plain("Open the form"),
                 "value": command_text[:BUTTON_VALUE_LIMIT]},
            ]},
        ],
    }


# -- the App Home ---------------------------------------------------------------------------


@dataclass
class HomeContent:
    """What one person's App Home shows."""

    waiting: list[tuple[Request, list[str]]]  # requests they can decide, with the accounts
    mine: list[Request]  # their recent requests
    mine_total: int
    shares: list[Request]  # active time-boxed shares they asked for or own
    notice: str | None = None  # e.g. why a click from the Home changed nothing


def _section(text: str, accessory: dict[str, Any] | None = None, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(text)}


def _line(request: Request) -> str:
    state = STATE_LABELS.get(request.state, request.state)
    return f"*{request.display_id}* {listing.thread_link(request)} `{escape(request.command_text)}` — {state} · {listing.slack_date(request.created_at)}"


def home_view(content: HomeContent, command: str) -> dict[str, Any]:
    """The App Home tab (``views.publish``)."""
    blocks: list[dict[str, Any]] = [
        _section(f"*amibot* — AMI operations with owner approval. Type `{escape(command)}` or use the button.",
                 {"type": "button", "action_id": OPEN_FORM_ACTION, "text": _plain("New request"), "style": "primary"}),
    ]
    if content.notice:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": content.notice[:3000]}]})
    blocks.append(_header("Waiting on you"))
    if not content.waiting:
        blocks.append(_section("Nothing waits for your approval."))
    for request, accounts in content.waiting[:MAX_HOME_ITEMS]:
        # The same decision as on the card (issue 18): the risk line, Approve with its
        # confirm, Deny opening the reason form, View exact changes (bot.cards).
        blocks.append(_section(f"{_line(request)}\nAsked by <@{request.requester}> · your approval for {', '.join(f'`{a}`' for a in accounts)}"
                               f"\n*Risk:* {cards.risk(request)}"))
        blocks.append({"type": "actions", "block_id": f"decision:{request.display_id}", "elements": cards.decision_buttons(request)})
    if len(content.waiting) > MAX_HOME_ITEMS:
        blocks.append(_context(f"showing {MAX_HOME_ITEMS} of {len(content.waiting)}: `{escape(command)} list pending` shows more"))
    blocks.append(_header("Your recent requests"))
    if content.mine:
        blocks.append(_section("\n".join(_line(r) for r in content.mine)))
        if content.mine_total > len(content.mine):
            blocks.append(_context(f"showing {len(content.mine)} of {content.mine_total}: `{escape(command)} list mine` shows more"))
    else:
        blocks.append(_section("You have not asked for anything yet."))
    blocks.append(_header("Active time-boxed shares"))
    if not content.shares:
        blocks.append(_section("No time-boxed share is active."))
    for share in content.shares[:MAX_HOME_ITEMS]:
        until = f" until {listing.slack_date(share.active_until)}" if share.active_until else ""
        blocks.append(_section(
            f"{_line(share)}{until}",
            {"type": "button", "action_id": HOME_UNSHARE_ACTION, "value": share.display_id, "text": _plain("Unshare")},
            block_id=f"share:{share.display_id}",
        ))
    return {"type": "home", "blocks": blocks[:100]}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def unshare_text(share_command_text: str, region: str | None) -> str:
    """The ``unshare`` that undoes a share, from the share's own command text."""
    command = grammar.parse_command(share_command_text)
    if not isinstance(command, grammar.ShareCommand):
        raise UsageError(f"`{share_command_text}` is not a share", grammar.usage_for("unshare"))
    source = command.source.account + (f":{command.source.region or region}" if (command.source.region or region) else "")
    if command.organization:
        target = "org"
    elif command.ou_id:
        target = command.ou_id
    else:
        target = ",".join(command.targets)
    return f"unshare {command.image_id} from {source} to {target}"
