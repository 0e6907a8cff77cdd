"""``/ami history``: past requests, newest first, paged, with who decided each; and the
same requests as a CSV for a security review (``csv``: sent to the asker's DM).

Who sees what is ``/ami status``'s rule, not another one: a request is listed only for
those :meth:`bot.listing.Visibility.may_see` lets read it (its requester, the owners of
the accounts it touches, the members of its channel). Requests the asker may not see
are left out entirely, not even counted.

Paging is by cursor: the *Next* button carries the command's canonical text and the
number of the last request shown; a click re-reads both (the grammar parses the text
again, the visibility rule is applied to the clicker) and shows the older ones.

The CSV is the request log's exporter (``bot.request_log``: one exporter for the
command line and for Slack), restricted to the listed requests, with people's names
resolved and every cell safe to open in a spreadsheet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from bot import policy, request_log, slacktext
from bot.config import AccountConfig, Config
from bot.errors import AmibotError
from bot.listing import Visibility, slack_date, thread_link
from bot.requests import APPROVED, CANCELLED, DENIED, EXPIRED, STATE_LABELS, Request
from bot.verbs.history.command import HistoryCommand

PAGE_SIZE = 10
SCAN_CHUNK = 200  # request numbers read at a time while filling a page
MAX_SCAN = 2000  # requests read for one page at most (the answer stays inside Slack's 3 s); Next goes on from there
CSV_LIMIT = 5000  # requests in one export at most
MAX_CSV_SCAN = 50000  # requests read for one export at most (the worker builds it, not the ack)
NEXT_ACTION = "amibot_history_next"
_NO_TARGETS = ("retire", "tag", "migrate")  # verbs that change accounts without giving anyone access


@dataclass(frozen=True)
class Page:
    """One page of history: its requests (newest first) and the cursor of the next."""

    requests: list[Request]
    next_before: int | None  # the number the next page starts below, None on the last page
    searched_to: int | None = None  # the page stopped after MAX_SCAN requests: the oldest read


class History:
    """The history of requests one person may see, filtered as they asked."""

    def __init__(self, config: Config, store: Any, visibility: Visibility, account_for: Callable[[str, str], AccountConfig]):
        self.config = config
        self.store = store
        self.visibility = visibility
        self.account_for = account_for  # (typed account, user) -> the account; unknown: a clear error

    # -- finding -----------------------------------------------------------------------

    def page(self, command: HistoryCommand, user: str, before: int | None = None, size: int = PAGE_SIZE) -> Page:
        """The next ``size`` requests ``user`` may see that match, older than ``before``."""
        found, stopped_at = self._matching(command, user, before, size + 1, MAX_SCAN)
        if len(found) > size:
            return Page(found[:size], found[size - 1].id)
        return Page(found, stopped_at, stopped_at)

    def _matching(self, command: HistoryCommand, user: str, before: int | None, wanted: int, max_scan: int) -> tuple[list[Request], int | None]:
        """Up to ``wanted`` matching requests, newest first, reading at most ``max_scan``;
        and, when it stopped at that limit, the oldest number it read (None otherwise)."""
        account = self.account_for(command.account, user) if command.account else None
        since = _since(command.since)
        found: list[Request] = []
        scanned = 0
        while True:
            ids = self.store.history_ids(before=before, since=since, requester=command.by, number=command.number, uid=command.uid,
                                         limit=min(SCAN_CHUNK, max_scan - scanned))
            for number in ids:
                request = self.store.get(number)
                if self._matches(request, command, account) and self.visibility.may_see(request, user):
                    found.append(request)
                    if len(found) == wanted:
                        return found, None
            scanned += len(ids)
            if len(ids) < SCAN_CHUNK and scanned < max_scan or not ids:
                return found, None
            if scanned >= max_scan:
                return found, ids[-1]
            before = ids[-1]

    def _matches(self, request: Request, command: HistoryCommand, account: AccountConfig | None) -> bool:
        if account is not None:
            source, targets = policy.touched(self.config, request.kind, request.params)
            if account.alias not in {source, *targets, *self.visibility.touched_accounts(request)}:
                return False
        if command.image_id:
            where = json.dumps([request.params, [[s.params, s.result] for s in request.steps]])
            if not re.search(rf"(?<![0-9a-f-]){re.escape(command.image_id)}(?![0-9a-f])", where):
                return False
        return True

    # -- what it says ----------------------------------------------------------------------

    def line(self, request: Request) -> str:
        """One request: id (linked to its thread), when, operation, AMI, from → to,
        requester, who decided (break-glass marked), outcome."""
        source, targets = policy.touched(self.config, request.kind, request.params)
        if request.kind in _NO_TARGETS:  # the accounts it changes, not "from → to" (design.md §2: no targets)
            where = ", ".join(slacktext.escape(a) for a in dict.fromkeys([source, *self.visibility.touched_accounts(request)]) if a)
        else:
            where = slacktext.escape(source or "?") + (" → " + ", ".join(slacktext.escape(t) for t in targets) if targets else "")
        ami = request.params.get("image_id") or request.params.get("instance_id") or ""
        name = ((request.facts.get("image") or {}).get("name")) or ""
        what = f"*{slacktext.escape(request.kind)}* " + (slacktext.code(ami, 40) if ami else "") + (f" ({slacktext.escape(name)})" if name else "")
        link = thread_link(request)
        head = f"*{request.display_id}*" + (f" {link}" if link else "")
        state = STATE_LABELS.get(request.state, request.state)
        return (f"{head} · {slack_date(request.created_at)} · {what} · {where}\n"
                f"asked by {slacktext.mention(request.requester)} · {self.deciders(request)} · *{slacktext.escape(state)}* · uid `{slacktext.escape(request.uid)}`")

    def deciders(self, request: Request) -> str:
        """Who approved (per account; each voter under a two-owner rule), denied,
        cancelled or let it expire; a break-glass self-approval is marked."""
        parts: list[str] = []
        for alias in request.approver_accounts:
            voters = request.votes.get(alias) or ([request.approvals[alias]] if alias in request.approvals else [])
            if alias in request.approvals:
                parts.append(f"`{slacktext.escape(alias)}` approved by " + ", ".join(slacktext.mention(v) for v in voters))
            elif voters:  # a two-owner rule, one vote so far
                parts.append(f"`{slacktext.escape(alias)}`: approved by " + ", ".join(slacktext.mention(v) for v in voters) + ", another owner still needed")
        for event in self.store.events(request.id):
            to = event.get("to_state")
            actor = str(event.get("actor") or "")
            if to == APPROVED and actor.startswith("policy:"):
                parts.append(f"approved by policy `{slacktext.escape(actor[len('policy:'):])}`")
            elif to in (DENIED, CANCELLED):
                parts.append(f"{STATE_LABELS[to]} by {slacktext.mention(actor)}")
            elif to == EXPIRED:
                parts.append("nobody decided in time")
        if request.params.get("break_glass_by"):
            parts.append(f":rotating_light: break-glass: {slacktext.mention(request.params['break_glass_by'])} approved their own request")
        return "; ".join(parts) or "not decided yet"

    def answer(self, command: HistoryCommand, user: str, before: int | None = None) -> tuple[str, list[dict[str, Any]]]:
        """The page as a text fallback and blocks (one section per request, a Next button)."""
        page = self.page(command, user, before)
        title = "*Request history*" + (f" — {_described(command)}" if _described(command) else "")
        further = (f"\nSearched back to R-{page.searched_to} without finding {'more' if page.requests else 'any'}; *Next* searches further back."
                   if page.searched_to is not None else "")
        if not page.requests:
            text = f"{title}\nNo requests you may see match." + ("" if before is None else " (no older ones)") * (page.searched_to is None) + further
            return text, [_section(text), *_next(page, command)]
        lines = [self.line(r) for r in page.requests]
        blocks = [_section(title), *(_section(line) for line in lines)]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "Newest first. Shown: requests you asked for, requests touching accounts you own, and requests in channels you are in. "
            f"{slacktext.code(self.config.bot.command + ' ' + command.render(with_csv=False) + ' csv')} sends them to you as a file." + further)}]})
        return "\n".join([title, *lines]) + further, blocks + _next(page, command)

    # -- the export --------------------------------------------------------------------

    def export(self, command: HistoryCommand, user: str, names: Callable[[str], str] | None) -> tuple[str, str, int]:
        """The CSV of every matching request ``user`` may see (the request log's columns),
        its file name and how many requests it holds."""
        requests, _ = self._matching(command, user, None, CSV_LIMIT, MAX_CSV_SCAN)
        trail = self.store.request_log(request_ids=[r.id for r in requests])
        text = request_log.render(request_log.events(trail, names=names), "csv")
        stamp = datetime.fromtimestamp(self.store.clock(), timezone.utc).strftime("%Y%m%d-%H%M")
        return f"amibot-history-{stamp}.csv", text, len(requests)


def cursor_value(before: int, command: HistoryCommand) -> str:
    """What the Next button carries: where the next page starts, and the command."""
    return f"{before}|{command.render(with_csv=False)}"


def read_cursor(value: str) -> tuple[int, str]:
    """The Next button's value back: the number to start below and the command text."""
    before, _, text = (value or "").partition("|")
    if not before.isdigit() or not text.startswith("history"):
        raise AmibotError("That button is not a history page. Nothing was read.", fix="Ask again with `/ami history`.")
    return int(before), text


def _next(page: Page, command: HistoryCommand) -> list[dict[str, Any]]:
    """The Next button, when there is more to look at."""
    if page.next_before is None:
        return []
    return [{"type": "actions", "block_id": "history_paging", "elements": [{
        "type": "button", "action_id": NEXT_ACTION, "text": {"type": "plain_text", "text": "Next (older)"},
        "value": cursor_value(page.next_before, command)}]}]


def _since(day: str | None) -> float | None:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() if day else None


def _described(command: HistoryCommand) -> str:
    """The filters in words (the typed parts escaped, the person as a mention)."""
    words = [slacktext.code(w, 60) for w in (command.account, command.image_id) if w]
    if command.number is not None or command.uid:
        words.append(slacktext.code(HistoryCommand(number=command.number, uid=command.uid).render()[len("history "):], 60))
    if command.since:
        words.append(f"since {command.since}")
    if command.by:
        words.append(f"asked by {slacktext.mention(command.by)}")
    return " · ".join(words)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
