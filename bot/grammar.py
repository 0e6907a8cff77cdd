"""The slash-command grammar: the text after ``/ami`` becomes a typed command.

This module only checks syntax. It does not know the configured accounts (``bot.config``
resolves aliases) and it never talks to Slack or AWS. Every problem is a
:class:`~bot.errors.UsageError` whose message names the word that was wrong, with the
usage line of the verb (or the whole usage for an unknown verb).

Chat clients "improve" what people type: ``--`` becomes an em dash, quotes become curly,
spaces become non-breaking. :func:`normalise` undoes that before tokenising.
"""

from __future__ import annotations

import dataclasses

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Union

from bot.errors import UsageError

# --------------------------------------------------------------------------------------
# Patterns shared with bot.config (ASCII only: "\d" must not match other scripts' digits)

_A = re.ASCII
REGION_PATTERN = r"[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-[0-9]+"
REGION_RE = re.compile(REGION_PATTERN, _A)
AZ_RE = re.compile(rf"({REGION_PATTERN})([a-z])", _A)
AMI_ID_RE = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})", _A)
INSTANCE_ID_RE = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})", _A)
SUBNET_ID_RE = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})", _A)
LAUNCH_TEMPLATE_ID_RE = re.compile(r"lt-(?:[0-9a-f]{8}|[0-9a-f]{17})", _A)
TAG_KEY_RE = re.compile(r"[^=\s][^=]{0,127}", _A)
OU_ID_RE = re.compile(r"ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}", _A)
ACCOUNT_ID_RE = re.compile(r"[0-9]{12}", _A)
ALIAS_RE = re.compile(r"[a-z0-9][a-z0-9_-]*", _A)
_DASHED_ACCOUNT_ID_RE = re.compile(r"([0-9]{4})-([0-9]{4})-([0-9]{4})", _A)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MRK = r"mrk-[0-9a-f]{32}"
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
KMS_KEY_ID_RE = re.compile(rf"{_UUID}|{_MRK}", _A | re.IGNORECASE)
KMS_ALIAS_RE = re.compile(_KMS_ALIAS, _A)
KMS_ARN_RE = re.compile(
    rf"arn:aws[-a-z]*:kms:({REGION_PATTERN}):([0-9]{{12}}):(?:key/(?:{_UUID}|{_MRK})|{_KMS_ALIAS})",
    _A | re.IGNORECASE,
)
AMI_NAME_RE = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]{3,128}", _A)
_AMI_NAME_CHAR_RE = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]", _A)
_REQUEST_ID_RE = re.compile(r"#?(?:r-?)?([0-9]{1,9})", _A | re.IGNORECASE)

MAX_SHARE_DURATION = timedelta(days=90)
MIN_SHARE_DURATION = timedelta(hours=1)


def is_kms_key(value: str) -> bool:
    """True for ``alias/...``, a key id (UUID), a multi-Region key id ``mrk-...`` or a key/alias ARN."""
    return bool(
        KMS_ALIAS_RE.fullmatch(value) or KMS_KEY_ID_RE.fullmatch(value) or KMS_ARN_RE.fullmatch(value)
    )


# --------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class AccountRef:
    account: str  # alias or 12-digit id, lowercased, not resolved
    region: str | None = None  # None: the configured default region

    def render(self) -> str:
        """``acct`` or ``acct:region``, as typed."""
        return f"{self.account}:{self.region}" if self.region else self.account


