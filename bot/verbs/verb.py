"""The record of one verb: everything amibot knows about ``/ami <verb>``, named in one
place (``bot/verbs/<verb>/__init__.py``) and listed once in ``bot.verbs.registry``.

:class:`Syntax` is what the grammar needs (``command.py``: the parse rule, the usage
line, the example, the one-line help, the options, whether it takes ``reason "…"``);
:class:`Verb` adds what happens to a request of it: how it is prepared (preflight and
plan), its risk line on the card, and what it settles and says after success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bot.requests import Request
from bot.verbs.common import PlanningContext, Prepared
from bot.verbs.form_fields import VerbForm
from bot.verbs.lexer import Parser

Preparer = Callable[[PlanningContext, Any], Prepared]
# After a request succeeds: what it settles in the store and the lines it adds to the
# final reply. Called as (request, store, third): the third argument is passed through
# unread by the registry (what the hook needs to tell others).
AfterSuccess = Callable[[Request, Any, Any], list[str]]


@dataclass(frozen=True)
class Syntax:
    """How a verb is typed: its parse rule and the words that explain it."""

    verb: str
    parse: Callable[[Parser], Any]  # the words after the verb (reason removed) -> the command
    usage: str  # the usage line, written with ``/ami``
    example: str  # one example, written with ``/ami``
    summary: str  # what it does, in one line (the form's choice, the help)
    options: str = ""  # its options as a person writes them, e.g. "kms <key>, verify"
    takes_reason: bool = False  # whether ``reason "…"`` may go with it (the requests)
    synonyms: tuple[str, ...] = ()  # other words for the verb ("ls" for list)


@dataclass(frozen=True)
class Verb:
    """One verb: its syntax and, for the verbs that make a request, the command type it
    prepares, how, its risk line, and its after-success hooks (run in order)."""

    syntax: Syntax
    command: type | None = None  # the command type ``prepare`` takes (None: answered at once)
    prepare: Preparer | None = None
    risk: Callable[[Request], str] | None = None  # the main risk in one line (the card, the Approve confirm)
    card: Callable[[Request], Any] | None = None  # the card's labelled fields (bot.verbs.cardtext.CardFacts)
    after_success: tuple[AfterSuccess, ...] = ()
    form: VerbForm | None = None  # its fields in the request form (``<verb>/form.py``); None: not offered there
    alert: Callable[[Request], str] | None = None  # what it asks, for a lock screen ("share payments-api prod → dev")
    statement: Callable[[Request], str | None] | None = None  # the IAM statement the target's roles need, if any (a modal, /ami status)

    @property
    def name(self) -> str:
        """The verb as typed."""
        return self.syntax.verb

    @property
    def in_form(self) -> bool:
        """Whether the request form offers it."""
        return self.form is not None
