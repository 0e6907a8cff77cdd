"""The request form's Block Kit: a modal that follows the operation.

The operation menu dispatches its choice (``dispatch_action``): the bot answers with
``views.update`` (``handlers.forms``) showing only that operation's fields, as its
folder declares them (``bot/verbs/<verb>/form.py``). Every field keeps its block id and
action id across updates, so what the person already filled in stays (Slack keeps an
input's state when the new view has the same block and action ids:
https://api.slack.com/methods/views.update, "Preserving input entry").

A form may open prefilled (``answers``): initial values are given only where they are
among the field's options (Slack refuses an ``initial_option`` that is not).

Slack limits respected here: 100 blocks per view, 100 options per select (static or
external), option text at most 75 characters, view titles at most 24.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from bot import grammar
from bot.config import Config
from bot.slacktext import escape
from bot.verbs import registry
from bot.verbs.form_fields import CHANNEL, OPERATION, REASON_FIELD, SOURCE, Field, FormAnswers

REQUEST_FORM_VIEW = "amibot_request_form"
OPERATIONS = registry.form_verbs()  # the verbs the form offers, with their summaries (bot/verbs/<verb>)
MAX_OPTIONS = 100
OPTION_TEXT_LIMIT = 75


def plain(text: str) -> dict[str, Any]:
    """A ``plain_text`` object."""
    return {"type": "plain_text", "text": text}


def option(text: str, value: str) -> dict[str, Any]:
    """A select option: ``text`` escaped and cut to Slack's 75 characters with an ellipsis."""
    return {"text": plain(clip_option_text(text)), "value": value[:150]}


def clip_option_text(text: str, limit: int = OPTION_TEXT_LIMIT) -> str:
    """``text`` escaped (``&``, ``<``, ``>``) and, if longer than ``limit`` once escaped,
    cut with an ellipsis (never in the middle of an escape)."""
    text = " ".join(text.split())
    shown = escape(text)
    if len(shown) <= limit:
        return shown
    cut = len(text)
    while cut and len(escape(text[:cut])) + 1 > limit:
        cut -= 1
    return escape(text[:cut].rstrip()) + "…"


def regions(config: Config) -> list[str]:
    """The regions the config names: the default region first, then every region of an
    account's keys or test subnets."""
    found = [config.bot.default_region]
    for account in config.accounts.values():
        for region in [*account.kms_keys, *account.verify_subnets]:
            if region not in found:
                found.append(region)
    return found


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None = None) -> dict[str, Any]:
    block = {"type": "input", "block_id": block_id, "optional": optional, "label": plain(label), "element": {"action_id": block_id, **element}}
    if hint:
        block["hint"] = plain(hint)
    return block


def _select(options: list[dict[str, Any]], placeholder: str, initial: Iterable[str] = (), *, multi: bool = False) -> dict[str, Any]:
    options = options[:MAX_OPTIONS]
    element: dict[str, Any] = {"type": "multi_static_select" if multi else "static_select", "placeholder": plain(placeholder), "options": options}
    chosen = [o for value in initial for o in options if o["value"] == value]
    if chosen and multi:
        element["initial_options"] = chosen
    elif chosen:
        element["initial_option"] = chosen[0]
    return element


def _text(placeholder: str, value: str | None, *, multiline: bool = False, max_length: int = 200) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if placeholder:
        element["placeholder"] = plain(placeholder)
    if value:
        element["initial_value"] = value[:max_length]
    return element


