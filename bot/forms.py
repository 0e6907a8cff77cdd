"""The request form (a modal) and the App Home tab: every Block Kit dict of these two
surfaces is built here, and the form's answers are read back here.

The form does not have rules of its own: a submission is rendered into the text the
slash command would take (``render``) and judged by the grammar, so the form accepts
and refuses exactly what ``/ami`` does, and its errors are the grammar's own words,
put under the field they concern (``response_action: errors``).

Slack limits respected here: 100 blocks per view, 100 options per select (static or
external), option text at most 75 characters, view titles at most 24.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from bot import cards, grammar, listing
from bot.config import Config
from bot.errors import UsageError
from bot.messages import escape
from bot.requests import STATE_LABELS, Request
from bot.verbs import registry

REQUEST_FORM_VIEW = "amibot_request_form"
REQUEST_SHORTCUT = "amibot_request"  # the global shortcut's callback id (slack/manifest*.yml)
OPEN_FORM_ACTION = "amibot_open_form"  # "New request" on the App Home
HOME_UNSHARE_ACTION = "amibot_home_unshare"

OPERATION, SOURCE, REGION, AMI, INSTANCE = "operation", "source", "region", "ami", "instance"
TARGETS, TARGET_OTHER, TARGET_REGION, ZONE = "targets", "target_other", "target_region", "zone"
KMS, NAME, OPTIONS, DURATION, REASON, CHANNEL = "kms", "name", "options", "duration", "reason", "channel"

OPERATIONS = registry.form_verbs()  # the verbs the form offers, with their summaries (bot/verbs/<verb>)
FLAGS = {"allow-copy": "allow-copy (share: targets may copy it)", "verify": "verify (copy: test from the target)", "no-reboot": "no-reboot (migrate)"}
MAX_OPTIONS = 100
OPTION_TEXT_LIMIT = 75
MAX_HOME_ITEMS = 15
ERROR_TEXT_LIMIT = 300


# -- small pieces ------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def option(text: str, value: str) -> dict[str, Any]:
    """A select option: ``text`` escaped and cut to Slack's 75 characters with an ellipsis."""
    return {"text": _plain(clip_option_text(text)), "value": value[:150]}


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


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = True, hint: str | None = None) -> dict[str, Any]:
    block = {"type": "input", "block_id": block_id, "optional": optional, "label": _plain(label), "element": {"action_id": block_id, **element}}
    if hint:
        block["hint"] = _plain(hint)
    return block


def _text_input(placeholder: str, *, multiline: bool = False, max_length: int = 200) -> dict[str, Any]:
    return {"type": "plain_text_input", "placeholder": _plain(placeholder), "multiline": multiline, "max_length": max_length}


def _static(options: list[dict[str, Any]], placeholder: str, initial: str | None = None, multi: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "multi_static_select" if multi else "static_select", "placeholder": _plain(placeholder), "options": options[:MAX_OPTIONS]}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return element


def regions(config: Config) -> list[str]:
    """The regions the config names: the default region first, then every region of an
    account's keys or test subnets."""
    found = [config.bot.default_region]
    for account in config.accounts.values():
        for region in [*account.kms_keys, *account.verify_subnets]:
            if region not in found:
                found.append(region)
    return found


# -- the request form ---------------------------------------------------------------------


