"""``/ami history [<acct>] [<ami-id>] [<request>] [since <YYYY-MM-DD>] [by <@user>] [csv]``:
past requests, newest first, with who decided them (answered at once; ``csv`` sends
the export to the asker's DM).

The words come in any order, each at most once. ``since``, ``by`` and ``csv`` are
read as these words first (an account cannot be searched by such an alias); a word
that is an AMI id is the AMI, ``R-17``, ``R-17-<uid>`` or a request's 16-hex uid (the
``amibot:request`` tag value on what it made) is the request, and any other word is
the account (alias or 12-digit id, resolved against the config by the service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.verbs.lexer import ACCOUNT_ID_RE, ALIAS_RE, AMI_ID_RE, Parser, show
from bot.verbs.verb import Syntax

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# <@U123|name> as Slack escapes a mention, <@U123>, or the bare id.
_USER_RE = re.compile(r"<?@?([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>?", re.ASCII)
_UID_RE = re.compile(r"[0-9a-f]{16}", re.ASCII)
_REQUEST_RE = re.compile(r"r-([0-9]{1,9})(?:-([0-9a-f]{16}))?", re.ASCII)


@dataclass(frozen=True)
class HistoryCommand:
    """``history prod ami-… since 2026-11-01 by <@U0BOB> csv``."""

    account: str | None = None  # alias or id as typed (lowercased), resolved by the service
    image_id: str | None = None
    since: str | None = None  # YYYY-MM-DD, UTC midnight
    by: str | None = None  # a Slack user id: requests this person asked for
    number: int | None = None
    uid: str | None = None  # the request's uid (the amibot:request tag value's random part)
    csv: bool = False

    def render(self, *, with_csv: bool = True) -> str:
        """The canonical text of this command (what a Next button re-reads)."""
        words = ["history"]
        words += [w for w in (self.account, self.image_id) if w]
        if self.number is not None or self.uid:
            words.append(f"R-{self.number}-{self.uid}" if self.number is not None and self.uid else (f"R-{self.number}" if self.number is not None else str(self.uid)))
        if self.since:
            words.append(f"since {self.since}")
        if self.by:
            words.append(f"by <@{self.by}>")
        if self.csv and with_csv:
            words.append("csv")
        return " ".join(words)


def _date(p: Parser) -> str:
    tok = p.peek()
    if tok is None:
        raise p.fail("`since` needs a date, e.g. `since 2026-11-01` (YYYY-MM-DD, UTC)")
    word = p.take().text
    if not _DATE_RE.fullmatch(word):
        raise p.fail(f"`since {show(word)}`: write the date as YYYY-MM-DD, e.g. `since 2026-11-01`")
    try:
        date.fromisoformat(word)
    except ValueError:
        raise p.fail(f"`since {show(word)}`: there is no such day") from None
    return word


def _user(p: Parser) -> str:
    tok = p.peek()
    if tok is None:
        raise p.fail("`by` needs a person, e.g. `by @bob` picked from Slack's @ menu")
    word = p.take().text
    match = _USER_RE.fullmatch(word)
    if not match:
        raise p.fail(f"`by {show(word)}`: pick the person from Slack's @ menu so the command carries who they are "
                     "(if it still arrives as a name, the app's command needs \"Escape channels, users, and links\" on, as slack/manifest.yml sets)")
    return match.group(1)


def parse(p: Parser) -> HistoryCommand:
    """The words after ``history``, in any order, each at most once."""
    found: dict[str, object] = {}

    def put(key: str, value: object, word: str) -> None:
        if key in found:
            raise p.fail(f"`{show(word)}`: `history` takes one {key.replace('_', ' ')} (a second one was given)")
        found[key] = value

    while (tok := p.peek()) is not None:
        word = p.take().text
        lower = word.lower()
        if not tok.quoted and lower == "since":
            put("since", _date(p), word)
        elif not tok.quoted and lower == "by":
            put("by", _user(p), word)
        elif not tok.quoted and lower == "csv":
            put("csv", True, word)
        elif AMI_ID_RE.fullmatch(lower):
            put("image_id", lower, word)
        elif m := _REQUEST_RE.fullmatch(lower):
            put("request", (int(m.group(1)), m.group(2)), word)
        elif _UID_RE.fullmatch(lower):
            put("request", (None, lower), word)
        elif ALIAS_RE.fullmatch(lower) or ACCOUNT_ID_RE.fullmatch(lower.replace("-", "")):
            put("account", lower.replace("-", "") if ACCOUNT_ID_RE.fullmatch(lower.replace("-", "")) else lower, word)
        else:
            raise p.fail(f"unknown word `{show(word)}` (history takes an account, an AMI id, a request, since <YYYY-MM-DD>, by <@user> and csv)")
    number, uid = found.pop("request", (None, None))  # type: ignore[misc]
    return HistoryCommand(number=number, uid=uid, **found)  # type: ignore[arg-type]


SYNTAX = Syntax(
    verb="history", parse=parse, usage="/ami history [<acct>] [<ami-id>] [<request>] [since <YYYY-MM-DD>] [by <@user>] [csv]",
    example="/ami history prod since 2026-11-01", summary="Past requests with who decided them; csv sends the export to your DM",
)
