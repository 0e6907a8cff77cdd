"""The approval card and what hangs off it: the compact root message (and its copies
in approval channels and owners' DMs), the confirm dialogs, the "View exact changes"
modal, the one progress reply and the reminders.

The card is written for a phone (issue 18): a header with the state in words, labelled
fields (Requester, AMI, From → To, Access, Duration, Why — each verb's ``card`` in its
``text.py``), the risk line and warnings, the approvals, the buttons, and small print
(the request uid, ``<!date>`` times). Every exact AWS call, key policy before/after and
preflight fact is in the modal, so the approver still sees every change before
deciding. Every text that did not come from the bot goes through :mod:`bot.slacktext`.

Block Kit limits (docs.slack.dev Block Kit reference: "Section block", "Header block",
"Confirmation dialog object"): 3,000 characters per section text, at most 10 section
fields of 2,000; a header's plain_text at most 150; 100 blocks per modal, 24-character
modal titles; a confirm dialog's parts are plain_text, its title at most 100
characters, its text 300, its buttons 30.
"""

from __future__ import annotations

import re
from typing import Any

from bot.plantext import COPY_NAME_MARK, REQUEST_LABEL_MARK, STATE_EMOJI, STEP_MARK, slack_date, step_line
from bot.requests import ACTIVE, DENIED, PENDING_APPROVAL, REVOKED, STATE_LABELS, STEP_DONE, STEP_FAILED, STEP_UNDONE, Request
from bot.slacktext import channel as channel_link
from bot.slacktext import code, escape, mention, plain
from bot.verbs import registry
from bot.verbs.cardtext import CardFacts

__all__ = ["COPY_NAME_MARK", "REQUEST_LABEL_MARK", "STATE_EMOJI", "STEP_MARK", "step_line"]  # shown here, defined in bot.plantext

APPROVE_ACTION = "amibot_approve"
DENY_ACTION = "amibot_deny"
VIEW_CHANGES_ACTION = "amibot_view_changes"
APPROVE_FOR_ACTION = "amibot_approve_for_{hours}h"  # Approve for less time (1 h, 1 d)
REASSIGN_ACTION = "amibot_reassign"  # value: "R-5|<account>|<user>"
EXTEND_ACTION = "amibot_extend"  # an active time-boxed share's requester asks to move its end
CANCEL_ACTION = "amibot_cancel"  # the requester's Cancel on the card (what `/ami cancel` does)
NUDGE_ACTION = "amibot_nudge"  # the requester's Nudge: the approvers get a reminder again
NUDGE_MINUTES = 30  # at most one Nudge per request in this long
SHORTER_HOURS = (1, 24)
DECISION_BLOCK = "decision"
REQUESTER_BLOCK = "requester"
CHANGES_VIEW = "amibot_exact_changes"
SECTION_LIMIT = 3000
MODAL_BLOCKS = 100
HEADER_LIMIT = 150  # docs.slack.dev/reference/block-kit/blocks/header-block
MAX_FIELDS, FIELD_LIMIT = 10, 2000  # docs.slack.dev/reference/block-kit/blocks/section-block
CONFIRM_TITLE_LIMIT, CONFIRM_TEXT_LIMIT, CONFIRM_BUTTON_LIMIT = 100, 300, 30  # .../composition-objects/confirmation-dialog-object
FALLBACK_LIMIT = 300



def section(text: str) -> dict[str, Any]:
    """A mrkdwn section, cut to Block Kit's 3,000 characters."""
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 20] + "\n… (truncated)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def chunks(lines: list[str], limit: int = SECTION_LIMIT - 100) -> list[str]:
    """Lines packed into section-sized texts (a longer single line is cut by ``section``)."""
    out, current = [], ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out




def risk(request: Request) -> str:
    """The main risk in one line, in the words of the request's verb (its ``text.risk``):
    a reboot, a key policy change, the accounts that gain or lose access, the tags set."""
    return registry.risk(request)


