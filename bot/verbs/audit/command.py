"""``/ami audit``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import AMI_ID_RE, AccountRef, Parser, flag, keyword, require
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class AuditCommand:
    """``audit <ami> from <acct[:region]> [--drift]``, or ``audit --drift`` alone (the stored findings)."""

    image_id: str | None
    source: AccountRef | None
    drift: bool = False


def parse(p: Parser) -> AuditCommand:
    """The words after ``audit``."""
    tok = p.peek()
    if tok is not None and keyword(tok) == "drift":
        p.take()
        p.end()
        return AuditCommand(None, None, drift=True)
    image_id = p.subject(AMI_ID_RE, "an AMI id (or `--drift` alone for the drift findings)", "ami-0123456789abcdef0")
    got = p.options({"from": p.source, "drift": flag})
    require(p, got, "from", "<account[:region]>")
    return AuditCommand(image_id, got["from"], bool(got.get("drift", False)))  # type: ignore[arg-type]


SYNTAX = Syntax(
    verb="audit",
    parse=parse,
    usage="/ami audit   <ami-id> from <acct[:region]> [--drift]  |  /ami audit --drift",
    example="/ami audit ami-0123456789abcdef0 from prod:eu-west-1",
    summary="Who can use an AMI, and what amibot changed",
    options="--drift",
)
