"""``/ami cancel <request-id>``: withdraw a request (answered at once)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import Parser
from bot.verbs.verb import Syntax, Verb


@dataclass(frozen=True)
class CancelCommand:
    """``cancel R-17``."""

    request_id: str

    def render(self) -> str:
        """The canonical text of this command."""
        return f"cancel {self.request_id}"


def parse(p: Parser) -> CancelCommand:
    """The words after ``cancel``: one request id."""
    return CancelCommand(p.request_id())


SYNTAX = Syntax(
    verb="cancel", parse=parse, usage="/ami cancel  <request-id>", example="/ami cancel R-17",
    summary="Withdraw a request",
)
VERB = Verb(SYNTAX)
