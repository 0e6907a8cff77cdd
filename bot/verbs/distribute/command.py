"""``/ami distribute`` (and ``copy`` to several targets): its command, its parse rule
and the words that explain it; the values copy shares with it (``to``, ``kms``, ``name``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import (
    AMI_ID_RE,
    AMI_NAME_CHAR_RE,
    KMS_ALIAS_RE,
    KMS_ARN_RE,
    KMS_KEY_ID_RE,
    LAUNCH_TEMPLATE_ID_RE,
    ORG_WORDS,
    PUBLIC_WORDS,
    AccountRef,
    LaunchTemplateRef,
    Parser,
    flag,
    require,
    show,
)
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class DistributeCommand:
    """``distribute`` (and ``copy`` to several targets): one copy per account-region."""

    image_id: str
    source: AccountRef
    targets: tuple[AccountRef, ...]
    kms: str | None = None
    share_with: tuple[str, ...] = ()
    update_lt: LaunchTemplateRef | None = None
    verify: bool = False
    name: str | None = None
    reason: str | None = None  # reason "…"


def copy_targets(p: Parser, kw: str) -> tuple[AccountRef, ...]:
    """``to`` of a copy: named accounts, each with an optional region, comma-separated."""
    words: list[str] = []
    previous = ","
    # Comma-separated: "a:r1,b:r2" or "a:r1, b:r2"; a word after a target without a comma is not a target.
    while p.at_value() and (previous.endswith(",") or p.peek().text.startswith(",")):  # type: ignore[union-attr]
        previous = p.take().text
        words.extend(x for x in previous.split(",") if x.strip())
    if not words:
        raise p.fail("`to` needs an account, e.g. `to dev` or `to dev:us-east-2,dev:eu-west-1`")
    refs: list[AccountRef] = []
    for word in words:
        w = word.strip().lower()
        if w in PUBLIC_WORDS:
            raise p.fail(f"`{show(word)}`: public sharing is never done by this bot; a copy goes into named accounts")
        if w in ORG_WORDS or w.startswith("ou-"):
            raise p.fail(f"`{show(word)}`: a copy goes into named accounts (`acct[:region]`), not an organisation or OU")
        ref = p.account(word.strip(), region_allowed=True, role="a copy target")
        if ref in refs:
            raise p.fail(f"`{show(word)}` is named twice in `to`")
        refs.append(ref)
    return tuple(refs)


def kms(p: Parser, kw: str) -> str:
    """``kms``: an alias, a key id, a multi-Region key id or a key ARN."""
    tok = p.value(kw, "a key: alias/<name>, a key id, mrk-<id> or a key ARN")
    key = tok.text
    if KMS_KEY_ID_RE.fullmatch(key):
        return key.lower()
    if KMS_ALIAS_RE.fullmatch(key) or KMS_ARN_RE.fullmatch(key):
        return key
    raise p.fail(
        f"`{show(key)}` is not a KMS key (expected alias/<name>, a key id, mrk-<id> or an arn:aws:kms:... ARN)"
    )


def name(p: Parser, kw: str) -> str:
    """``name``: an AMI name (3 to 128 of the characters AWS allows)."""
    tok = p.value(kw, 'an AMI name (in quotes if it has spaces: name "web server v2")')
    name = tok.text
    if not 3 <= len(name) <= 128:
        raise p.fail(f"name `{show(name)}` has {len(name)} characters: an AMI name has 3 to 128")
    bad = next((c for c in name if not AMI_NAME_CHAR_RE.fullmatch(c)), None)
    if bad is not None:
        raise p.fail(
            f"name `{show(name)}`: `{show(bad)}` is not allowed in an AMI name "
            "(letters, digits, spaces and ( ) [ ] . / ' @ _ -)"
        )
    return name


def share_with(p: Parser, kw: str) -> tuple[str, ...]:
    """``share-with``: the accounts each copy is shared with."""
    words: list[str] = []
    while p.at_value():
        words.extend(x for x in p.take().text.split(",") if x.strip())
    if not words:
        raise p.fail("`share-with` needs accounts, e.g. `share-with staging,qa`")
    accounts: list[str] = []
    for word in words:
        if word.strip().lower() in PUBLIC_WORDS:
            raise p.fail(f"`{show(word)}`: public sharing is never done by this bot")
        acct = p.account(word.strip(), region_allowed=False, role="a share-with account").account
        if acct in accounts:
            raise p.fail(f"`{show(word)}` is named twice in `share-with`")
        accounts.append(acct)
    return tuple(accounts)


def update_lt(p: Parser, kw: str) -> LaunchTemplateRef:
    """``update-lt lt-…@acct[:region] [default]``: the launch template that gets the copy."""
    tok = p.value(kw, "a launch template and where it is, e.g. `update-lt lt-0123456789abcdef0@dev:eu-west-1`")
    template, at, where = tok.text.partition("@")
    template = template.lower()
    if not LAUNCH_TEMPLATE_ID_RE.fullmatch(template):
        raise p.fail(f"`{show(tok.text)}` is not a launch template id (expected lt- followed by 8 or 17 hex digits, then @<account[:region]>)")
    if not at or not where:
        raise p.fail(f"`{show(tok.text)}`: say where the launch template is, e.g. `{template}@dev:eu-west-1`")
    ref = p.account(where, region_allowed=True, role="the launch template's account")
    make_default = False
    nxt = p.peek()
    if nxt is not None and not nxt.quoted and nxt.text.lower() == "default":
        p.take()
        make_default = True
    return LaunchTemplateRef(template, ref, make_default)


def check_kms_region(p: Parser, kms: str | None, targets: tuple[AccountRef, ...]) -> None:
    """A key named by its ARN must be in every target's region."""
    for dest in targets:
        if isinstance(kms, str) and dest.region and (m := KMS_ARN_RE.fullmatch(kms)) and m.group(1).lower() != dest.region:
            raise p.fail(
                f"`{show(kms)}` is a key in {m.group(1).lower()}, but the copy goes to {dest.region}: "
                "the key must be in the destination region"
            )


