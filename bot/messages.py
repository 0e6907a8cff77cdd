"""Every message amibot shows in Slack, built in one place.

Block Kit limits respected here: 50 blocks per message, 3,000 characters per section
text, button text ≤ 75 characters. Also the one place that turns errors into words
(``error_text``): typed errors carry their own message; unexpected ones get a short
id that is also logged.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from aws.errors import is_aws_error, translate
from datetime import datetime, timezone

from bot import cards, slacktext
from bot.verbs import registry
from bot.errors import AmibotError, UsageError
from bot.plantext import slack_date, step_line, when  # noqa: F401  (when, slack_date: for its callers)
from bot.requests import STATE_LABELS, Request

log = logging.getLogger("amibot")

APPROVE_ACTION = cards.APPROVE_ACTION
DENY_ACTION = cards.DENY_ACTION
VIEW_CHANGES_ACTION = cards.VIEW_CHANGES_ACTION
APPROVE_FOR_PATTERN = r"^amibot_approve_for_(\d+)h$"  # cards.APPROVE_FOR_ACTION
REASSIGN_ACTION = cards.REASSIGN_ACTION
EXTEND_ACTION = cards.EXTEND_ACTION
DECISION_BLOCK = cards.DECISION_BLOCK
VIEW_STATEMENT_ACTION = "amibot_view_statement"  # a final reply's button: the IAM statement in a modal
STATEMENT_VIEW = "amibot_iam_statement"
DENY_REASON_VIEW = "amibot_deny_reason"
REASON_BLOCK = "reason"
SECTION_LIMIT = 3000

STATE_EMOJI = cards.STATE_EMOJI
STEP_MARK = cards.STEP_MARK


def error_text(error: BaseException) -> str:
    """Plain words for any error. Unexpected errors get an id that is also logged."""
    if isinstance(error, UsageError):
        # It quotes the user's own words: escape them so Slack shows, not parses, them.
        return escape(error.user_message())
    if isinstance(error, AmibotError):
        return error.user_message()
    if isinstance(error, Exception) and is_aws_error(error):
        return escape(translate(error).plain())  # AWS's own words may hold <, > and &
    error_id = secrets.token_hex(3)
    log.error("unexpected error %s", error_id, exc_info=error)
    return f"Something unexpected went wrong (error id `{error_id}`). It is in the bot's log; nothing further was changed."


escape = slacktext.escape  # the one escaping module (bot/slacktext.py)


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 20] + "\n… (truncated)"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


mention = slacktext.mention


def headline(request: Request) -> str:
    """One line naming the request, used in every message about it."""
    return f"*{request.display_id}* · {slacktext.code(request.command_text)}"


def root_text(request: Request) -> str:
    """The notification text of the root message (shown where blocks are not)."""
    return cards.fallback_text(request)


def clock_time(timestamp: float | None) -> str:
    """A time short enough for a lock screen: ``Thu 09:11 UTC``."""
    return datetime.fromtimestamp(timestamp or 0, timezone.utc).strftime("%a %H:%M UTC")


def lock_screen(request: Request, lead: str = "") -> str:
    """An approver's alert as a phone shows it (the ``text`` of the DM: with blocks it
    is "fallback text for notifications only", api.slack.com/methods/chat.postMessage;
    mobile notifications use nothing else, docs.slack.dev/changelog/2026/07/13/
    notification-changes): who asks you, what, from where to where, by
    when — ``Bob asks you to approve: share payments-api-2026.11 prod → dev, by Thu 09:11 UTC``.
    ``lead`` says why it comes again (``Reminder: ``)."""
    return f"{lead}{mention(request.requester)} asks you to approve: {registry.alert(request)}, by {clock_time(request.expires_at)} ({request.display_id})"


def channel_alert(request: Request) -> str:
    """The text of a card copy in an approval channel (nobody is addressed as "you")."""
    return f"{mention(request.requester)} asks for approval: {registry.alert(request)}, by {clock_time(request.expires_at)} ({request.display_id})"


def thread_link(request: Request, words: str = "the thread") -> str:
    """A link to the request's thread (its permalink, ``chat.getPermalink``), or the
    channel it lives in while the link is not known."""
    if request.permalink:
        return f"<{request.permalink}|{words}>"
    return f"{words} in {slacktext.channel(request.channel)}"


def console_link(region: str, image_id: str) -> str:
    """An AMI id linking to its page in the EC2 console, in its region (anything
    that is not an AMI id and a region is shown as code, never as a link)."""
    if not (re.fullmatch(r"ami-[0-9a-f]+", str(image_id)) and re.fullmatch(r"[a-z0-9-]+", str(region))):
        return slacktext.code(image_id)
    return f"<https://{region}.console.aws.amazon.com/ec2/home?region={region}#ImageDetails:imageId={image_id}|{image_id}>"


def reply_blocks(payload: dict[str, Any]) -> dict[str, Any]:
    """The blocks of a thread reply that has buttons (its text, then them); none else."""
    if not payload.get("buttons"):
        return {}
    return {"blocks": [*(_section(t) for t in cards.chunks(payload["text"].splitlines())), {"type": "actions", "elements": payload["buttons"]}]}


def statement_view(request: Request, statement: str) -> dict[str, Any]:
    """The modal *View IAM statement* opens: the policy the target's roles need."""
    return {
        "type": "modal",
        "callback_id": STATEMENT_VIEW,
        "private_metadata": request.display_id,
        "title": {"type": "plain_text", "text": slacktext.plain(f"{request.display_id}: IAM statement", 24)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [_section(t) for t in cards.chunks(statement.splitlines())][:20],
    }


def root_blocks(request: Request, owners: dict[str, list[str]], progress: str | None = None, **card: Any) -> list[dict[str, Any]]:
    """The request's root message: the compact card (see ``bot.cards``)."""
    return cards.card_blocks(request, owners, progress=progress, **card)


def status_text(request: Request) -> str:
    """``/ami status`` answer."""
    lines = [headline(request), f"State: *{STATE_LABELS.get(request.state, request.state)}* · requested by {mention(request.requester)}"]
    for step in request.steps:
        lines.append(step_line(request, step) + (f" — {step.error}" if step.error else ""))
    for alias, approver in request.approvals.items():
        lines.append(f"Approved for `{alias}` by {mention(approver)}")
    if request.error:
        lines.append(f"Error: {request.error}")
    statement = registry.statement(request) if request.state in ("succeeded", "active") else None
    if statement:  # the final reply shows it behind a button; here it stays in full
        lines.append(statement)
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


def expired_text(request: Request) -> str:
    """What a click on a request nobody decided in time is told."""
    return (f"{request.display_id} expired at {when(request.expires_at)}: nobody decided in time. "
            "Nothing was changed; ask again if it is still needed.")