def plain_words(mrkdwn: str) -> str:
    """A mrkdwn line as plain text (a confirm dialog's text is ``plain_text``: Slack
    shows it as typed, so no escapes, backticks or stars; mentions become words)."""
    text = re.sub(r"<@([UW][A-Z0-9]+)>", "the requester", mrkdwn)
    text = text.replace("`", "").replace("*", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return plain(text)


def _confirm(title: str, text: str, confirm: str, deny: str, style: str) -> dict[str, Any]:
    """A confirm dialog within Slack's limits, every part ``plain_text``."""
    return {
        "title": {"type": "plain_text", "text": plain(title, CONFIRM_TITLE_LIMIT)},
        "text": {"type": "plain_text", "text": plain(text, CONFIRM_TEXT_LIMIT)},
        "confirm": {"type": "plain_text", "text": plain(confirm, CONFIRM_BUTTON_LIMIT)},
        "deny": {"type": "plain_text", "text": plain(deny, CONFIRM_BUTTON_LIMIT)},
        "style": style,
    }


def confirm_approve(request: Request) -> dict[str, Any]:
    """The confirm dialog of every Approve button (card, copies, Home): the risk line."""
    return _confirm(f"Approve {request.display_id}?", f"Risk: {plain_words(risk(request))}. It runs as soon as every account is approved.",
                    "Approve", "Not yet", "primary")


def confirm_cancel(request: Request) -> dict[str, Any]:
    """The confirm dialog of the requester's Cancel button."""
    return _confirm(f"Cancel {request.display_id}?", "Nothing has changed in AWS yet; the approvers are told it is cancelled.",
                    "Cancel request", "Keep it", "danger")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_words(request: Request, revoked_by: str | None = None) -> str:
    """The request's state in words (a removed share names who removed it)."""
    if request.state == REVOKED and revoked_by:
        return f"share removed ({escape(revoked_by)})"
    return STATE_LABELS.get(request.state, request.state)


def header(request: Request, progress: str | None = None) -> dict[str, Any]:
    """The card's header: the request, its operation and its state, in words (a screen
    reader reads it as it reads the notification)."""
    text = f"{request.display_id} · {request.kind} · {STATE_LABELS.get(request.state, request.state)}" + (f" · {progress}" if progress else "")
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, HEADER_LIMIT)}}


def field(label: str, value: str) -> dict[str, str]:
    """One labelled field (mrkdwn, ``value`` already escaped), within 2,000 characters."""
    return {"type": "mrkdwn", "text": _cap(f"*{label}*\n{value}", FIELD_LIMIT)}


def fields(request: Request, facts: CardFacts) -> list[dict[str, str]]:
    """Requester, AMI, From → To, Access, Duration, Why: at most 10 fields."""
    reason = request.params.get("reason")
    shown = [field("Requester", mention(request.requester)), field(facts.subject_label, facts.subject), field("From → To", facts.route),
             field("Access", facts.access)]
    if facts.duration:
        shown.append(field("Duration", facts.duration))
    shown.append(field("Why", escape(reason) if reason else "_no reason given_"))
    return shown[:MAX_FIELDS]


def steps_words(request: Request) -> str:
    """The plan's progress in words (no strip of emoji a screen reader spells out)."""
    counts: dict[str, int] = {}
    for step in request.steps:
        counts[step.state] = counts.get(step.state, 0) + 1
    words = [f"{counts.get(STEP_DONE, 0)} of {len(request.steps)} done"]
    words += [f"{counts[state]} {word}" for state, word in ((STEP_FAILED, "failed"), (STEP_UNDONE, "undone")) if counts.get(state)]
    return ", ".join(words)