def parse(p: Parser) -> DistributeCommand:
    """The words after ``distribute``."""
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    got = p.options({
        "from": p.source, "to": lambda kw: copy_targets(p, kw), "kms": lambda kw: kms(p, kw), "name": lambda kw: name(p, kw),
        "verify": flag, "share-with": lambda kw: share_with(p, kw), "update-lt": lambda kw: update_lt(p, kw),
    })
    require(p, got, "from", "<account[:region]>")
    require(p, got, "to", "<account[:region]>[,<account[:region]>...]")
    targets: tuple[AccountRef, ...] = got["to"]  # type: ignore[assignment]
    key = got.get("kms")
    check_kms_region(p, key, targets)  # type: ignore[arg-type]
    template: LaunchTemplateRef | None = got.get("update-lt")  # type: ignore[assignment]
    if template is not None and not any(t.account == template.target.account and t.region == template.target.region for t in targets):
        raise p.fail(
            f"`update-lt {template.template_id}@{template.target.account}"
            + (f":{template.target.region}" if template.target.region else "")
            + "` names an account-region that is not a target: the new version needs the copy made there"
        )
    return DistributeCommand(
        image_id, got["from"], targets, key, tuple(got.get("share-with", ())), template,  # type: ignore[arg-type]
        bool(got.get("verify", False)), got.get("name"),  # type: ignore[arg-type]
    )


SYNTAX = Syntax(
    verb="distribute",
    parse=parse,
    usage="/ami distribute <ami-id> from <acct[:region]> to <acct[:region]>[,<acct[:region]>...] [kms <key>] [share-with <acct>[,<acct>...]] [update-lt <lt-id>@<acct[:region]> [default]] [verify]",
    example="/ami distribute ami-0123456789abcdef0 from prod to dev:us-east-1,dev:eu-west-1 share-with staging verify",
    summary="Copy an AMI into several accounts and regions",
    options="kms <key>, share-with <accounts>, update-lt <lt-id>@<acct[:region]>, name <name>, verify",
    takes_reason=True,
)
