"""``/ami share``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from bot.verbs.lexer import (
    AMI_ID_RE,
    MAX_SHARE_DURATION,
    MIN_SHARE_DURATION,
    ORG_WORDS,
    OU_ID_RE,
    PUBLIC_WORDS,
    AccountRef,
    Parser,
    flag,
    render_targets,
    require,
    show,
)
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class ShareCommand:
    """``share <ami> from <acct[:region]> to <accounts>|org|<ou>``: launch access for other accounts."""

    image_id: str
    source: AccountRef
    targets: tuple[str, ...]
    organization: bool
    ou_id: str | None
    allow_copy: bool
    duration: timedelta | None
    verify: bool = False  # test launch from each target after the share
    reason: str | None = None  # reason "…": why, shown to the approvers and in the audit

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        words = ["share", self.image_id, "from", self.source.render(), "to", render_targets(self.targets, self.organization, self.ou_id)]
        if self.allow_copy:
            words.append("allow-copy")
        if self.duration is not None:
            hours = int(self.duration.total_seconds() // 3600)
            words += ["for", f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"]
        if self.verify:
            words.append("verify")
        return " ".join(words)


_HOURS_PER_WORD = {
    "h": 1, "hr": 1, "hrs": 1, "hour": 1, "hours": 1,
    "d": 24, "day": 24, "days": 24,
    "w": 168, "wk": 168, "week": 168, "weeks": 168,
}  # fmt: skip


def share_targets(p: Parser, kw: str) -> tuple[tuple[str, ...], bool, str | None]:
    """``to``: accounts, ``org`` or one OU id (one kind per request); never the public."""
    words: list[str] = []
    while p.at_value():
        words.extend(part for part in p.take().text.split(",") if part.strip())
    if not words:
        raise p.fail("`to` needs accounts (`to dev,staging`), `org`, or an OU id")
    accounts: list[str] = []
    organization = False
    ous: list[str] = []
    for word in words:
        word = word.strip()
        w = word.lower()
        if w in PUBLIC_WORDS:
            raise p.fail(
                f"`{show(word)}`: public sharing is never done by this bot. "
                "Name the accounts, `org` or an OU id instead"
            )
        if w in ORG_WORDS:
            if organization:
                raise p.fail(f"`{show(word)}` is named twice in `to`")
            organization = True
        elif w.startswith("ou-"):
            if not OU_ID_RE.fullmatch(w):
                raise p.fail(
                    f"`{show(word)}` is not an OU id (expected ou- then 4-32 and 8-32 "
                    "lowercase letters or digits, e.g. ou-ab12-cd345678)"
                )
            if w in ous:
                raise p.fail(f"`{show(word)}` is named twice in `to`")
            ous.append(w)
        else:
            acct = p.account(word, region_allowed=False, role="a share target").account
            if acct in accounts:
                raise p.fail(f"`{show(word)}` is named twice in `to`")
            accounts.append(acct)
    kinds = bool(accounts) + organization + bool(ous)
    if kinds > 1:
        raise p.fail(
            f"`to {show(' '.join(words))}` mixes kinds of target: "
            "give accounts, or `org`, or one OU id (one request each)"
        )
    if len(ous) > 1:
        raise p.fail(f"`{show(ous[1])}`: one OU per request")
    return tuple(accounts), organization, (ous[0] if ous else None)


def duration(p: Parser, kw: str) -> timedelta:
    """``for``: hours, days or weeks, from 1h to 90d."""
    tok = p.value(kw, "a duration, e.g. `for 12h` or `for 7d`")
    shown = tok.text
    m = re.fullmatch(r"([0-9]{1,7})\s*([a-z]*)", tok.text.lower(), re.ASCII)
    number, unit = (m.group(1), m.group(2)) if m else ("", "")
    if m and not unit and p.at_value() and _HOURS_PER_WORD.get(p.peek().text.lower()):
        unit = p.take().text.lower()
        shown = f"{tok.text} {unit}"
    hours_per = _HOURS_PER_WORD.get(unit)
    if not m or hours_per is None:
        raise p.fail(f"`for {show(shown)}`: a duration is a number of hours or days, e.g. 12h or 7d (1h to 90d)")
    d = timedelta(hours=int(number) * hours_per)
    if not MIN_SHARE_DURATION <= d <= MAX_SHARE_DURATION:
        raise p.fail(f"`for {show(shown)}`: duration must be 1h to 90d")
    return d


def parse_share_words(p: Parser, options: dict[str, Callable[[str], object]]) -> tuple[str, AccountRef, tuple[str, ...], bool, str | None, dict[str, object]]:
    """What share and unshare have in common: the AMI, ``from``, ``to`` and the verb's
    other ``options``. Returns the AMI, the source, the targets, whether the
    organisation, the OU id, and everything read."""
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    got = p.options({"from": p.source, "to": lambda kw: share_targets(p, kw), **options})
    require(p, got, "from", "<account[:region]>")
    require(p, got, "to", "<account>")
    source: AccountRef = got["from"]  # type: ignore[assignment]
    targets, organization, ou_id = got["to"]  # type: ignore[misc]
    if source.account in targets:
        raise p.fail(f"`{source.account}` is the source account: an AMI is always available to its owner")
    return image_id, source, targets, organization, ou_id, got


def parse(p: Parser) -> ShareCommand:
    """The words after ``share``."""
    image_id, source, targets, organization, ou_id, got = parse_share_words(
        p, {"allow-copy": flag, "for": lambda kw: duration(p, kw), "verify": flag}
    )
    allow_copy = bool(got.get("allow-copy", False))
    if allow_copy and not targets:
        raise p.fail(
            "`allow-copy` works only with accounts: snapshot permissions cannot name an "
            "organisation or OU (its members can launch the AMI but not copy it)"
        )
    verify = bool(got.get("verify", False))
    if verify and not targets:
        raise p.fail("`verify` needs accounts after `to`: a test launch runs in each target account (amibot does not know an organisation's members)")
    return ShareCommand(image_id, source, targets, organization, ou_id, allow_copy, got.get("for"), verify)  # type: ignore[arg-type]


SYNTAX = Syntax(
    verb="share",
    parse=parse,
    usage="/ami share   <ami-id> from <acct[:region]> to <acct>[,<acct>...]|org|<ou-id> [allow-copy] [for <N>h|<N>d] [verify]",
    example="/ami share ami-0123456789abcdef0 from prod:eu-west-1 to dev,staging for 7d",
    summary="Share an AMI with accounts",
    options="allow-copy, for <N>h|<N>d, verify",
    takes_reason=True,
)
