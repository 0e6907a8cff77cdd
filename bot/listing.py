"""``/ami status`` and ``/ami list``: who may read a request, and the words for it.

A request's details (accounts, key ARNs, the plan) are shown only to people who may
see them: its requester, the owners of the accounts it touches, and the members of
the channel it lives in (asked of Slack, cached briefly). Anyone else learns that it
exists (its id and state), not what it contains.

Times are Slack dates (``<!date^…>``), shown in each reader's own time zone; each
request links to its thread (``chat.getPermalink``, kept in the store).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterable

from bot import messages, slacktext
from bot.config import Config
from bot.requests import STATE_LABELS, Request

LIST_LIMIT = 50

# The heading of each ``list`` scope, and what to say when it is empty.
SCOPE_WORDS = {
    "pending": ("Waiting for approval", "No requests are waiting for approval."),
    "mine": ("Your requests", "You have no requests."),
    "active": ("In progress or active", "No requests are in progress or active."),
    "all": ("All requests", "No requests yet."),
}


def slack_date(timestamp: float | None) -> str:
    """A time Slack shows in the reader's own time zone, with a UTC fallback."""
    if not timestamp:
        return "-"
    fallback = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(timestamp)}^{{date_short_pretty}} {{time}}|{fallback}>"


def thread_link(request: Request) -> str:
    """A link to the request's thread, when its permalink is known."""
    return f"<{request.permalink}|thread>" if request.permalink else ""


class Visibility:
    """Who may read a request's details."""

    def __init__(self, config: Config, owners: Callable[[str], set[str]], channel_members: Callable[[str], Iterable[str]]):
        self.config = config
        self.owners = owners  # account alias -> user ids (groups expanded)
        self.channel_members = channel_members  # channel -> member user ids

    def touched_accounts(self, request: Request) -> list[str]:
        """Aliases of the configured accounts a request changes or reaches."""
        found = list(request.approver_accounts)
        for step in request.steps:
            ids = [step.account_id, *step.params.get("account_ids", [])]
            for account_id in ids:
                account = self.config.account_by_id(str(account_id))
                if account is not None and account.alias not in found:
                    found.append(account.alias)
        return found

    def may_see(self, request: Request, user: str) -> bool:
        """Requester, owners of the accounts it touches, members of its channel."""
        if user == request.requester:
            return True
        for alias in self.touched_accounts(request):
            if alias in self.config.accounts and user in self.owners(alias):
                return True
        return user in set(self.channel_members(request.channel))


def status_text(request: Request, visible: bool) -> str:
    """``/ami status``: the details for those who may see them, else that it exists."""
    state = STATE_LABELS.get(request.state, request.state)
    if not visible:
        return (
            f"*{request.display_id}* exists · *{state}* · asked {slack_date(request.created_at)}\n"
            "Its details are shown only to its requester, the owners of the accounts it touches "
            "and the members of the channel it was asked in."
        )
    lines = [messages.status_text(request)]
    times = f"Asked {slack_date(request.created_at)} in <#{request.channel}>"
    if request.state == "pending_approval":
        times += f" · expires {slack_date(request.expires_at)}"
    if request.active_until:
        times += f" · share ends {slack_date(request.active_until)}"
    if request.permalink:
        times += f" · {thread_link(request)}"
    lines.append(times)
    # The uid is the random part of the `amibot:request` tag on what the request made
    # (`R-17` or `R-17-<uid>`): searching Slack for a tag value finds the request.
    lines.append(f"Request uid `{slacktext.escape(request.uid)}` (tag `amibot:request` = `{request.display_id}` or `{request.display_id}-{slacktext.escape(request.uid)}` on what it made; "
                 f"`/ami history {slacktext.escape(request.uid)}` finds it)")
    return "\n".join(lines)


def list_text(requests: list[Request], scope: str, total: int, visible: Callable[[Request], bool]) -> str:
    """``/ami list``: one line per request, newest first, at most :data:`LIST_LIMIT`."""
    heading, empty = SCOPE_WORDS.get(scope, SCOPE_WORDS["all"])
    if not requests:
        return empty
    count = f"showing {len(requests)} of {total}" if total > len(requests) else f"{total}"
    lines = [f"*{heading}* ({count})"]
    for r in requests:
        state = STATE_LABELS.get(r.state, r.state)
        if visible(r):
            link = f" {thread_link(r)}" if r.permalink else ""
            lines.append(f"• *{r.display_id}*{link} `{messages.escape(r.command_text)}` — {state} · <@{r.requester}> · {slack_date(r.created_at)}")
        else:
            lines.append(f"• *{r.display_id}* — {state} · {slack_date(r.created_at)} (details hidden: not your request, account or channel)")
    return "\n".join(lines)
