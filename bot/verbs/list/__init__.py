"""``/ami list [pending|mine|active|all]``: requests (answered at once)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import LIST_SCOPES, Parser, show
from bot.verbs.verb import Syntax, Verb


@dataclass(frozen=True)
class ListCommand:
    """``list mine``."""

    scope: str = "pending"  # pending | mine | active | all

    def render(self) -> str:
        """The canonical text of this command."""
        return f"list {self.scope}"


def parse(p: Parser) -> ListCommand:
    """The words after ``list``: an optional scope."""
    if p.peek() is None:
        return ListCommand("pending")
    word = p.take().text
    scope = word.lower()
    if scope not in LIST_SCOPES:
        raise p.fail(f"unknown word `{show(word)}` (list takes pending, mine, active or all)")
    p.end()
    return ListCommand(scope)


SYNTAX = Syntax(
    verb="list", parse=parse, usage="/ami list    [pending|mine|active|all]", example="/ami list mine",
    summary="Requests: pending, mine, active or all", synonyms=("ls",),
)
VERB = Verb(SYNTAX)