def decision_lines(request: Request, owners: dict[str, list[str]], revoked_by: str | None, denied_by: str | None = None) -> list[str]:
    """Under the fields: the risk, the warnings, the policy, each account's approval,
    what went wrong."""
    facts_warnings = registry.card(request).warnings
    lines = [f"*Risk:* {risk(request)}", *facts_warnings]
    lines += policy_lines(request)
    if request.state != PENDING_APPROVAL:
        lines.append(f"*State:* {state_words(request, revoked_by)}" + (f" · steps {steps_words(request)}" if request.steps else ""))
    for alias in request.approver_accounts:
        if alias in request.approvals:
            voters = request.votes.get(alias) or [request.approvals[alias]]
            lines.append(f"`{alias}`: approved by {' and '.join(mention(v) for v in voters)}")
        elif request.state == PENDING_APPROVAL:
            who = waiting_for(request, alias, owners.get(alias, []))
            so_far = request.votes.get(alias)
            lines.append(f"`{alias}`: " + (f"approved by {', '.join(mention(v) for v in so_far)}; " if so_far else "") + f"waiting for {who}")
        for moved in request.params.get("reassigned") or []:
            if moved.get("account") == alias:
                lines.append(f"`{alias}`: reassigned by {mention(moved['by'])} to {mention(moved['to'])}")
        if alias in (request.params.get("escalated") or {}):
            lines.append(f"`{alias}`: escalated (no owner decided in time)")
    if request.state == DENIED and denied_by:
        lines.append(f"*Denied by* {mention(denied_by)}")
    if request.error:
        lines.append(f"*What went wrong:* {_cap(request.error, 600)}")
    return lines