@dataclass(frozen=True)
class ShareCommand:
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
        words = ["share", self.image_id, "from", self.source.render(), "to", _render_targets(self.targets, self.organization, self.ou_id)]
        if self.allow_copy:
            words.append("allow-copy")
        if self.duration is not None:
            hours = int(self.duration.total_seconds() // 3600)
            words += ["for", f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"]
        if self.verify:
            words.append("verify")
        return " ".join(words)


@dataclass(frozen=True)
class UnshareCommand:
    image_id: str
    source: AccountRef
    targets: tuple[str, ...]
    organization: bool
    ou_id: str | None
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        return " ".join(["unshare", self.image_id, "from", self.source.render(), "to", _render_targets(self.targets, self.organization, self.ou_id)])


@dataclass(frozen=True)
class CopyCommand:
    image_id: str
    source: AccountRef
    target: AccountRef
    kms: str | None
    name: str | None
    verify: bool
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        words = ["copy", self.image_id, "from", self.source.render(), "to", self.target.render()]
        if self.kms:
            words += ["kms", self.kms]
        if self.name:
            words += ["name", f'"{self.name}"']  # AMI names cannot hold a double quote
        if self.verify:
            words.append("verify")
        return " ".join(words)


@dataclass(frozen=True)
class LaunchTemplateRef:
    """``update-lt lt-…@acct[:region] [default]``: the launch template that gets a new
    version with the new AMI id (made its default version only with ``default``)."""

    template_id: str
    target: AccountRef
    make_default: bool = False


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


@dataclass(frozen=True)
class AuditCommand:
    """``audit <ami> from <acct[:region]> [--drift]``, or ``audit --drift`` alone (the stored findings)."""

    image_id: str | None
    source: AccountRef | None
    drift: bool = False


@dataclass(frozen=True)
class TagCommand:
    """``tag <ami> from <acct[:region]> key=value …``: an approved change of the AMI's (and its snapshots') tags."""

    image_id: str
    source: AccountRef
    tags: tuple[tuple[str, str], ...]
    reason: str | None = None  # reason "…"


@dataclass(frozen=True)
class MigrateCommand:
    instance_id: str
    source: AccountRef
    availability_zone: str
    subnet_id: str | None
    no_reboot: bool
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        words = ["migrate", self.instance_id, "from", self.source.render(), "to", self.availability_zone]
        if self.subnet_id:
            words += ["subnet", self.subnet_id]
        if self.no_reboot:
            words.append("no-reboot")
        return " ".join(words)


@dataclass(frozen=True)
class StatusCommand:
    request_id: str

    def render(self) -> str:
        return f"status {self.request_id}"


@dataclass(frozen=True)
class ListCommand:
    scope: str = "pending"  # pending | mine | active | all

    def render(self) -> str:
        return f"list {self.scope}"


@dataclass(frozen=True)
class CancelCommand:
    request_id: str

    def render(self) -> str:
        return f"cancel {self.request_id}"


@dataclass(frozen=True)
class HelpCommand:
    topic: str | None = None  # "/ami help share" -> "share"; None: the whole usage

    def render(self) -> str:
        return f"help {self.topic}" if self.topic else "help"


@dataclass(frozen=True)
class EmptyCommand:
    """``/ami`` with no text."""

    def render(self) -> str:
        return ""


def _render_targets(targets: tuple[str, ...], organization: bool, ou_id: str | None) -> str:
    return ",".join(targets) if targets else ("org" if organization else ou_id or "")


Command = Union[
    ShareCommand,
    UnshareCommand,
    CopyCommand,
    MigrateCommand,
    DistributeCommand,
    AuditCommand,
    TagCommand,
    StatusCommand,
    ListCommand,
    CancelCommand,
    HelpCommand,
    EmptyCommand,
]

# --------------------------------------------------------------------------------------
# Usage text

_USAGE_LINES = {
    "share": "/ami share   <ami-id> from <acct[:region]> to <acct>[,<acct>...]|org|<ou-id> [allow-copy] [for <N>h|<N>d] [verify]",
    "unshare": "/ami unshare <ami-id> from <acct[:region]> to <acct>[,<acct>...]|org|<ou-id>",
    "copy": "/ami copy    <ami-id> from <acct[:region]> to <acct[:region]>[,<acct[:region]>...] [kms <key>] [name <name>] [verify]",
    "distribute": "/ami distribute <ami-id> from <acct[:region]> to <acct[:region]>[,<acct[:region]>...] [kms <key>] [share-with <acct>[,<acct>...]] [update-lt <lt-id>@<acct[:region]> [default]] [verify]",
    "audit": "/ami audit   <ami-id> from <acct[:region]> [--drift]  |  /ami audit --drift",
    "tag": "/ami tag     <ami-id> from <acct[:region]> <key>=<value> [<key>=<value>...]",
    "migrate": "/ami migrate <instance-id> from <acct[:region]> to <availability-zone> [subnet <id>] [no-reboot]",
    "status": "/ami status  <request-id>",
    "list": "/ami list    [pending|mine|active|all]",
    "cancel": "/ami cancel  <request-id>",
    "help": "/ami help    [<command>]",
}
_EXAMPLES = {
    "share": "/ami share ami-0123456789abcdef0 from prod:eu-west-1 to dev,staging for 7d",
    "unshare": "/ami unshare ami-0123456789abcdef0 from prod:eu-west-1 to dev",
    "copy": '/ami copy ami-0123456789abcdef0 from prod:eu-west-1 to dev:us-east-2 name "web server v2" verify',
    "migrate": "/ami migrate i-0123456789abcdef0 from prod:eu-west-1 to eu-west-1b no-reboot",
    "distribute": "/ami distribute ami-0123456789abcdef0 from prod to dev:us-east-1,dev:eu-west-1 share-with staging verify",
    "audit": "/ami audit ami-0123456789abcdef0 from prod:eu-west-1",
    "tag": "/ami tag ami-0123456789abcdef0 from prod app=payments version=2.4.1 owner=platform",
    "status": "/ami status R-17",
    "list": "/ami list mine",
    "cancel": "/ami cancel R-17",
    "help": "/ami help share",
}
VERBS: tuple[str, ...] = tuple(_USAGE_LINES)
USAGE: str = "\n".join(_USAGE_LINES.values())


def usage_for(verb: str, command: str = "/ami") -> str:
    """The usage line of one verb and an example; the whole usage for an unknown verb.
    ``command`` is the configured slash command (``bot.command``)."""
    verb = (verb or "").strip().lower()
    if verb not in _USAGE_LINES:
        return usage(command)
    return _as_command(f"{_USAGE_LINES[verb]}\ne.g. {_EXAMPLES[verb]}", command)


def usage(command: str = "/ami") -> str:
    """The whole grammar, written with the configured slash command."""
    return _as_command(USAGE, command)


def _as_command(text: str, command: str) -> str:
    """Every line's leading ``/ami`` (after an optional ``e.g. ``) as ``command``."""
    return re.sub(r"^(e\.g\. )?/ami(?= )", lambda m: (m.group(1) or "") + command, text, flags=re.MULTILINE)


# --------------------------------------------------------------------------------------
# Words

KEYWORDS = frozenset({"from", "to", "for", "allow-copy", "kms", "name", "verify", "subnet", "no-reboot", "reason", "share-with", "update-lt", "drift"})
REASON_LIMIT = 500
_REASON_VERBS = frozenset({"share", "unshare", "copy", "migrate", "distribute", "tag"})
MAX_REASON_LENGTH = REASON_LIMIT  # the request form's field limit (bot.forms)
_KEYWORD_SYNONYMS = {"allowcopy": "allow-copy", "noreboot": "no-reboot", "sharewith": "share-with", "updatelt": "update-lt"}
_ORG_WORDS = frozenset({"org", "organization", "organisation"})
PUBLIC_WORDS = frozenset({"all", "public", "everyone", "everybody", "*"})
LIST_SCOPES = ("pending", "mine", "active", "all")
_VERB_OPTIONS = {
    "share": "allow-copy, for <N>h|<N>d, verify",
    "distribute": "kms <key>, share-with <accounts>, update-lt <lt-id>@<acct[:region]>, name <name>, verify",
    "audit": "--drift",
    "unshare": "",
    "copy": "kms <key>, name <name>, verify",
    "migrate": "subnet <id>, no-reboot",
}


def _keyword_form(word: str) -> str:
    w = word.lower().lstrip("-").replace("_", "-")
    return _KEYWORD_SYNONYMS.get(w, w)


def is_reserved_word(alias: str) -> bool:
    """True if ``alias`` would be read as a grammar word (so it cannot name an account)."""
    w = _keyword_form(alias)
    return w in KEYWORDS or w in _ORG_WORDS or w in PUBLIC_WORDS


# --------------------------------------------------------------------------------------
# Normalisation and tokenising

_DQUOTES = "\u201c\u201d\u201e\u201f\u301d\u301e\u301f\u00ab\u00bb"
_SQUOTES = "\u2018\u2019\u201a\u201b\u2032"
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d")
_SLACK_LINK_RE = re.compile(r"<((?:https?|mailto):[^|>\s]*)(?:\|([^>]*))?>", re.IGNORECASE)
_QUOTE_TRANSLATION = str.maketrans({**{c: '"' for c in _DQUOTES}, **{c: "'" for c in _SQUOTES}})


def normalise(text: str) -> str:
    """Undo what chat clients do to typed text, keeping the meaning.

    - compatibility forms (full-width letters, non-breaking spaces) become plain ones (NFKC);
    - invisible format characters (zero-width spaces, direction marks, soft hyphens) and
      lone surrogates and control characters other than whitespace are removed;
    - Slack's link markup ``<https://x|x>`` becomes its label; ``&lt; &gt; &amp;`` are unescaped;
    - curly quotes become straight quotes, backticks (inline code) are dropped;
    - a dash (em, en, minus, ...) inside a word becomes ``-`` (``eu–west–1``), and at the
      start of a word ``--`` (a client turned ``--no-reboot`` into ``—no-reboot``).

    Case and repeated whitespace are handled by the tokeniser and the parser.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if not _invisible(c))
    text = _SLACK_LINK_RE.sub(lambda m: m.group(2) if m.group(2) else m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.translate(_QUOTE_TRANSLATION).replace("`", "")
    out: list[str] = []
    prev = " "
    for c in text:
        if c in _DASHES:
            inside_word = not prev.isspace() and prev not in _DASHES and prev not in "-\"'"
            out.append("-" if inside_word else "--")
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _invisible(c: str) -> bool:
    """Format characters (zero-width, direction marks), lone surrogates, and control
    characters other than whitespace."""
    cat = unicodedata.category(c)
    return cat in ("Cf", "Cs") or (cat == "Cc" and not c.isspace())


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False


def _show(word: str, limit: int = 60) -> str:
    """A user's word, safe to put between backticks in a message."""
    word = " ".join(word.split()).replace("`", "'")
    return word if len(word) <= limit else word[: limit - 1] + "…"


def _tokenise(text: str, usage: str) -> list[_Token]:
    """Split on whitespace; a word that starts with a quote runs to the matching quote
    that ends a word (so ``'bob's image'`` keeps its apostrophe)."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "\"'":
            j = i + 1
            while True:
                j = text.find(c, j)
                if j == -1:
                    raise UsageError(f"unclosed quote: `{_show(text[i:])}` (close it with {c})", usage)
                if j + 1 == n or text[j + 1].isspace():
                    break
                j += 1
            tokens.append(_Token(" ".join(text[i + 1 : j].split()), quoted=True))
            i = j + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        tokens.append(_Token(text[i:j]))
        i = j
    return tokens


def _keyword(token: _Token) -> str | None:
    if token.quoted:
        return None
    w = _keyword_form(token.text)
    return w if w in KEYWORDS else None


# --------------------------------------------------------------------------------------
# Parsing


class _Parser:
    def __init__(self, verb: str, tokens: list[_Token]):
        self.verb = verb
        self.tokens = tokens
        self.i = 0
        self.last_keyword: str | None = None

    # -- basics
    def fail(self, problem: str) -> UsageError:
        return UsageError(problem, usage_for(self.verb))

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def at_value(self) -> bool:
        tok = self.peek()
        return tok is not None and _keyword(tok) is None

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def value(self, keyword: str, what: str) -> _Token:
        if not self.at_value():
            raise self.fail(f"`{keyword}` needs {what}")
        return self.take()

    def end(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise self.fail(f"unknown word `{_show(tok.text)}`")

    # -- the word after the verb
    def subject(self, pattern: re.Pattern[str], what: str, example: str) -> str:
        if not self.at_value():
            raise self.fail(f"`{self.verb}` needs {what} first, e.g. `{self.verb} {example} from ...`")
        word = self.take().text
        w = word.lower()
        if not pattern.fullmatch(w):
            raise self.fail(f"`{_show(word)}` is not {what} (expected {example.split('-')[0]}- followed by 8 or 17 hex digits)")
        return w

    # -- options after the subject, in any order, each at most once
    def options(self, handlers: dict[str, Callable[[str], object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        while (tok := self.peek()) is not None:
            kw = _keyword(tok)
            if kw is None:
                raise self.unknown(tok, handlers)
            if kw not in handlers:
                opts = _VERB_OPTIONS.get(self.verb, "")
                where = f"its options are {opts}" if opts else "it takes no options"
                raise self.fail(f"`{_show(tok.text)}` does not go with `{self.verb}` ({where})")
            if kw in seen:
                raise self.fail(f"`{kw}` is given twice")
            self.take()
            self.last_keyword = kw
            seen[kw] = handlers[kw](kw)
        return seen

    def unknown(self, tok: _Token, handlers: dict[str, Callable[[str], object]]) -> UsageError:
        word = _show(tok.text)
        w = tok.text.lower()
        close = difflib.get_close_matches(_keyword_form(w)[:30], sorted(handlers), n=1, cutoff=0.75)
        hint = ""
        if self.last_keyword == "name":
            hint = ' (a name with spaces goes in quotes: name "web server v2")'
        elif self.last_keyword == "from" and REGION_RE.fullmatch(w):
            hint = f" (put the region after the account and a colon, e.g. `prod:{w}`)"
        elif close:
            hint = f" (did you mean `{close[0]}`?)"
        elif self.last_keyword is None and "from" in handlers and _looks_like_account(w):
            hint = " (expected `from <account>` after the id)"
        return self.fail(f"unknown word `{word}`{hint}")

    # -- values
    def account(self, word: str, *, region_allowed: bool, role: str) -> AccountRef:
        w = word.lower()
        acct, colon, region = w.partition(":")
        if m := _DASHED_ACCOUNT_ID_RE.fullmatch(acct):
            acct = "".join(m.groups())
        if acct in _ORG_WORDS or acct in PUBLIC_WORDS:
            raise self.fail(f"`{_show(word)}` is not an account: {role} must be one account (an alias or a 12-digit id)")
        if not ALIAS_RE.fullmatch(acct):
            raise self.fail(f"`{_show(word)}` is not an account (expected an alias like `prod` or a 12-digit account id)")
        if acct.isdigit() and not ACCOUNT_ID_RE.fullmatch(acct):
            raise self.fail(f"`{_show(word)}` is not an account id (an account id has 12 digits)")
        if not colon:
            return AccountRef(acct, None)
        if not region_allowed:
            raise self.fail(
                f"`{_show(word)}`: {role} is an account without a region "
                f"(the AMI stays in the source region; use `copy` to put it in another region)"
            )
        if not region:
            raise self.fail(f"`{_show(word)}`: put a region after the colon, e.g. `{acct}:eu-west-1`")
        if not REGION_RE.fullmatch(region):
            raise self.fail(f"`{_show(region)}` is not a region (expected e.g. eu-west-1)")
        return AccountRef(acct, region)

    def source(self, kw: str) -> AccountRef:
        tok = self.value(kw, "an account, e.g. `from prod` or `from prod:eu-west-1`")
        return self.account(tok.text, region_allowed=True, role="the source")

    def share_targets(self, kw: str) -> tuple[tuple[str, ...], bool, str | None]:
        words: list[str] = []
        while self.at_value():
            words.extend(p for p in self.take().text.split(",") if p.strip())
        if not words:
            raise self.fail("`to` needs accounts (`to dev,staging`), `org`, or an OU id")
        accounts: list[str] = []
        organization = False
        ous: list[str] = []
        for word in words:
            word = word.strip()
            w = word.lower()
            if w in PUBLIC_WORDS:
                raise self.fail(
                    f"`{_show(word)}`: public sharing is never done by this bot. "
                    "Name the accounts, `org` or an OU id instead"
                )
            if w in _ORG_WORDS:
                if organization:
                    raise self.fail(f"`{_show(word)}` is named twice in `to`")
                organization = True
            elif w.startswith("ou-"):
                if not OU_ID_RE.fullmatch(w):
                    raise self.fail(
                        f"`{_show(word)}` is not an OU id (expected ou- then 4-32 and 8-32 "
                        "lowercase letters or digits, e.g. ou-ab12-cd345678)"
                    )
                if w in ous:
                    raise self.fail(f"`{_show(word)}` is named twice in `to`")
                ous.append(w)
            else:
                acct = self.account(word, region_allowed=False, role="a share target").account
                if acct in accounts:
                    raise self.fail(f"`{_show(word)}` is named twice in `to`")
                accounts.append(acct)
        kinds = bool(accounts) + organization + bool(ous)
        if kinds > 1:
            raise self.fail(
                f"`to {_show(' '.join(words))}` mixes kinds of target: "
                "give accounts, or `org`, or one OU id (one request each)"
            )
        if len(ous) > 1:
            raise self.fail(f"`{_show(ous[1])}`: one OU per request")
        return tuple(accounts), organization, (ous[0] if ous else None)

    def copy_targets(self, kw: str) -> tuple[AccountRef, ...]:
        words: list[str] = []
        previous = ","
        # Comma-separated: "a:r1,b:r2" or "a:r1, b:r2"; a word after a target without a comma is not a target.
        while self.at_value() and (previous.endswith(",") or self.peek().text.startswith(",")):  # type: ignore[union-attr]
            previous = self.take().text
            words.extend(x for x in previous.split(",") if x.strip())
        if not words:
            raise self.fail("`to` needs an account, e.g. `to dev` or `to dev:us-east-2,dev:eu-west-1`")
        refs: list[AccountRef] = []
        for word in words:
            w = word.strip().lower()
            if w in PUBLIC_WORDS:
                raise self.fail(f"`{_show(word)}`: public sharing is never done by this bot; a copy goes into named accounts")
            if w in _ORG_WORDS or w.startswith("ou-"):
                raise self.fail(f"`{_show(word)}`: a copy goes into named accounts (`acct[:region]`), not an organisation or OU")
            ref = self.account(word.strip(), region_allowed=True, role="a copy target")
            if ref in refs:
                raise self.fail(f"`{_show(word)}` is named twice in `to`")
            refs.append(ref)
        return tuple(refs)

    def share_with(self, kw: str) -> tuple[str, ...]:
        words: list[str] = []
        while self.at_value():
            words.extend(x for x in self.take().text.split(",") if x.strip())
        if not words:
            raise self.fail("`share-with` needs accounts, e.g. `share-with staging,qa`")
        accounts: list[str] = []
        for word in words:
            if word.strip().lower() in PUBLIC_WORDS:
                raise self.fail(f"`{_show(word)}`: public sharing is never done by this bot")
            acct = self.account(word.strip(), region_allowed=False, role="a share-with account").account
            if acct in accounts:
                raise self.fail(f"`{_show(word)}` is named twice in `share-with`")
            accounts.append(acct)
        return tuple(accounts)

    def update_lt(self, kw: str) -> LaunchTemplateRef:
        tok = self.value(kw, "a launch template and where it is, e.g. `update-lt lt-0123456789abcdef0@dev:eu-west-1`")
        template, at, where = tok.text.partition("@")
        template = template.lower()
        if not LAUNCH_TEMPLATE_ID_RE.fullmatch(template):
            raise self.fail(f"`{_show(tok.text)}` is not a launch template id (expected lt- followed by 8 or 17 hex digits, then @<account[:region]>)")
        if not at or not where:
            raise self.fail(f"`{_show(tok.text)}`: say where the launch template is, e.g. `{template}@dev:eu-west-1`")
        ref = self.account(where, region_allowed=True, role="the launch template's account")
        make_default = False
        nxt = self.peek()
        if nxt is not None and not nxt.quoted and nxt.text.lower() == "default":
            self.take()
            make_default = True
        return LaunchTemplateRef(template, ref, make_default)

    def duration(self, kw: str) -> timedelta:
        tok = self.value(kw, "a duration, e.g. `for 12h` or `for 7d`")
        shown = tok.text
        m = re.fullmatch(r"([0-9]{1,7})\s*([a-z]*)", tok.text.lower(), _A)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if m and not unit and self.at_value() and _UNITS.get(self.peek().text.lower()):
            unit = self.take().text.lower()
            shown = f"{tok.text} {unit}"
        hours_per = _UNITS.get(unit)
        if not m or hours_per is None:
            raise self.fail(f"`for {_show(shown)}`: a duration is a number of hours or days, e.g. 12h or 7d (1h to 90d)")
        d = timedelta(hours=int(number) * hours_per)
        if not MIN_SHARE_DURATION <= d <= MAX_SHARE_DURATION:
            raise self.fail(f"`for {_show(shown)}`: duration must be 1h to 90d")
        return d

    def kms(self, kw: str) -> str:
        tok = self.value(kw, "a key: alias/<name>, a key id, mrk-<id> or a key ARN")
        key = tok.text
        if KMS_KEY_ID_RE.fullmatch(key):
            return key.lower()
        if KMS_ALIAS_RE.fullmatch(key) or KMS_ARN_RE.fullmatch(key):
            return key
        raise self.fail(
            f"`{_show(key)}` is not a KMS key (expected alias/<name>, a key id, mrk-<id> or an arn:aws:kms:... ARN)"
        )

    def name(self, kw: str) -> str:
        tok = self.value(kw, 'an AMI name (in quotes if it has spaces: name "web server v2")')
        name = tok.text
        if not 3 <= len(name) <= 128:
            raise self.fail(f"name `{_show(name)}` has {len(name)} characters: an AMI name has 3 to 128")
        bad = next((c for c in name if not _AMI_NAME_CHAR_RE.fullmatch(c)), None)
        if bad is not None:
            raise self.fail(
                f"name `{_show(name)}`: `{_show(bad)}` is not allowed in an AMI name "
                "(letters, digits, spaces and ( ) [ ] . / ' @ _ -)"
            )
        return name

    def subnet(self, kw: str) -> str:
        tok = self.value(kw, "a subnet id, e.g. `subnet subnet-0123456789abcdef0`")
        w = tok.text.lower()
        if not SUBNET_ID_RE.fullmatch(w):
            raise self.fail(f"`{_show(tok.text)}` is not a subnet id (expected subnet- followed by 8 or 17 hex digits)")
        return w

    def request_id(self) -> str:
        if not self.at_value():
            raise self.fail(f"`{self.verb}` needs a request id, e.g. `{self.verb} R-17`")
        word = self.take().text
        m = _REQUEST_ID_RE.fullmatch(word)
        if not m:
            raise self.fail(f"`{_show(word)}` is not a request id (expected e.g. R-17)")
        self.end()
        return f"R-{int(m.group(1))}"


_UNITS = {
    "h": 1, "hr": 1, "hrs": 1, "hour": 1, "hours": 1,
    "d": 24, "day": 24, "days": 24,
    "w": 168, "wk": 168, "week": 168, "weeks": 168,
}  # fmt: skip


def _looks_like_account(w: str) -> bool:
    acct = w.partition(":")[0]
    return bool(ALIAS_RE.fullmatch(acct) or _DASHED_ACCOUNT_ID_RE.fullmatch(acct))


def _flag(kw: str) -> bool:
    return True


def _require(p: _Parser, got: dict[str, object], key: str, shape: str) -> None:
    if key not in got:
        raise p.fail(f"`{p.verb}` needs `{key} {shape}`")


def _share_like(p: _Parser, *, unshare: bool) -> ShareCommand | UnshareCommand:
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    handlers: dict[str, Callable[[str], object]] = {"from": p.source, "to": p.share_targets}
    if not unshare:
        handlers |= {"allow-copy": _flag, "for": p.duration, "verify": _flag}
    got = p.options(handlers)
    _require(p, got, "from", "<account[:region]>")
    _require(p, got, "to", "<account>")
    source: AccountRef = got["from"]  # type: ignore[assignment]
    targets, organization, ou_id = got["to"]  # type: ignore[misc]
    if source.account in targets:
        raise p.fail(f"`{source.account}` is the source account: an AMI is always available to its owner")
    if unshare:
        return UnshareCommand(image_id, source, targets, organization, ou_id)
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


def _parse_share(p: _Parser) -> Command:
    return _share_like(p, unshare=False)


def _parse_unshare(p: _Parser) -> Command:
    return _share_like(p, unshare=True)


_COPY_OPTIONS = ("from", "to", "kms", "name", "verify")


def _parse_copy(p: _Parser) -> Command:
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")

    got = p.options({"from": p.source, "to": p.copy_targets, "kms": p.kms, "name": p.name, "verify": _flag})
    _require(p, got, "from", "<account[:region]>")
    _require(p, got, "to", "<account[:region]>")
    targets: tuple[AccountRef, ...] = got["to"]  # type: ignore[assignment]
    kms = got.get("kms")
    _check_kms_region(p, kms, targets)  # type: ignore[arg-type]
    if len(targets) > 1:
        # Several targets: one request, one copy per account-region (a distribution).
        return DistributeCommand(image_id, got["from"], targets, kms, verify=bool(got.get("verify", False)), name=got.get("name"))  # type: ignore[arg-type]
    return CopyCommand(image_id, got["from"], targets[0], kms, got.get("name"), bool(got.get("verify", False)))  # type: ignore[arg-type]


def _check_kms_region(p: _Parser, kms: str | None, targets: tuple[AccountRef, ...]) -> None:
    for dest in targets:
        if isinstance(kms, str) and dest.region and (m := KMS_ARN_RE.fullmatch(kms)) and m.group(1).lower() != dest.region:
            raise p.fail(
                f"`{_show(kms)}` is a key in {m.group(1).lower()}, but the copy goes to {dest.region}: "
                "the key must be in the destination region"
            )


def _parse_distribute(p: _Parser) -> Command:
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    got = p.options({
        "from": p.source, "to": p.copy_targets, "kms": p.kms, "name": p.name, "verify": _flag,
        "share-with": p.share_with, "update-lt": p.update_lt,
    })
    _require(p, got, "from", "<account[:region]>")
    _require(p, got, "to", "<account[:region]>[,<account[:region]>...]")
    targets: tuple[AccountRef, ...] = got["to"]  # type: ignore[assignment]
    kms = got.get("kms")
    _check_kms_region(p, kms, targets)  # type: ignore[arg-type]
    update_lt: LaunchTemplateRef | None = got.get("update-lt")  # type: ignore[assignment]
    if update_lt is not None and not any(t.account == update_lt.target.account and t.region == update_lt.target.region for t in targets):
        raise p.fail(
            f"`update-lt {update_lt.template_id}@{update_lt.target.account}"
            + (f":{update_lt.target.region}" if update_lt.target.region else "")
            + "` names an account-region that is not a target: the new version needs the copy made there"
        )
    return DistributeCommand(
        image_id, got["from"], targets, kms, tuple(got.get("share-with", ())), update_lt,  # type: ignore[arg-type]
        bool(got.get("verify", False)), got.get("name"),  # type: ignore[arg-type]
    )


def _parse_audit(p: _Parser) -> Command:
    tok = p.peek()
    if tok is not None and _keyword(tok) == "drift":
        p.take()
        p.end()
        return AuditCommand(None, None, drift=True)
    image_id = p.subject(AMI_ID_RE, "an AMI id (or `--drift` alone for the drift findings)", "ami-0123456789abcdef0")
    got = p.options({"from": p.source, "drift": _flag})
    _require(p, got, "from", "<account[:region]>")
    return AuditCommand(image_id, got["from"], bool(got.get("drift", False)))  # type: ignore[arg-type]


def _parse_tag(p: _Parser) -> Command:
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    source: AccountRef | None = None
    tags: dict[str, str] = {}
    while (tok := p.peek()) is not None:
        if _keyword(tok) == "from" and source is None:
            p.take()
            p.last_keyword = "from"
            source = p.source("from")
            continue
        key, equals, value = tok.text.partition("=")
        if not equals or _keyword(tok) is not None:
            raise p.fail(f"`{_show(tok.text)}` is not a tag: write key=value (in quotes if the value has spaces: \"app=web server\")")
        p.take()
        key = key.strip()
        if not TAG_KEY_RE.fullmatch(key) or key.lower().startswith("aws:"):
            raise p.fail(f"`{_show(key)}` is not a tag key amibot may set (1 to 128 characters; `aws:` keys are AWS's own)")
        if len(value) > 256:
            raise p.fail(f"the value of `{_show(key)}` has {len(value)} characters: a tag value has at most 256")
        if key in tags:
            raise p.fail(f"`{_show(key)}` is given twice")
        tags[key] = value
    if source is None:
        raise p.fail("`tag` needs `from <account[:region]>`")
    if not tags:
        raise p.fail("`tag` needs at least one key=value, e.g. `app=payments`")
    return TagCommand(image_id, source, tuple(tags.items()))


def _parse_migrate(p: _Parser) -> Command:
    instance_id = p.subject(INSTANCE_ID_RE, "an instance id", "i-0123456789abcdef0")

    def zone(kw: str) -> str:
        tok = p.value(kw, "an Availability Zone, e.g. `to eu-west-1b`")
        w = tok.text.lower()
        if AZ_RE.fullmatch(w):
            return w
        if REGION_RE.fullmatch(w):
            raise p.fail(f"`{_show(tok.text)}` is a region, not an Availability Zone: add the zone letter, e.g. {w}b")
        raise p.fail(
            f"`{_show(tok.text)}` is not an Availability Zone (expected a region and a letter, e.g. eu-west-1b; "
            "migrate moves an instance within its account)"
        )

    got = p.options({"from": p.source, "to": zone, "subnet": p.subnet, "no-reboot": _flag})
    _require(p, got, "from", "<account[:region]>")
    _require(p, got, "to", "<availability-zone>")
    source: AccountRef = got["from"]  # type: ignore[assignment]
    az: str = got["to"]  # type: ignore[assignment]
    az_region = AZ_RE.fullmatch(az).group(1)  # type: ignore[union-attr]
    if source.region is None:
        # The zone names the region the instance is in: "from prod to eu-west-1b" needs no ":eu-west-1".
        source = AccountRef(source.account, az_region)
    elif source.region != az_region:
        raise p.fail(
            f"`{az}` is not in {source.region}: migrate moves an instance to another zone of the same region"
        )
    return MigrateCommand(instance_id, source, az, got.get("subnet"), bool(got.get("no-reboot", False)))  # type: ignore[arg-type]


def _parse_status(p: _Parser) -> Command:
    return StatusCommand(p.request_id())


def _parse_cancel(p: _Parser) -> Command:
    return CancelCommand(p.request_id())


def _parse_list(p: _Parser) -> Command:
    if p.peek() is None:
        return ListCommand("pending")
    word = p.take().text
    scope = word.lower()
    if scope not in LIST_SCOPES:
        raise p.fail(f"unknown word `{_show(word)}` (list takes pending, mine, active or all)")
    p.end()
    return ListCommand(scope)


def _parse_help(p: _Parser) -> Command:
    if p.peek() is None:
        return HelpCommand(None)
    word = p.take().text
    topic = _keyword_form(word)
    if topic not in _USAGE_LINES:
        raise UsageError(f"there is no command `{_show(word)}` to help with", USAGE)
    p.end()
    return HelpCommand(topic)


_PARSERS: dict[str, Callable[[_Parser], Command]] = {
    "share": _parse_share,
    "unshare": _parse_unshare,
    "copy": _parse_copy,
    "migrate": _parse_migrate,
    "distribute": _parse_distribute,
    "audit": _parse_audit,
    "tag": _parse_tag,
    "status": _parse_status,
    "list": _parse_list,
    "cancel": _parse_cancel,
    "help": _parse_help,
}
_VERB_SYNONYMS = {"?": "help", "ls": "list"}


def parse_command(text: str | None) -> Command:
    """Parse the text after ``/ami``. Raises :class:`UsageError` naming what was wrong."""
    text = normalise(text or "")
    first = text.split(None, 1)[0] if text.split() else ""
    verb_guess = _keyword_form(first.strip("\"'"))
    tokens = _tokenise(text, usage_for(verb_guess))
    if not tokens:
        return EmptyCommand()
    verb = _keyword_form(tokens[0].text)
    verb = _VERB_SYNONYMS.get(verb, verb)
    parse = _PARSERS.get(verb)
    if parse is None:
        close = difflib.get_close_matches(verb[:30], VERBS, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (start with one of: {', '.join(VERBS)})"
        raise UsageError(f"unknown command `{_show(tokens[0].text)}`{hint}", USAGE)
    rest, reason = _take_reason(verb, tokens[1:])
    command = parse(_Parser(verb, rest))
    return dataclasses.replace(command, reason=reason) if reason is not None else command  # type: ignore[type-var]


def _take_reason(verb: str, tokens: list[_Token]) -> tuple[list[_Token], str | None]:
    """Remove ``reason "…"`` (anywhere after the verb) from the words; any request may
    carry one. Returns the other words and the reason."""
    at = next((i for i, t in enumerate(tokens) if _keyword(t) == "reason"), None)
    if at is None:
        return tokens, None
    if verb not in _REASON_VERBS:
        raise UsageError(f"`reason` goes with a request (share, unshare, copy, migrate), not with `{verb}`", usage_for(verb))
    value = tokens[at + 1] if at + 1 < len(tokens) else None
    if value is None or _keyword(value) is not None or not value.text.strip():
        raise UsageError('`reason` needs the reason in quotes, e.g. reason "release 2.3 for the dev team"', usage_for(verb))
    if any(_keyword(t) == "reason" for t in tokens[at + 2 :]):
        raise UsageError("`reason` is given twice: give one reason, in quotes", usage_for(verb))
    text = " ".join(value.text.split())
    if len(text) > REASON_LIMIT:
        raise UsageError(f"the reason has {len(text)} characters; at most {REASON_LIMIT}", usage_for(verb))
    return tokens[:at] + tokens[at + 2 :], text