def _element(f: Field, value: Any, config: Config, sources: list[str]) -> dict[str, Any]:
    """The Block Kit element of one field, holding ``value`` where it is a valid choice."""
    many = tuple(value) if isinstance(value, (tuple, list)) else ((value,) if value else ())
    accounts = [option(f"{alias} ({config.accounts[alias].id})", alias) for alias in (sources if f.id == SOURCE.id else config.accounts)]
    region_options = [option(r, r) for r in regions(config)]
    if f.kind == "account":
        return _select(accounts, f.placeholder or "Account", (*many, *(sources[:1] if f.id == SOURCE.id else ())))
    if f.kind == "accounts":
        return _select(accounts, f.placeholder or "Accounts", many, multi=True)
    if f.kind == "region":
        return _select(region_options, f.placeholder or "Region", (*many, *((config.bot.default_region,) if f.required else ())))
    if f.kind == "regions":
        return _select(region_options, f.placeholder or "Regions", many, multi=True)
    if f.kind == "choice":
        return _select([option(label, v) for v, label in f.choices], f.placeholder or "Choose", many)
    if f.kind == "flags":
        element: dict[str, Any] = {"type": "checkboxes", "options": [option(label, v) for v, label in f.choices]}
        ticked = [option(label, v) for v, label in f.choices if v in many]
        if ticked:
            element["initial_options"] = ticked
        return element
    if f.kind == "ami":
        element = {"type": "external_select", "placeholder": plain("Search by name or id"), "min_query_length": 0}
        if many and grammar.AMI_ID_RE.fullmatch(many[0]):
            element["initial_option"] = option(many[0], many[0])
        return element
    if f.kind == "date":
        return {"type": "datepicker", **({"initial_date": many[0]} if many and _is_date(many[0]) else {})}
    if f.kind == "lines":
        return _text(f.placeholder, "\n".join(many), multiline=True, max_length=f.max_length)
    return _text(f.placeholder, many[0] if many else None, multiline=f.kind == "longtext", max_length=f.max_length)


def _is_date(text: str) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
        return True
    except ValueError:
        return False


def _channel_block(channel: str | None, value: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "conversations_select",
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        # Slack then sends a response_url for the chosen channel: the answer that
        # follows (a refused preflight, say) reaches the requester as for /ami.
        "response_url_enabled": True,
    }
    if value or channel:
        element["initial_conversation"] = value or channel
    else:
        element["default_to_current_conversation"] = True
    return _input(CHANNEL, "Channel the request lives in", element, optional=False, hint="The approval message and its thread go there.")


def request_form(config: Config, channel: str | None = None, sources: list[str] | None = None,
                 answers: FormAnswers | None = None) -> dict[str, Any]:
    """The modal ``/ami`` (no text), the global shortcut, the Home's button and "Open the
    form" open, and ``views.update`` redraws when the operation changes: the operation
    menu, then only the chosen operation's fields (prefilled from ``answers``), the
    reason and the channel. ``sources``: the aliases the person may request from
    (``accounts.<a>.requesters``); None: all. ``channel`` (where it was opened) rides in
    ``private_metadata`` so a redraw keeps it."""
    shown = [alias for alias in config.accounts if sources is None or alias in sources]
    base = {"type": "modal", "callback_id": REQUEST_FORM_VIEW, "title": plain("New AMI request"),
            "private_metadata": json.dumps({"channel": channel}) if channel else ""}
    if not shown:
        return {**base, "close": plain("Close"),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "You may not request from any account here (`accounts.<a>.requesters`). Ask an account's owners."}}]}
    answers = answers or FormAnswers(None)
    form = registry.form_of(answers.operation)
    operation = answers.operation if form is not None else None
    menu = _select([option(label, op) for op, label in OPERATIONS.items()], "Choose", (operation,) if operation else ())
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Everything here can also be typed: `{escape(config.bot.command)} help` shows how. Owners of the accounts concerned approve before anything changes."}},
        {**_input(OPERATION, "Operation", menu, optional=False), "dispatch_action": True},
    ]
    if form is None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Choose an operation: its fields appear here."}]})
    else:
        for f in (*form.fields, REASON_FIELD):
            required = f.required or (f is REASON_FIELD and config.bot.require_reason)
            blocks.append(_input(f.id, f.label, _element(f, answers.get(f.id), config, shown), optional=not required, hint=f.hint))
    blocks.append(_channel_block(channel, answers.channel))
    return {**base, "submit": plain("Ask for approval"), "close": plain("Cancel"), "blocks": blocks}


def opened_in(view: dict[str, Any]) -> str | None:
    """The channel a form was opened in (its ``private_metadata``), if any."""
    try:
        return (json.loads(view.get("private_metadata") or "{}") or {}).get("channel")
    except (ValueError, AttributeError):
        return None