def decision_buttons(request: Request) -> list[dict[str, Any]]:
    """Approve (with its confirm), Deny (opens the reason form at once) and View exact
    changes: the same on the card, its copies and the App Home."""
    return [
        {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": request.display_id,
         "text": {"type": "plain_text", "text": "Approve"}, "confirm": confirm_approve(request)},
        {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": request.display_id, "text": {"type": "plain_text", "text": "Deny"}},
        view_changes_button(request),
    ]


def view_changes_button(request: Request) -> dict[str, Any]:
    """The button that opens the exact changes."""
    return {"type": "button", "action_id": VIEW_CHANGES_ACTION, "value": request.display_id, "text": {"type": "plain_text", "text": "View exact changes"}}


def requester_buttons(request: Request) -> list[dict[str, Any]]:
    """The requester's own buttons while the request waits: Nudge (the approvers get a
    reminder again, at most once every ``NUDGE_MINUTES``) and Cancel."""
    return [
        {"type": "button", "action_id": NUDGE_ACTION, "value": request.display_id, "text": {"type": "plain_text", "text": "Nudge approvers"}},
        {"type": "button", "action_id": CANCEL_ACTION, "value": request.display_id, "text": {"type": "plain_text", "text": "Cancel request"},
         "confirm": confirm_cancel(request)},
    ]


def small_print(request: Request, asked_in: str | None) -> str:
    """The context line: the request's ids (its uid is the ``amibot:request`` value on
    what it makes in AWS: a Slack search for it finds this card), its times."""
    parts = [f"{request.display_id}-{request.uid}" if request.uid else request.display_id]
    if asked_in:
        parts.append(f"asked in {channel_link(asked_in)}")
    parts.append(f"asked {slack_date(request.created_at)}")
    if request.state == PENDING_APPROVAL:
        parts.append(f"expires {slack_date(request.expires_at)}")
        parts.append(f"{len(request.steps)} AWS step{'s' if len(request.steps) != 1 else ''}: see View exact changes")
    if request.active_until and request.state == ACTIVE:
        parts.append(f"share ends {slack_date(request.active_until)}")
    return " · ".join(parts)


def card_blocks(request: Request, owners: dict[str, list[str]], *, progress: str | None = None, asked_in: str | None = None,
                note: str | None = None, revoked_by: str | None = None, denied_by: str | None = None) -> list[dict[str, Any]]:
    """The approval card: the root message (with the requester's Nudge and Cancel),
    and every copy of it (``asked_in``: the channel the request lives in, shown on
    copies; ``note``: e.g. a reminder; ``denied_by``: who denied it). A header,
    labelled fields, the risk and the approvals, the buttons, the small print."""
    blocks: list[dict[str, Any]] = [header(request, progress)]
    if note:
        blocks.append(section(note))
    blocks.append({"type": "section", "fields": fields(request, registry.card(request))})
    blocks += [section(t) for t in chunks(decision_lines(request, owners, revoked_by, denied_by))]
    buttons: list[dict[str, Any]] = []
    if request.state == PENDING_APPROVAL:
        buttons += decision_buttons(request) + shorter_buttons(request) + reassign_menu(request, owners)
    else:
        if request.state == ACTIVE and request.active_until and request.kind == "share":
            buttons.append({"type": "button", "action_id": EXTEND_ACTION, "value": request.display_id, "text": {"type": "plain_text", "text": "Extend"}})
        buttons.append(view_changes_button(request))
    blocks.append({"type": "actions", "block_id": DECISION_BLOCK, "elements": buttons})
    if asked_in is None and request.state == PENDING_APPROVAL:  # the root message: the requester's buttons
        blocks.append({"type": "actions", "block_id": REQUESTER_BLOCK, "elements": requester_buttons(request)})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": small_print(request, asked_in)}]})
    return blocks


def waiting_for(request: Request, alias: str, owners: list[str]) -> str:
    """Who an account waits for. Owners asked by DM are not mentioned again (one alert
    per approver per request): counted, not pinged; a user group is mentioned only
    for an account configured without approval DMs (``approval_dm = false``)."""
    asked = (request.params.get("asked_by_dm") or {}).get(alias)
    if asked is None:
        return ", ".join(mention(o) for o in owners) or "nobody"
    return f"{len(asked)} owner{'' if len(asked) == 1 else 's'} (asked by DM)" if asked else "nobody"


def fallback_text(request: Request) -> str:
    """The message's ``text``: what a notification shows of the card (and what a screen
    reader reads first) — ``R-5: share ami-… (its name) from prod (us-east-1) to dev —
    waiting for approval``. Slack parses this text as mrkdwn: what came from users and
    AWS stays escaped."""
    if registry.verb(request.kind) is None:  # e.g. extend: its command text is the bot's own words ("extend R-1 by 24h")
        return f"{request.display_id}: {code(request.command_text, 150)[1:-1]} — {STATE_LABELS.get(request.state, request.state)}"
    params = request.params
    name = (request.facts.get("image") or request.facts.get("instance") or {}).get("name")
    subject = str(params.get("image_id") or params.get("instance_id") or "") + (f" ({escape(plain(name, 60))})" if name else "")
    route = registry.card(request).route.replace(" → ", " to ")
    text = f"{request.display_id}: {request.kind} {subject} from {route} — {STATE_LABELS.get(request.state, request.state)}"
    return _cap(re.sub(r"<@[UW][A-Z0-9]+>", "", text).replace("`", "").replace("*", ""), FALLBACK_LIMIT)


def policy_lines(request: Request) -> list[str]:
    """The card's lines about the approval policy: the rule that applied (and the tags
    it matched), approval by the rule, break-glass, a shortened share."""
    rule = request.facts.get("policy") or {}
    lines = []
    if rule.get("rule"):
        words = {"auto": "approved by the rule", "two-owners": "two owners of each account", "owners": "one owner of each account"}
        tags = ", ".join(f"{escape(k)}={escape(v)}" for k, v in (rule.get("ami_tags") or {}).items())
        lines.append(f"*Policy:* `{escape(rule['rule'])}` — {words.get(rule.get('approve'), '')}" + (f" (tags {tags})" if tags else ""))
    if request.params.get("break_glass_by"):
        lines.append(f":rotating_light: *Break-glass:* {mention(request.params['break_glass_by'])} approved their own request; the other owners were told")
    if request.params.get("shortened_by"):
        lines.append(f"*Shortened* by {mention(request.params['shortened_by'])} to {request.params['duration_seconds'] / 3600:g} h "
                     f"(asked: {request.params['asked_seconds'] / 3600:g} h)")
    return lines


def shorter_buttons(request: Request) -> list[dict[str, Any]]:
    """Approve for less time: 1 h / 1 d, for a time-boxed share asked for longer (the
    plain Approve is "as asked", which the rule's maximum already bounds)."""
    asked = request.params.get("duration_seconds")
    if request.kind != "share" or not asked:
        return []
    return [{"type": "button", "action_id": APPROVE_FOR_ACTION.format(hours=h), "value": request.display_id,
             "text": {"type": "plain_text", "text": f"Approve for {'1 d' if h == 24 else f'{h} h'}"}, "confirm": confirm_approve(request)}
            for h in SHORTER_HOURS if h * 3600 < asked]


def reassign_menu(request: Request, owners: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Reassign: a menu of the owners (users named in ``owners``) of each account still waiting."""
    options = [{"text": {"type": "plain_text", "text": plain(f"{alias}: {user}", 75)}, "value": f"{request.display_id}|{alias}|{user}"}
               for alias in request.approver_accounts if alias not in request.approvals
               for user in owners.get(alias, []) if not user.startswith("S")][:100]
    if not options:
        return []
    return [{"type": "static_select", "action_id": REASSIGN_ACTION, "placeholder": {"type": "plain_text", "text": "Reassign to…"},
             "options": options}]


def changes_view(request: Request, command: str = "/ami") -> dict[str, Any]:
    """The "View exact changes" modal: preflight facts, every AWS call (numbered) and the
    notes under the plan (key policies before and after), in sections within Block
    Kit's limits; what does not fit points to ``/ami status``."""
    lines = [f"*{request.display_id}* {code(request.command_text)}", f"Requested by {mention(request.requester)}"]
    if request.params.get("reason"):
        lines.append(f"*Why:* {escape(request.params['reason'])}")
    checked = request.facts.get("checked", [])
    if checked:
        lines += ["", "*Checked before asking you*", *(f"• {c}" for c in checked)]
    lines += ["", "*Exact changes on approval*", *(step_line(request, s) for s in request.steps)]
    after = request.facts.get("after", [])
    if after:
        lines += ["", *after]
    texts = chunks(lines)
    room = MODAL_BLOCKS - 1
    blocks = [section(t) for t in texts[:room]]
    if len(texts) > room:
        blocks[-1] = section(f"… more than fits here: `{command} status {request.display_id}` shows the rest.")
    return {
        "type": "modal",
        "callback_id": CHANGES_VIEW,
        "private_metadata": request.display_id,
        "title": {"type": "plain_text", "text": plain(f"{request.display_id}: exact changes", 24)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def progress_text(request: Request, progress: str | None) -> str:
    """The one progress reply of a running request, edited in place: every step with
    its number and mark, and the current step's progress (e.g. a copy's %)."""
    lines = [f":gear: {request.display_id} · {STATE_LABELS.get(request.state, request.state)}" + (f" · {escape(progress)}" if progress else "")]
    if request.params.get("reason"):
        lines.append(f"Why: {escape(request.params['reason'])}")
    for step in request.steps:
        detail = result_detail(step.result) if step.state in (STEP_DONE, STEP_UNDONE) else ""
        lines.append(step_line(request, step) + (f" — {detail}" if detail else ""))
    return _cap("\n".join(lines), 3900)


def result_detail(result: dict[str, Any]) -> str:
    """What a finished step reports beside its description (a copy's new AMI, a grant id)."""
    if result.get("summary"):  # an action's own one-line account of what it did (copy, tag): AWS's and users' words
        return escape(result["summary"])
    if result.get("grant_id"):
        return f"grant id `{escape(result['grant_id'])}`" + ("" if result.get("created", True) else " (already existed)")
    if result.get("already_present"):
        return "already in place before: " + ", ".join(escape(next(iter(e.values()))) for e in result["already_present"])
    return ""


def reminder_note(request: Request, hours: int) -> str:
    """The line a reminder adds on top of the card."""
    return f":bell: Reminder: {request.display_id} still needs your decision; it expires in about {hours} h ({slack_date(request.expires_at)})."


def nudge_note(request: Request) -> str:
    """The line a requester's Nudge adds on top of the card in each approver's DM."""
    return (f":bell: Reminder from {mention(request.requester)}: {request.display_id} still needs your decision; "
            f"it expires {slack_date(request.expires_at)}.")
