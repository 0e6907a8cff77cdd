"""The shared lexer of the slash grammar: the patterns (shared with ``bot.config``),
normalisation of what chat clients do to typed text, the tokeniser and the parser's
cursor (:class:`Parser`) that every verb's parse rule walks.

It knows no verb: each verb's rule, usage line and options live in
``bot/verbs/<verb>/command.py``, and ``bot.verbs.grammar`` puts them together.
Every problem is a :class:`~bot.errors.UsageError` whose message names the word that
was wrong, with the usage line of the verb.

Chat clients "improve" what people type: ``--`` becomes an em dash, quotes become curly,
spaces become non-breaking. :func:`normalise` undoes that before tokenising.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

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
AMI_NAME_CHAR_RE = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]", _A)
_REQUEST_ID_RE = re.compile(r"#?(?:r-?)?([0-9]{1,9})", _A | re.IGNORECASE)

MAX_SHARE_DURATION = timedelta(days=90)
MIN_SHARE_DURATION = timedelta(hours=1)


def is_kms_key(value: str) -> bool:
    """True for ``alias/...``, a key id (UUID), a multi-Region key id ``mrk-...`` or a key/alias ARN."""
    return bool(
        KMS_ALIAS_RE.fullmatch(value) or KMS_KEY_ID_RE.fullmatch(value) or KMS_ARN_RE.fullmatch(value)
    )


# --------------------------------------------------------------------------------------
# Values every verb's command may hold


@dataclass(frozen=True)
class AccountRef:
    """An account as typed (alias or id) with an optional region, not resolved."""

    account: str  # alias or 12-digit id, lowercased, not resolved
    region: str | None = None  # None: the configured default region

    def render(self) -> str:
        """``acct`` or ``acct:region``, as typed."""
        return f"{self.account}:{self.region}" if self.region else self.account


@dataclass(frozen=True)
class LaunchTemplateRef:
    """``update-lt lt-…@acct[:region] [default]``: the launch template that gets a new
    version with the new AMI id (made its default version only with ``default``)."""

    template_id: str
    target: AccountRef
    make_default: bool = False


def render_targets(targets: tuple[str, ...], organization: bool, ou_id: str | None) -> str:
    """Share targets as typed: accounts, ``org`` or the OU id."""
    return ",".join(targets) if targets else ("org" if organization else ou_id or "")


# --------------------------------------------------------------------------------------
# Words

KEYWORDS = frozenset({"from", "to", "for", "allow-copy", "kms", "name", "verify", "subnet", "no-reboot", "reason", "share-with", "update-lt", "drift", "with-copies"})
REASON_LIMIT = 500
MAX_REASON_LENGTH = REASON_LIMIT  # the request form's field limit (bot.forms)
_KEYWORD_SYNONYMS = {"allowcopy": "allow-copy", "noreboot": "no-reboot", "sharewith": "share-with", "updatelt": "update-lt", "withcopies": "with-copies"}
ORG_WORDS = frozenset({"org", "organization", "organisation"})
PUBLIC_WORDS = frozenset({"all", "public", "everyone", "everybody", "*"})
LIST_SCOPES = ("pending", "mine", "active", "all")


def keyword_form(word: str) -> str:
    """A word as the grammar compares it: lowercase, no leading dashes, ``_`` as ``-``, synonyms resolved."""
    w = word.lower().lstrip("-").replace("_", "-")
    return _KEYWORD_SYNONYMS.get(w, w)


def is_reserved_word(alias: str) -> bool:
    """True if ``alias`` would be read as a grammar word (so it cannot name an account)."""
    w = keyword_form(alias)
    return w in KEYWORDS or w in ORG_WORDS or w in PUBLIC_WORDS


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
class Token:
    """One word of the command; ``quoted``: it was in quotes (never a keyword)."""

    text: str
    quoted: bool = False


def show(word: str, limit: int = 60) -> str:
    """A user's word, safe to put between backticks in a message."""
    word = " ".join(word.split()).replace("`", "'")
    return word if len(word) <= limit else word[: limit - 1] + "…"


