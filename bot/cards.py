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

from aws.actions.copy import default_copy_name
from bot.requests import (
    ACTIVE,
    PENDING_APPROVAL,
    REVOKED,
    STATE_LABELS,
    STEP_DONE,
    STEP_FAILED,
    STEP_UNDONE,
    Request,
    Step,
)
from bot.slacktext import channel as channel_link
from bot.slacktext import code, escape, mention, plain

APPROVE_ACTION = "amibot_approve"
DENY_ACTION = "amibot_deny"
VIEW_CHANGES_ACTION = "amibot_view_changes"
DECISION_BLOCK = "decision"
CHANGES_VIEW = "amibot_exact_changes"
COPY_NAME_MARK = "{copy-name}"  # in a copy step's description: the real name, known once the request has its number
REQUEST_LABEL_MARK = "{request-label}"  # in a step's description: `R-<n>-<uid>`, the provenance tag value, known once stored
SECTION_LIMIT = 3000
MODAL_BLOCKS = 100

STATE_EMOJI = {
    "pending_approval": ":hourglass_flowing_sand:",
    "approved": ":white_check_mark:",
    "running": ":gear:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "denied": ":no_entry:",
    "expired": ":zzz:",
    "cancelled": ":heavy_multiplication_x:",
    "active": ":large_green_circle:",
    "revoked": ":lock:",
    "partial": ":warning:",
}
STEP_MARK = {STEP_DONE: ":white_check_mark:", STEP_FAILED: ":x:", STEP_UNDONE: ":leftwards_arrow_with_hook:"}


def section(text: str) -> dict[str, Any]:
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


def step_line(request: Request, step: Step) -> str:
    """One step of the plan: its number is kept whatever its state (later steps refer
    to earlier ones by number), and a copy shows the name it will really have."""
    mark = STEP_MARK.get(step.state, "")
    description = step.description
    if COPY_NAME_MARK in description:
        name = step.params.get("name") or default_copy_name(step.params.get("source_name", ""), request.display_id)
        description = description.replace(COPY_NAME_MARK, name)
    description = description.replace(REQUEST_LABEL_MARK, f"{request.display_id}-{request.uid}")
    return f"{mark + ' ' if mark else ''}{step.seq}. [{step.account_alias}] {description}"


def risk(request: Request) -> str:
    """The main risk in one line: a reboot, a key policy change, or the accounts that gain access."""
    params = request.params
    if request.kind == "migrate":
        instance = request.facts.get("instance") or {}
        who = f"{escape(instance['name'])} ({params.get('instance_id')})" if instance.get("name") else str(params.get("instance_id"))
        if params.get("no_reboot"):
            return f"creates an image of {who} in `{params.get('source')}` *without* a reboot (the image may not be consistent), then launches a copy"
        return f"reboots {who} in `{params.get('source')}` to image it, then launches a copy in {params.get('availability_zone')}"
    policy_steps = [s for s in request.steps if "key_policy" in s.action]
    targets = ", ".join(f"`{t}`" for t in params.get("targets") or [])
    if request.kind == "copy":
        return f"cross-account: a copy of {params.get('image_id')} from `{params.get('source')}` into `{params.get('target')}` ({params.get('target_region')})"
    if policy_steps:
        keys = ", ".join(sorted({str(s.params.get("key_arn", "")).rsplit("/", 1)[-1] for s in policy_steps}))
        return f"changes the key policy of {keys} in `{params.get('source')}`" + (f"; cross-account to {targets}" if targets else "")
    verb = "removes access" if request.kind == "unshare" else "cross-account access"
    scope = targets or ("the organisation" + (f" OU {params['ou_id']}" if params.get("ou_id") else ""))
    extra = " with `allow-copy` (the data can be copied out)" if params.get("allow_copy") else ""
    return f"{verb}: {params.get('image_id')} in `{params.get('source')}` for {scope}{extra}"


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
    run_steps = [s for s in request.steps if s.phase == "run"]
    if request.state == PENDING_APPROVAL:
        lines.append(f"*Changes:* {len(run_steps)} AWS step(s) — see *View exact changes* before deciding")
    else:
        done = sum(1 for s in run_steps if s.state == STEP_DONE)
        lines.append(f"*Steps:* {done} of {len(run_steps)} done" + ("".join(f" {STEP_MARK.get(s.state, '▫️')}" for s in run_steps) if len(run_steps) <= 12 else ""))
    for alias in request.approver_accounts:
        if alias in request.approvals:
            lines.append(f"`{alias}`: approved by {mention(request.approvals[alias])}")
        elif request.state == PENDING_APPROVAL:
            who = ", ".join(mention(o) for o in owners.get(alias, [])) or "nobody"
            lines.append(f"`{alias}`: waiting for {who}")
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
    buttons.append({"type": "button", "action_id": VIEW_CHANGES_ACTION, "value": request.display_id,
                    "text": {"type": "plain_text", "text": "View exact changes"}})
    blocks.append({"type": "actions", "block_id": DECISION_BLOCK, "elements": buttons})
    footer = f"{request.display_id} · created {_when(request.created_at)}"
    if request.state == PENDING_APPROVAL:
        footer += f" · expires {_when(request.expires_at)}"
    if request.active_until and request.state == ACTIVE:
        footer += f" · share ends {_when(request.active_until)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return blocks


def _when(timestamp: float | None) -> str:
    from bot.messages import when  # one clock format for every message

    return when(timestamp)


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
    for step in (s for s in request.steps if s.phase == "run"):
        detail = result_detail(step.result) if step.state in (STEP_DONE, STEP_UNDONE) else ""
        lines.append(step_line(request, step) + (f" — {detail}" if detail else ""))
    return _cap("\n".join(lines), 3900)


def result_detail(result: dict[str, Any]) -> str:
    """What a finished step reports beside its description (a copy's new AMI, a grant id)."""
    if result.get("summary"):  # an action's own one-line account of what it did (copy)
        return str(result["summary"])
    if result.get("grant_id"):
        return f"grant id `{escape(result['grant_id'])}`" + ("" if result.get("created", True) else " (already existed)")
    if result.get("already_present"):
        return "already in place before: " + ", ".join(escape(next(iter(e.values()))) for e in result["already_present"])
    return ""


def reminder_note(request: Request, hours: int) -> str:
    return f":bell: Reminder: {request.display_id} still needs your decision; it expires in about {hours} h ({_when(request.expires_at)})."


def ended_dm(request: Request, final_text: str) -> str:
    """The requester's DM when their request ends (any final state)."""
    where = channel_link(request.channel)
    return f"{final_text}\n(Your request {request.display_id} in {where}.)"
