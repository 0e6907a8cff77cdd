"""How a request's plan and times read, wherever they are shown: the marks of a step's
state and of a request's state, one step's line, and the one clock format. Both the
card (``bot.cards``) and the other messages (``bot.messages``) use them, and a verb's
plan writes the marks into its step descriptions.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aws.actions.copy import default_copy_name
from bot.requests import STEP_DONE, STEP_FAILED, STEP_UNDONE, Request, Step
from bot.slacktext import escape

COPY_NAME_MARK = "{copy-name}"  # in a copy step's description: the real name, known once the request has its number
REQUEST_LABEL_MARK = "{request-label}"  # in a step's description: `R-<n>-<uid>`, the provenance tag value, known once stored

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
# Each mark with its word: a screen reader reads an emoji by its name, one at a time
# ("white check mark"); the word says the state (issue 18, Block Kit done properly).
STEP_MARK = {STEP_DONE: ":white_check_mark: done ·", STEP_FAILED: ":x: failed ·", STEP_UNDONE: ":leftwards_arrow_with_hook: undone ·"}


def step_line(request: Request, step: Step) -> str:
    """One step of the plan: its number is kept whatever its state (later steps refer
    to earlier ones by number), and a copy shows the name it will really have. The
    description carries values from users and AWS (tag keys and values, names): it is
    escaped here, the one place every surface reads a step from."""
    mark = STEP_MARK.get(step.state, "")
    description = escape(step.description)
    if COPY_NAME_MARK in description:
        name = step.params.get("name") or default_copy_name(step.params.get("source_name", ""), request.display_id)
        description = description.replace(COPY_NAME_MARK, escape(name).replace("`", "ˋ"))
    description = description.replace(REQUEST_LABEL_MARK, f"{request.display_id}-{request.uid}")
    return f"{mark + ' ' if mark else ''}{step.seq}. [{step.account_alias}] {description}"


def when(timestamp: float | None) -> str:
    """A time as every message shows it (UTC, to the minute); ``-`` for none."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(timestamp: float | None) -> str:
    """A time Slack shows in the reader's own time zone (``<!date^…>``, "Formatting
    text for app surfaces": date formatting), with the UTC text as its fallback."""
    if not timestamp:
        return "-"
    return f"<!date^{int(timestamp)}^{{date_short_pretty}} {{time}}|{when(timestamp)}>"
