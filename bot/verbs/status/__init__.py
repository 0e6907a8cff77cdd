"""``/ami status <request-id>``: a request's state and steps (answered at once)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import Parser
from bot.verbs.verb import Syntax, Verb


@dataclass(frozen=True)
class StatusCommand:
    """``status R-17``."""

    request_id: str

    def render(self) -> str:
        """The canonical text of this command."""
        return f"status {self.request_id}"


def parse(p: Parser) -> StatusCommand:
    """The words after ``status``: one request id."""
    return StatusCommand(p.request_id())


SYNTAX = Syntax(
    verb="status", parse=parse, usage="/ami status  <request-id>", example="/ami status R-17",
    summary="A request's state and steps",
)
VERB = Verb(SYNTAX)