def request_form(config: Config, channel: str | None = None, sources: list[str] | None = None) -> dict[str, Any]:
    """The modal ``/ami`` (no text) and the global shortcut open. ``sources``: the
    aliases the person may request from (``accounts.<a>.requesters``); None: all."""
    targets = [option(f"{alias} ({a.id})", alias) for alias, a in config.accounts.items()]
    shown = [alias for alias in config.accounts if sources is None or alias in sources]
    accounts = [option(f"{alias} ({config.accounts[alias].id})", alias) for alias in shown]
    region_options = [option(r, r) for r in regions(config)]
    first = next(iter(shown), None)
    if first is None:
        return {"type": "modal", "callback_id": REQUEST_FORM_VIEW, "title": _plain("New AMI request"), "close": _plain("Close"),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "You may not request from any account here (`accounts.<a>.requesters`). Ask an account's owners."}}]}
    channel_element: dict[str, Any] = {
        "type": "conversations_select",
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        # Slack then sends a response_url for the chosen channel: the answer that
        # follows (a refused preflight, say) reaches the requester as for /ami.
        "response_url_enabled": True,
    }
    if channel:
        channel_element["initial_conversation"] = channel
    else:
        channel_element["default_to_current_conversation"] = True
    command = config.bot.command
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Everything here can also be typed: `{escape(command)} help` shows how. Owners of the accounts concerned approve before anything changes."}},
        _input(OPERATION, "Operation", _static([option(label, op) for op, label in OPERATIONS.items()], "Choose"), optional=False),
        _input(SOURCE, "Source account", _static(accounts, "Account", initial=first), optional=False),
        _input(REGION, "Source region", _static(region_options, "Region", initial=config.bot.default_region)),
        _input(AMI, "AMI (share, unshare, copy)", {"type": "external_select", "placeholder": _plain("Search by name or id"), "min_query_length": 0},
               hint="The source account's own AMIs in the source region, newest first."),
        _input(INSTANCE, "Instance (migrate)", _text_input("i-0123456789abcdef0", max_length=19)),
        _input(TARGETS, "Target accounts (share, unshare, copy)", _static(targets, "Accounts", multi=True)),
        _input(TARGET_OTHER, "Or: organisation or OU (share, unshare)", _text_input("org, or ou-ab12-cd345678", max_length=80)),
        _input(TARGET_REGION, "Target region (copy)", _static(region_options, "Same as the source")),
        _input(ZONE, "Availability Zone (migrate)", _text_input("e.g. us-east-1b", max_length=30)),
        _input(KMS, "KMS key in the target (copy)", _text_input("alias/<name>, a key id or ARN; default: the account's key", max_length=2048)),
        _input(NAME, "Name of the copy (copy)", _text_input("3 to 128 characters", max_length=128)),
        _input(OPTIONS, "Options", {"type": "checkboxes", "options": [option(label, flag) for flag, label in FLAGS.items()]}),
        _input(DURATION, "For how long (share)", _text_input("e.g. 12h or 7d; empty: until unshared", max_length=20)),
        _input(REASON, "Reason", _text_input("Why? The approvers read it.", multiline=True, max_length=grammar.MAX_REASON_LENGTH)),
        _input(CHANNEL, "Channel the request lives in", channel_element, optional=False,
               hint="The approval message and its thread go there."),
    ]
    return {
        "type": "modal",
        "callback_id": REQUEST_FORM_VIEW,
        "title": _plain("New AMI request"),
        "submit": _plain("Ask for approval"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def ami_options(images: Iterable[Any], *, loading: bool = False, query: str = "") -> dict[str, Any]:
    """The answer to an option load of the AMI picker (``images`` have ``image_id``
    and ``name``): at most 100 options, each text ≤ 75 characters, escaped."""
    options = [option(f"{i.image_id} · {i.name}" if i.name else i.image_id, i.image_id) for i in images][:MAX_OPTIONS]
    if not options and loading:
        options = [option("Still loading this account's AMIs… type again in a moment", "loading")]
    return {"options": options}


@dataclass(frozen=True)
class FormAnswers:
    """What the form's fields hold, as plain values."""

    operation: str | None
    source: str | None
    region: str | None
    ami: str | None
    instance: str | None
    targets: tuple[str, ...]
    target_other: str | None
    target_region: str | None
    zone: str | None
    kms: str | None
    name: str | None
    flags: tuple[str, ...]
    duration: str | None
    reason: str | None
    channel: str | None


def _leaf(values: dict[str, Any], block: str) -> dict[str, Any]:
    return (values.get(block) or {}).get(block) or {}


def _selected(values: dict[str, Any], block: str) -> str | None:
    return (_leaf(values, block).get("selected_option") or {}).get("value")


def _typed(values: dict[str, Any], block: str) -> str | None:
    value = _leaf(values, block).get("value")
    return " ".join(value.split()) if value and value.strip() else None


def answers(view: dict[str, Any]) -> FormAnswers:
    """Read a submitted form's ``state.values``."""
    values = (view.get("state") or {}).get("values") or {}
    return FormAnswers(
        operation=_selected(values, OPERATION),
        source=_selected(values, SOURCE),
        region=_selected(values, REGION),
        ami=_selected(values, AMI),
        instance=_typed(values, INSTANCE),
        targets=tuple(o["value"] for o in _leaf(values, TARGETS).get("selected_options") or []),
        target_other=_typed(values, TARGET_OTHER),
        target_region=_selected(values, TARGET_REGION),
        zone=_typed(values, ZONE),
        kms=_typed(values, KMS),
        name=_typed(values, NAME),
        flags=tuple(o["value"] for o in _leaf(values, OPTIONS).get("selected_options") or []),
        duration=_typed(values, DURATION),
        reason=_typed(values, REASON),
        channel=_leaf(values, CHANNEL).get("selected_conversation"),
    )


def chosen_source(view: dict[str, Any], config: Config) -> tuple[str | None, str]:
    """The source account alias and region chosen so far (for the AMI picker)."""
    values = (view.get("state") or {}).get("values") or {}
    return _selected(values, SOURCE), _selected(values, REGION) or config.bot.default_region


def _quoted(text: str) -> str:
    # The grammar's quotes end at a quote that ends a word: keep the user's own
    # double quotes from closing it early.
    return '"' + text.replace('"', "'") + '"'


def render(a: FormAnswers) -> str:
    """The slash-command text the answers stand for (without the command itself)."""
    op = a.operation or ""
    words = [op]
    words.append((a.instance if op == "migrate" else a.ami) or "")
    if a.source:
        words += ["from", a.source + (f":{a.region}" if a.region else "")]
    if op == "migrate":
        if a.zone:
            words += ["to", a.zone]
    else:
        target = ",".join([*a.targets, *([a.target_other] if a.target_other else [])])
        if target:
            words += ["to", target + (f":{a.target_region}" if a.target_region else "")]
        elif a.target_region:
            words += ["to", f":{a.target_region}"]
    if a.kms:
        words += ["kms", a.kms]
    if a.name:
        words += ["name", _quoted(a.name)]
    words += list(a.flags)
    if a.duration:
        words += ["for", a.duration]
    if a.reason:
        words += ["reason", _quoted(a.reason)]
    return " ".join(w for w in words if w)


# Which field an error of the grammar is about. The grammar starts a problem with the
# word it could not take, in backticks: the first field whose markers that word holds,
# else the first whose markers the whole problem mentions (most specific first).
# Anything else is shown under the operation.
def _markers(a: FormAnswers) -> list[tuple[str, list[str]]]:
    return [
        (REASON, ["reason"]),
        (DURATION, ["`for", "duration"]),
        (KMS, ["kms", "KMS key"] + ([a.kms] if a.kms else [])),
        (NAME, ["name `", "AMI name", "`name`"]),
        (OPTIONS, list(FLAGS)),
        (INSTANCE, ["instance id"] + ([a.instance] if a.instance else [])),
        (AMI, ["AMI id"]),
        (ZONE, ["Availability Zone", "zone"] + ([a.zone] if a.zone else [])),
        (TARGET_REGION, [f":{a.target_region}"] if a.target_region else []),
        (TARGET_OTHER, [f"`{a.target_other}"] if a.target_other else []),
        (TARGETS, ["`to", "target", "public sharing", "OU", "one account", "is named twice", "is the source account", "organisation"] + list(a.targets)),
        (REGION, ["region"]),
        (SOURCE, ["`from", "source", "account"]),
    ]


def field_errors(a: FormAnswers) -> dict[str, str]:
    """``{block_id: message}`` for a submission the grammar refuses; empty if it is
    a valid request. The message is the grammar's own problem text."""
    if a.operation not in OPERATIONS:
        return {OPERATION: "Choose an operation."}
    try:
        command = grammar.parse_command(render(a))
    except UsageError as error:
        problem = error.detail
        if len(problem) > ERROR_TEXT_LIMIT:
            problem = problem[: ERROR_TEXT_LIMIT - 1] + "…"
        first = re.search(r"`[^`]*`", problem)
        markers = _markers(a)
        block = next((b for b, marks in markers if first and any(m and m in first.group(0) for m in marks)), None) \
            or next((b for b, marks in markers if any(m and m in problem for m in marks)), OPERATION)
        return {block: problem}
    if not a.channel:
        return {CHANNEL: "Choose the channel the request lives in: its approval message and thread go there."}
    del command
    return {}


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