def tokenise(text: str, usage: str) -> list[Token]:
    """Split on whitespace; a word that starts with a quote runs to the matching quote
    that ends a word (so ``'bob's image'`` keeps its apostrophe)."""
    tokens: list[Token] = []
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
                    raise UsageError(f"unclosed quote: `{show(text[i:])}` (close it with {c})", usage)
                if j + 1 == n or text[j + 1].isspace():
                    break
                j += 1
            tokens.append(Token(" ".join(text[i + 1 : j].split()), quoted=True))
            i = j + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        tokens.append(Token(text[i:j]))
        i = j
    return tokens


def keyword(token: Token) -> str | None:
    """The grammar keyword a word is, if any (a quoted word never is)."""
    if token.quoted:
        return None
    w = keyword_form(token.text)
    return w if w in KEYWORDS else None


# --------------------------------------------------------------------------------------
# Parsing


class Parser:
    """The cursor over one command's words (after the verb and its reason): a verb's
    parse rule reads its subject, options and values through it. ``usage`` is the
    verb's usage line (shown with every problem), ``options`` the words of its options
    (named when a word does not go with it); ``verbs`` and ``whole_usage`` serve
    ``help <verb>``."""

    def __init__(self, verb: str, tokens: list[Token], *, usage: str = "", options: str = "",
                 verbs: tuple[str, ...] = (), whole_usage: str = ""):
        self.verb = verb
        self.tokens = tokens
        self.i = 0
        self.last_keyword: str | None = None
        self.usage = usage
        self.option_words = options
        self.verbs = verbs
        self.whole_usage = whole_usage

    # -- basics
    def fail(self, problem: str) -> UsageError:
        """The error naming ``problem``, with the verb's usage."""
        return UsageError(problem, self.usage)

    def peek(self) -> Token | None:
        """The next word, not taken."""
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def at_value(self) -> bool:
        """Whether a word that is not a keyword comes next."""
        tok = self.peek()
        return tok is not None and keyword(tok) is None

    def take(self) -> Token:
        """The next word, taken."""
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def value(self, keyword: str, what: str) -> Token:
        """The value after ``keyword``; refuses a missing one, naming ``what`` it should be."""
        if not self.at_value():
            raise self.fail(f"`{keyword}` needs {what}")
        return self.take()

    def end(self) -> None:
        """Refuse any word left."""
        tok = self.peek()
        if tok is not None:
            raise self.fail(f"unknown word `{show(tok.text)}`")

    # -- the word after the verb
    def subject(self, pattern: re.Pattern[str], what: str, example: str) -> str:
        """The word after the verb (an AMI or instance id), lowercased, matching ``pattern``."""
        if not self.at_value():
            raise self.fail(f"`{self.verb}` needs {what} first, e.g. `{self.verb} {example} from ...`")
        word = self.take().text
        w = word.lower()
        if not pattern.fullmatch(w):
            raise self.fail(f"`{show(word)}` is not {what} (expected {example.split('-')[0]}- followed by 8 or 17 hex digits)")
        return w

    # -- options after the subject, in any order, each at most once
    def options(self, handlers: dict[str, Callable[[str], object]]) -> dict[str, object]:
        """The options after the subject, in any order, each at most once: ``handlers``
        reads each keyword's value; a keyword not among them is refused, naming the
        verb's options."""
        seen: dict[str, object] = {}
        while (tok := self.peek()) is not None:
            kw = keyword(tok)
            if kw is None:
                raise self.unknown(tok, handlers)
            if kw not in handlers:
                opts = self.option_words
                where = f"its options are {opts}" if opts else "it takes no options"
                raise self.fail(f"`{show(tok.text)}` does not go with `{self.verb}` ({where})")
            if kw in seen:
                raise self.fail(f"`{kw}` is given twice")
            self.take()
            self.last_keyword = kw
            seen[kw] = handlers[kw](kw)
        return seen

    def unknown(self, tok: Token, handlers: dict[str, Callable[[str], object]]) -> UsageError:
        """The error for a word that is no keyword, with the likeliest fix."""
        word = show(tok.text)
        w = tok.text.lower()
        close = difflib.get_close_matches(keyword_form(w)[:30], sorted(handlers), n=1, cutoff=0.75)
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
        """An account (alias, 12-digit or dashed id) with an optional ``:region``."""
        w = word.lower()
        acct, colon, region = w.partition(":")
        if m := _DASHED_ACCOUNT_ID_RE.fullmatch(acct):
            acct = "".join(m.groups())
        if acct in ORG_WORDS or acct in PUBLIC_WORDS:
            raise self.fail(f"`{show(word)}` is not an account: {role} must be one account (an alias or a 12-digit id)")
        if not ALIAS_RE.fullmatch(acct):
            raise self.fail(f"`{show(word)}` is not an account (expected an alias like `prod` or a 12-digit account id)")
        if acct.isdigit() and not ACCOUNT_ID_RE.fullmatch(acct):
            raise self.fail(f"`{show(word)}` is not an account id (an account id has 12 digits)")
        if not colon:
            return AccountRef(acct, None)
        if not region_allowed:
            raise self.fail(
                f"`{show(word)}`: {role} is an account without a region "
                f"(the AMI stays in the source region; use `copy` to put it in another region)"
            )
        if not region:
            raise self.fail(f"`{show(word)}`: put a region after the colon, e.g. `{acct}:eu-west-1`")
        if not REGION_RE.fullmatch(region):
            raise self.fail(f"`{show(region)}` is not a region (expected e.g. eu-west-1)")
        return AccountRef(acct, region)

    def source(self, kw: str) -> AccountRef:
        """``from``: the source account, with an optional region."""
        tok = self.value(kw, "an account, e.g. `from prod` or `from prod:eu-west-1`")
        return self.account(tok.text, region_allowed=True, role="the source")

    def request_id(self) -> str:
        """A request id (``R-17``, ``r17``, ``#17``, ``17``) and nothing after it."""
        if not self.at_value():
            raise self.fail(f"`{self.verb}` needs a request id, e.g. `{self.verb} R-17`")
        word = self.take().text
        m = _REQUEST_ID_RE.fullmatch(word)
        if not m:
            raise self.fail(f"`{show(word)}` is not a request id (expected e.g. R-17)")
        self.end()
        return f"R-{int(m.group(1))}"


