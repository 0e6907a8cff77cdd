"""What a command the grammar could not read still says, as form answers: the verb (or
the closest one), the AMI or instance, ``from``, ``to``, the options and the reason, so
"Open the form" (``bot.forms.unreadable_answer``) opens the form with them filled in.

Read word by word and leniently: a word that does not fit is left out, never guessed
at; the form then asks for what is missing, and the grammar judges the submission.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from bot.config import Config
from bot.errors import UsageError
from bot.verbs import registry
from bot.verbs.form_fields import FormAnswers
from bot.verbs.lexer import AMI_ID_RE, AZ_RE, INSTANCE_ID_RE, ORG_WORDS, OU_ID_RE, REGION_RE, Token, keyword, keyword_form, normalise, tokenise

_VALUED = ("from", "to", "for", "kms", "name", "subnet", "share-with", "update-lt", "reason")
_SINGLE = ("for", "kms", "subnet", "update-lt")  # one word each (a name or reason may have run on unquoted)
_FLAGS = ("allow-copy", "verify", "no-reboot", "with-copies", "default")
_MODES = ("deprecate", "disable", "deregister")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _tokens(text: str) -> list[Token]:
    text = normalise(text or "")
    try:
        return tokenise(text, "")
    except UsageError:  # an unclosed quote: plain words, quotes dropped
        return [Token(w.strip("\"'")) for w in text.split() if w.strip("\"'")]


def _verb(word: str) -> str | None:
    offered = list(registry.form_verbs())
    found = registry.verb(keyword_form(word))
    if found is not None and found.name in offered:
        return found.name
    close = difflib.get_close_matches(keyword_form(word)[:30], offered, n=1, cutoff=0.6)
    return close[0] if close else None


def _alias(config: Config, word: str) -> str | None:
    """The configured alias a typed account (alias or id) names, if any."""
    word = word.lower().replace("-", "") if word.replace("-", "").isdigit() else word.lower()
    return next((alias for alias, account in config.accounts.items() if word in (alias, account.id)), None)


def understood(text: str, config: Config) -> FormAnswers:
    """The form answers ``text`` (what followed ``/ami``) holds, as far as they can be read."""
    tokens = _tokens(text)
    verb = _verb(tokens[0].text) if tokens else None
    got: dict[str, list[str]] = {}
    flags: list[str] = []
    values: dict[str, Any] = {}
    i = 1
    while i < len(tokens):
        tok, kw = tokens[i], keyword(tokens[i])
        i += 1
        if kw in _VALUED:
            taken: list[str] = []
            while i < len(tokens) and keyword(tokens[i]) is None and not (taken and kw in _SINGLE):
                taken.append(tokens[i].text)
                i += 1
            got.setdefault(kw, taken)  # type: ignore[arg-type]
        elif kw in _FLAGS or keyword_form(tok.text) in _FLAGS:
            flags.append(keyword_form(tok.text))
        elif AMI_ID_RE.fullmatch(tok.text.lower()):
            values.setdefault("ami", tok.text.lower())
        elif INSTANCE_ID_RE.fullmatch(tok.text.lower()):
            values.setdefault("instance", tok.text.lower())
        elif keyword_form(tok.text) in _MODES:
            values.setdefault("mode", keyword_form(tok.text))
        elif _DATE_RE.fullmatch(tok.text):
            values.setdefault("date", tok.text)
        elif "=" in tok.text and not tok.text.startswith("="):
            values.setdefault("tags", [])
            values["tags"].append(tok.text)
    if got.get("from"):
        account, _, region = got["from"][0].partition(":")
        values["source"] = _alias(config, account)
        values["region"] = region.lower() if REGION_RE.fullmatch(region.lower()) else None
    verb = _targets(config, verb, [w for word in got.get("to", []) for w in word.split(",") if w.strip()], values)
    for kw, field_id in (("for", "duration"), ("kms", "kms"), ("name", "name"), ("subnet", "subnet"), ("update-lt", "update_lt"), ("reason", "reason")):
        if got.get(kw):
            values[field_id] = " ".join(got[kw])
    if values.get("duration"):
        values["duration"] = values["duration"].replace(" ", "").lower()
    if got.get("share-with"):
        values["share_with"] = tuple(a for w in got["share-with"] for a in (_alias(config, x) for x in w.split(",")) if a)
    if verb:
        values[f"{verb}_options"] = tuple(flags)
    values["tags"] = tuple(values.get("tags", ()))
    return FormAnswers(verb, {k: v for k, v in values.items() if v})


def _targets(config: Config, verb: str | None, words: list[str], values: dict[str, Any]) -> str | None:
    """``to``'s words as the verb's target fields; returns the verb (a copy to several
    account-regions is a distribution)."""
    accounts: list[str] = []
    target_regions: list[str] = []
    for word in words:
        account, _, region = word.strip().lower().partition(":")
        if verb == "migrate" and AZ_RE.fullmatch(account):
            values["zone"] = account
        elif account in ORG_WORDS or OU_ID_RE.fullmatch(account):
            values["target_other"] = account
        elif (alias := _alias(config, account)) is not None:
            accounts += [alias] if alias not in accounts else []
            if REGION_RE.fullmatch(region) and region not in target_regions:
                target_regions.append(region)
    if verb == "copy" and len(accounts) <= 1 and len(target_regions) <= 1:
        values["target"] = accounts[0] if accounts else None
        values["target_region"] = target_regions[0] if target_regions else None
        return verb
    values["targets"] = tuple(accounts)
    values["target_regions"] = tuple(target_regions)
    return "distribute" if verb == "copy" else verb
