"""The slash-command grammar: the text after ``/ami`` becomes a typed command.

Generated from the verb registry (``bot.verbs.registry``): each verb's parse rule,
usage line, example, options and whether it takes ``reason "…"`` are in its folder
(``bot/verbs/<verb>/command.py``), so the usage, ``help <verb>``, the verbs that take
a reason and the options a problem names come from one table and cannot disagree.
The shared lexer (patterns, normalisation, tokeniser, the parser's cursor) is
``bot.verbs.lexer``; its names and every command type are re-exported here.

This module only checks syntax. It does not know the configured accounts (``bot.config``
resolves aliases) and it never talks to Slack or AWS. Every problem is a
:class:`~bot.errors.UsageError` whose message names the word that was wrong, with the
usage line of the verb (or the whole usage for an unknown verb).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Union

from bot.errors import UsageError
from bot.verbs import registry
from bot.verbs.audit.command import AuditCommand
from bot.verbs.cancel import CancelCommand
from bot.verbs.copy.command import CopyCommand
from bot.verbs.distribute.command import DistributeCommand
from bot.verbs.help import EmptyCommand, HelpCommand
from bot.verbs.history import HistoryCommand
from bot.verbs.lexer import (  # noqa: F401  (re-exported for the existing importers of bot.grammar)
    ACCOUNT_ID_RE,
    ALIAS_RE,
    AMI_ID_RE,
    AMI_NAME_RE,
    AZ_RE,
    INSTANCE_ID_RE,
    KEYWORDS,
    KMS_ALIAS_RE,
    KMS_ARN_RE,
    KMS_KEY_ID_RE,
    LAUNCH_TEMPLATE_ID_RE,
    LIST_SCOPES,
    MAX_REASON_LENGTH,
    MAX_SHARE_DURATION,
    MIN_SHARE_DURATION,
    OU_ID_RE,
    PUBLIC_WORDS,
    REASON_LIMIT,
    REGION_PATTERN,
    REGION_RE,
    SUBNET_ID_RE,
    TAG_KEY_RE,
    AccountRef,
    LaunchTemplateRef,
    Parser,
    is_kms_key,
    is_reserved_word,
    keyword_form,
    normalise,
    show,
    take_reason,
    tokenise,
)
from bot.verbs.list import ListCommand
from bot.verbs.migrate.command import MigrateCommand
from bot.verbs.share.command import ShareCommand
from bot.verbs.status import StatusCommand
from bot.verbs.tag.command import TagCommand
from bot.verbs.unshare.command import UnshareCommand

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
    HistoryCommand,
    CancelCommand,
    HelpCommand,
    EmptyCommand,
]

VERBS: tuple[str, ...] = registry.names()
USAGE: str = "\n".join(v.syntax.usage for v in registry.ALL)
REASON_VERBS: tuple[str, ...] = registry.reason_verbs()
VERB_OPTIONS: dict[str, str] = {v.name: v.syntax.options for v in registry.ALL}


def usage_for(verb: str, command: str = "/ami") -> str:
    """The usage line of one verb and an example; the whole usage for an unknown verb.
    ``command`` is the configured slash command (``bot.command``)."""
    name = (verb or "").strip().lower()
    found = registry.verb(name)
    if found is None or found.name != name:  # a synonym ("ls") gets the whole usage, as before
        return usage(command)
    return _as_command(f"{found.syntax.usage}\ne.g. {found.syntax.example}", command)


def usage(command: str = "/ami") -> str:
    """The whole grammar, written with the configured slash command."""
    return _as_command(USAGE, command)


def _as_command(text: str, command: str) -> str:
    """Every line's leading ``/ami`` (after an optional ``e.g. ``) as ``command``."""
    return re.sub(r"^(e\.g\. )?/ami(?= )", lambda m: (m.group(1) or "") + command, text, flags=re.MULTILINE)


def parse_command(text: str | None) -> Command:
    """Parse the text after ``/ami``. Raises :class:`UsageError` naming what was wrong."""
    text = normalise(text or "")
    first = text.split(None, 1)[0] if text.split() else ""
    verb_guess = keyword_form(first.strip("\"'"))
    tokens = tokenise(text, usage_for(verb_guess))
    if not tokens:
        return EmptyCommand()
    found = registry.verb(keyword_form(tokens[0].text))
    if found is None:
        word = keyword_form(tokens[0].text)
        close = difflib.get_close_matches(word[:30], VERBS, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (start with one of: {', '.join(VERBS)})"
        raise UsageError(f"unknown command `{show(tokens[0].text)}`{hint}", USAGE)
    syntax = found.syntax
    verb_usage = usage_for(syntax.verb)
    rest, reason = take_reason(syntax.verb, tokens[1:], takes_reason=syntax.takes_reason, reason_verbs=REASON_VERBS, usage=verb_usage)
    command = syntax.parse(Parser(syntax.verb, rest, usage=verb_usage, options=syntax.options, verbs=VERBS, whole_usage=USAGE))
    return dataclasses.replace(command, reason=reason) if reason is not None else command  # type: ignore[type-var]
