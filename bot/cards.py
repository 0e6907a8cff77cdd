"""The approval card and what hangs off it: the compact root message (and its copies
in approval channels and owners' DMs), the confirm dialogs, the "View exact changes"
modal, the one progress reply and the reminders.

The card stays short (about 12 lines: who, what, why, the main risk, approvals,
buttons); every exact AWS call, key policy before/after and preflight fact is in the
modal, so the approver still sees every change before deciding. Every text that did
not come from the bot goes through :mod:`bot.slacktext`.

Block Kit limits (docs.slack.dev "Block Kit" reference, "Composition objects:
Confirmation dialog"): 3,000 characters per section text, 100 blocks per modal,
24-character modal titles; a confirm object's title is at most 100 characters, its
text 300, its buttons 30.
"""

from __future__ import annotations

from typing import Any

from bot.plantext import COPY_NAME_MARK, REQUEST_LABEL_MARK, STATE_EMOJI, STEP_MARK, step_line, when
from bot.requests import ACTIVE, PENDING_APPROVAL, REVOKED, STATE_LABELS, STEP_DONE, STEP_UNDONE, Request
from bot.slacktext import channel as channel_link
from bot.slacktext import code, escape, mention, plain
from bot.verbs import registry

__all__ = ["COPY_NAME_MARK", "REQUEST_LABEL_MARK", "STATE_EMOJI", "STEP_MARK", "step_line"]  # shown here, defined in bot.plantext

APPROVE_ACTION = "amibot_approve"
DENY_ACTION = "amibot_deny"
VIEW_CHANGES_ACTION = "amibot_view_changes"
APPROVE_FOR_ACTION = "amibot_approve_for_{hours}h"  # Approve for less time (1 h, 1 d)
REASSIGN_ACTION = "amibot_reassign"  # value: "R-5|<account>|<user>"
EXTEND_ACTION = "amibot_extend"  # an active time-boxed share's requester asks to move its end
SHORTER_HOURS = (1, 24)
DECISION_BLOCK = "decision"
CHANGES_VIEW = "amibot_exact_changes"
SECTION_LIMIT = 3000
MODAL_BLOCKS = 100



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


def confirm_approve(request: Request) -> dict[str, Any]:
    """The confirm dialog of the Approve button, naming the biggest effect."""
    return {
        "title": {"type": "plain_text", "text": f"Approve {request.display_id}?"},
        "text": {"type": "mrkdwn", "text": _cap(f"This {risk(request)}. It runs as soon as every account is approved.", 300)},
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Not yet"},
        "style": "primary",
    }


def confirm_deny(request: Request) -> dict[str, Any]:
    """The confirm dialog of the Deny button."""
    return {
        "title": {"type": "plain_text", "text": f"Deny {request.display_id}?"},
        "text": {"type": "mrkdwn", "text": f"Nothing changes in AWS; {mention(request.requester)} is told, with your reason if you give one."},
        "confirm": {"type": "plain_text", "text": "Deny"},
        "deny": {"type": "plain_text", "text": "Back"},
        "style": "danger",
    }


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_words(request: Request, revoked_by: str | None = None) -> str:
    """The request's state in words (a removed share names who removed it)."""
    if request.state == REVOKED and revoked_by:
        return f"share removed ({escape(revoked_by)})"
    return STATE_LABELS.get(request.state, request.state)


def card_blocks(request: Request, owners: dict[str, list[str]], *, progress: str | None = None, asked_in: str | None = None,
                note: str | None = None, revoked_by: str | None = None) -> list[dict[str, Any]]:
    """The compact approval card: the root message, and every copy of it (``asked_in``:
    the channel the request lives in, shown on copies; ``note``: e.g. a reminder)."""
    emoji = STATE_EMOJI.get(request.state, "")
    lines = [f"{emoji} *{request.display_id}* · {request.kind} · *{state_words(request, revoked_by)}*" + (f" · {escape(progress)}" if progress else "")]
    if note:
        lines.append(note)
    lines.append(f"{mention(request.requester)} asks: {code(request.command_text)}" + (f" in {channel_link(asked_in)}" if asked_in else ""))
    reason = request.params.get("reason")
    if reason:
        lines.append(f"*Why:* {escape(reason)}")
    lines.append(f"*Risk:* {risk(request)}")
    lines += policy_lines(request)
    run_steps = request.steps
    if request.state == PENDING_APPROVAL:
        lines.append(f"*Changes:* {len(run_steps)} AWS step(s) — see *View exact changes* before deciding")
    else:
        done = sum(1 for s in run_steps if s.state == STEP_DONE)
        lines.append(f"*Steps:* {done} of {len(run_steps)} done" + ("".join(f" {STEP_MARK.get(s.state, '▫️')}" for s in run_steps) if len(run_steps) <= 12 else ""))
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
    if request.error:
        lines.append(f"*What went wrong:* {_cap(request.error, 600)}")
    blocks: list[dict[str, Any]] = [section("\n".join(lines))]
    buttons: list[dict[str, Any]] = []
    if request.state == PENDING_APPROVAL:
        buttons += [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": request.display_id,
             "text": {"type": "plain_text", "text": "Approve"}, "confirm": confirm_approve(request)},
            {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": request.display_id,
             "text": {"type": "plain_text", "text": "Deny"}, "confirm": confirm_deny(request)},
        ]
        buttons += shorter_buttons(request) + reassign_menu(request, owners)
    if request.state == ACTIVE and request.active_until and request.kind == "share":
        buttons.append({"type": "button", "action_id": EXTEND_ACTION, "value": request.display_id, "text": {"type": "plain_text", "text": "Extend"}})
    buttons.append({"type": "button", "action_id": VIEW_CHANGES_ACTION, "value": request.display_id,
                    "text": {"type": "plain_text", "text": "View exact changes"}})
    blocks.append({"type": "actions", "block_id": DECISION_BLOCK, "elements": buttons})
    footer = f"{request.display_id} · created {when(request.created_at)}"
    if request.state == PENDING_APPROVAL:
        footer += f" · expires {when(request.expires_at)}"
    if request.active_until and request.state == ACTIVE:
        footer += f" · share ends {when(request.active_until)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return blocks


def waiting_for(request: Request, alias: str, owners: list[str]) -> str:
    """Who an account waits for. Owners asked by DM are not mentioned again (one alert
    per approver per request): counted, not pinged; a user group is mentioned only
    for an account configured without approval DMs (``approval_dm = false``)."""
    asked = (request.params.get("asked_by_dm") or {}).get(alias)
    if asked is None:
        return ", ".join(mention(o) for o in owners) or "nobody"
    return f"{len(asked)} owner{'' if len(asked) == 1 else 's'} (asked by DM)" if asked else "nobody"


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
    return f":bell: Reminder: {request.display_id} still needs your decision; it expires in about {hours} h ({when(request.expires_at)})."