def _looks_like_account(w: str) -> bool:
    acct = w.partition(":")[0]
    return bool(ALIAS_RE.fullmatch(acct) or _DASHED_ACCOUNT_ID_RE.fullmatch(acct))


def flag(kw: str) -> bool:
    """The value of an option that is a bare word (``verify``, ``allow-copy``)."""
    return True


def require(p: Parser, got: dict[str, object], key: str, shape: str) -> None:
    """Refuse a command that lacks the option ``key`` (e.g. ``from``)."""
    if key not in got:
        raise p.fail(f"`{p.verb}` needs `{key} {shape}`")


def take_reason(verb: str, tokens: list[Token], *, takes_reason: bool, reason_verbs: tuple[str, ...], usage: str) -> tuple[list[Token], str | None]:
    """Remove ``reason "…"`` (anywhere after the verb) from the words of a verb that
    ``takes_reason`` (``reason_verbs``: all of them, named when another verb is given
    one). Returns the other words and the reason."""
    at = next((i for i, t in enumerate(tokens) if keyword(t) == "reason"), None)
    if at is None:
        return tokens, None
    if not takes_reason:
        raise UsageError(f"`reason` goes with a request ({', '.join(reason_verbs)}), not with `{verb}`", usage)
    value = tokens[at + 1] if at + 1 < len(tokens) else None
    if value is None or keyword(value) is not None or not value.text.strip():
        raise UsageError('`reason` needs the reason in quotes, e.g. reason "release 2.3 for the dev team"', usage)
    if any(keyword(t) == "reason" for t in tokens[at + 2 :]):
        raise UsageError("`reason` is given twice: give one reason, in quotes", usage)
    text = " ".join(value.text.split())
    if len(text) > REASON_LIMIT:
        raise UsageError(f"the reason has {len(text)} characters; at most {REASON_LIMIT}", usage)
    return tokens[:at] + tokens[at + 2 :], text
