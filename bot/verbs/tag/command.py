"""``/ami tag``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

from dataclasses import dataclass

from aws.actions.tags import MAX_TAGS
from bot.verbs.lexer import AMI_ID_RE, TAG_KEY_RE, AccountRef, Parser, keyword, show
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class TagCommand:
    """``tag <ami> from <acct[:region]> key=value …``: an approved change of the AMI's (and its snapshots') tags."""

    image_id: str
    source: AccountRef
    tags: tuple[tuple[str, str], ...]
    reason: str | None = None  # reason "…"


def parse(p: Parser) -> TagCommand:
    """The words after ``tag``: ``from`` and ``key=value`` words, in any order."""
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    source: AccountRef | None = None
    tags: dict[str, str] = {}
    while (tok := p.peek()) is not None:
        if keyword(tok) == "from" and source is None:
            p.take()
            p.last_keyword = "from"
            source = p.source("from")
            continue
        key, equals, value = tok.text.partition("=")
        if not equals or keyword(tok) is not None:
            raise p.fail(f"`{show(tok.text)}` is not a tag: write key=value (in quotes if the value has spaces: \"app=web server\")")
        p.take()
        key = key.strip()
        if not TAG_KEY_RE.fullmatch(key) or key.lower().startswith("aws:"):
            raise p.fail(f"`{show(key)}` is not a tag key amibot may set (1 to 128 characters; `aws:` keys are AWS's own)")
        if len(value) > 256:
            raise p.fail(f"the value of `{show(key)}` has {len(value)} characters: a tag value has at most 256")
        if key in tags:
            raise p.fail(f"`{show(key)}` is given twice")
        tags[key] = value
    if source is None:
        raise p.fail("`tag` needs `from <account[:region]>`")
    if not tags:
        raise p.fail("`tag` needs at least one key=value, e.g. `app=payments`")
    if len(tags) > MAX_TAGS:
        raise p.fail(f"{len(tags)} tags in one request: an AMI or snapshot has at most {MAX_TAGS} (EC2 CreateTags), so ask for at most {MAX_TAGS}")
    return TagCommand(image_id, source, tuple(tags.items()))


SYNTAX = Syntax(
    verb="tag",
    parse=parse,
    usage="/ami tag     <ami-id> from <acct[:region]> <key>=<value> [<key>=<value>...]",
    example="/ami tag ami-0123456789abcdef0 from prod app=payments version=2.4.1 owner=platform",
    summary="Set tags on an AMI and its snapshots",
    takes_reason=True,
)
