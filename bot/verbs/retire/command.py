"""``/ami retire``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.verbs.lexer import AMI_ID_RE, AccountRef, Parser, keyword, keyword_form, show
from bot.verbs.verb import Syntax

MODES = ("deregister", "disable", "deprecate")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class RetireCommand:
    """``retire <ami> from <acct[:region]> deregister|disable|deprecate [<YYYY-MM-DD>] [with-copies]``."""

    image_id: str
    source: AccountRef
    mode: str  # one of MODES
    date: str | None = None  # YYYY-MM-DD, deprecate only (None: now)
    with_copies: bool = False
    reason: str | None = None  # reason "…"


def parse(p: Parser) -> RetireCommand:
    """The words after ``retire``: ``from``, the mode, its date and ``with-copies``, in any order."""
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    source: AccountRef | None = None
    mode: str | None = None
    date: str | None = None
    with_copies = False
    while (tok := p.peek()) is not None:
        word = keyword_form(tok.text) if not tok.quoted else ""
        if keyword(tok) == "from" and source is None:
            p.take()
            p.last_keyword = "from"
            source = p.source("from")
        elif word in MODES:
            if mode is not None:
                raise p.fail(f"say one of {', '.join(MODES)} once (got `{mode}` and `{show(tok.text)}`)")
            p.take()
            mode = word
        elif word == "with-copies":
            if with_copies:
                raise p.fail("`with-copies` is given twice")
            p.take()
            with_copies = True
        elif _DATE_RE.fullmatch(tok.text):
            if date is not None:
                raise p.fail("give one date")
            try:
                dt.date.fromisoformat(tok.text)
            except ValueError:
                raise p.fail(f"`{show(tok.text)}` is not a date (YYYY-MM-DD)") from None
            p.take()
            date = tok.text
        else:
            raise p.fail(f"unknown word `{show(tok.text)}`: after the AMI come `from <account[:region]>`, one of {', '.join(MODES)}, "
                         "a date (deprecate only) and `with-copies`")
    if source is None:
        raise p.fail("`retire` needs `from <account[:region]>`")
    if mode is None:
        raise p.fail("`retire` needs what to do: `deprecate` (hidden from listings), `disable` (no new launches) or `deregister` (gone)")
    if date and mode != "deprecate":
        raise p.fail(f"a date goes with `deprecate` only (`{mode}` happens when approved)")
    return RetireCommand(image_id, source, mode, date, with_copies)


SYNTAX = Syntax(
    verb="retire",
    parse=parse,
    usage="/ami retire  <ami-id> from <acct[:region]> deregister|disable|deprecate [<YYYY-MM-DD>] [with-copies]",
    example="/ami retire ami-0123456789abcdef0 from prod deprecate 2026-12-31 with-copies",
    summary="Retire a golden image: deprecate, disable or deregister it (and the copies amibot made)",
    options="with-copies",
    takes_reason=True,
)
