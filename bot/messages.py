"""Every message amibot shows in Slack, built in one place.

Block Kit limits respected here: 50 blocks per message, 3,000 characters per section
text, button text ≤ 75 characters. Also the one place that turns errors into words
(``error_text``): typed errors carry their own message; unexpected ones get a short
id that is also logged.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone
from typing import Any

from aws.errors import AwsFailure, is_aws_error, translate
from bot.errors import AmibotError, UsageError
from bot.requests import PENDING_APPROVAL, STATE_LABELS, STEP_DONE, STEP_FAILED, STEP_UNDONE, Request

log = logging.getLogger("amibot")

APPROVE_ACTION = "amibot_approve"
DENY_ACTION = "amibot_deny"
DECISION_BLOCK = "decision"
DENY_REASON_VIEW = "amibot_deny_reason"
REASON_BLOCK = "reason"
SECTION_LIMIT = 3000
MAX_BLOCKS = 50

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


def error_text(error: BaseException) -> str:
    """Plain words for any error. Unexpected errors get an id that is also logged."""
    if isinstance(error, UsageError):
        # It quotes the user's own words: escape them so Slack shows, not parses, them.
        return escape(error.user_message())
    if isinstance(error, AmibotError):
        return error.user_message()
    if isinstance(error, Exception) and is_aws_error(error):
        return translate(error).plain()
    error_id = secrets.token_hex(3)
    log.error("unexpected error %s", error_id, exc_info=error)
    return f"Something unexpected went wrong (error id `{error_id}`). It is in the bot's log; nothing further was changed."


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 20] + "\n… (truncated)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _chunks(lines: list[str], limit: int = SECTION_LIMIT - 100) -> list[str]:
    chunks, current = [], ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def mention(user: str) -> str:
    """A Slack mention of a user (U…) or a user group (S…)."""
    return f"<!subteam^{user}>" if user.startswith("S") else f"<@{user}>"


def headline(request: Request) -> str:
    """One line naming the request, used in every message about it."""
    return f"*{request.display_id}* · `{request.command_text}`"


def root_text(request: Request) -> str:
    """The notification text of the root message (shown where blocks are not)."""
    return f"{request.display_id}: {request.command_text} — {STATE_LABELS.get(request.state, request.state)}"


def root_blocks(request: Request, owners: dict[str, list[str]], progress: str | None = None) -> list[dict[str, Any]]:
    """The request's root message: what, who, what was checked, the exact plan, and
    (while pending) the Approve and Deny buttons."""
    state = STATE_LABELS.get(request.state, request.state)
    emoji = STATE_EMOJI.get(request.state, "")
    blocks: list[dict[str, Any]] = [
        _section(f"{emoji} {headline(request)}\nRequested by {mention(request.requester)} · *{state}*" + (f" · {progress}" if progress else "")),
    ]
    checked = request.facts.get("checked", [])
    if checked:
        blocks.append(_section("*Checked before asking you*\n" + "\n".join(f"• {c}" for c in checked)))
    plan_lines = []
    for step in request.steps:
        mark = STEP_MARK.get(step.state, f"{step.seq}.")
        plan_lines.append(f"{mark} [{step.account_alias}] {step.description}")
    after = request.facts.get("after", [])
    chunks = _chunks(["*Exact changes on approval*", *plan_lines, *after])
    blocks += [_section(c) for c in chunks[: MAX_BLOCKS - 8]]
    approvals_lines = []
    for alias in request.approver_accounts:
        if alias in request.approvals:
            approvals_lines.append(f"`{alias}`: approved by {mention(request.approvals[alias])}")
        else:
            who = ", ".join(mention(o) for o in owners.get(alias, [])) or "nobody"
            approvals_lines.append(f"`{alias}`: waiting for an owner ({who})")
    blocks.append(_section("*Approvals*\n" + "\n".join(approvals_lines)))
    if request.error:
        blocks.append(_section(f"*What went wrong*\n{request.error}"))
    if request.state == PENDING_APPROVAL:
        blocks.append(
            {
                "type": "actions",
                "block_id": DECISION_BLOCK,
                "elements": [
                    {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": request.display_id, "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": request.display_id, "text": {"type": "plain_text", "text": "Deny"}},
                ],
            }
        )
    footer = f"{request.display_id} · created {when(request.created_at)}"
    if request.state == PENDING_APPROVAL:
        footer += f" · expires {when(request.expires_at)}"
    if request.active_until:
        footer += f" · share ends {when(request.active_until)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return blocks[:MAX_BLOCKS]


def status_text(request: Request) -> str:
    """``/ami status`` answer."""
    lines = [headline(request), f"State: *{STATE_LABELS.get(request.state, request.state)}* · requested by {mention(request.requester)}"]
    for step in request.steps:
        mark = STEP_MARK.get(step.state, "•")
        lines.append(f"{mark} {step.description}" + (f" — {step.error}" if step.error else ""))
    for alias, approver in request.approvals.items():
        lines.append(f"Approved for `{alias}` by {mention(approver)}")
    if request.error:
        lines.append(f"Error: {request.error}")
    return "\n".join(lines)


def list_text(requests: list[Request], scope: str) -> str:
    """``/ami list`` answer."""
    if not requests:
        return f"No {scope} requests."
    lines = [f"*{scope.capitalize()} requests*"]
    for r in requests:
        lines.append(f"• *{r.display_id}* `{r.command_text}` — {STATE_LABELS.get(r.state, r.state)} ({mention(r.requester)})")
    return "\n".join(lines)


def step_done_text(request: Request, description: str, detail: str = "") -> str:
    return f":white_check_mark: {request.display_id}: {description}" + (f"\n{detail}" if detail else "")


def failure_text(request: Request, step_description: str, why: str, undone: list[str], remains: list[str]) -> str:
    """The final reply of a failed request: which step, why (already in words, see
    ``error_text``), what was undone, what remains."""
    lines = [f":x: {mention(request.requester)} {request.display_id} failed at: {step_description}", why]
    lines.append("Undone: " + ("; ".join(undone) if undone else "nothing needed undoing"))
    if remains:
        lines.append("Remains: " + "; ".join(remains))
    return "\n".join(lines)


def deny_form(request: Request) -> dict[str, Any]:
    """The modal a Deny click opens: an optional reason the requester will read."""
    return {
        "type": "modal",
        "callback_id": DENY_REASON_VIEW,
        "private_metadata": request.display_id,
        "title": {"type": "plain_text", "text": f"Deny {request.display_id}"[:24]},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"{headline(request)}\nDenying changes nothing in AWS. The requester sees your reason in the thread."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": REASON_BLOCK, "multiline": True, "max_length": 500},
            },
        ],
    }


def deny_reason(view: dict[str, Any]) -> str | None:
    """The reason typed in the Deny form, if any."""
    return ((view.get("state") or {}).get("values", {}).get(REASON_BLOCK, {}).get(REASON_BLOCK) or {}).get("value")
