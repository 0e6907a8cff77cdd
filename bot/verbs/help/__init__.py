"""``/ami help [<verb>]`` (and ``/ami`` alone): the usage, generated from the registry."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import UsageError
from bot.verbs.lexer import Parser, keyword_form, show
from bot.verbs.verb import Syntax, Verb


@dataclass(frozen=True)
class HelpCommand:
    """``help`` or ``help share``."""

    topic: str | None = None  # "/ami help share" -> "share"; None: the whole usage

    def render(self) -> str:
        """The canonical text of this command."""
        return f"help {self.topic}" if self.topic else "help"


@dataclass(frozen=True)
class EmptyCommand:
    """``/ami`` with no text."""

    def render(self) -> str:
        """The canonical text of this command (none)."""
        return ""


def parse(p: Parser) -> HelpCommand:
    """The words after ``help``: an optional verb (one of ``p.verbs``)."""
    if p.peek() is None:
        return HelpCommand(None)
    word = p.take().text
    topic = keyword_form(word)
    if topic not in p.verbs:
        raise UsageError(f"there is no command `{show(word)}` to help with", p.whole_usage)
    p.end()
    return HelpCommand(topic)


SYNTAX = Syntax(
    verb="help", parse=parse, usage="/ami help    [<command>]", example="/ami help share",
    summary="How to write each command", synonyms=("?",),
)
VERB = Verb(SYNTAX)
