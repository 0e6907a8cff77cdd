"""The one list of verbs. Everything per verb is read from here: the grammar
(``bot.grammar``: the usage, ``help <verb>``, which verbs take a reason, their
options), how a command is prepared, a request's risk line, and what runs after a
request succeeds. A new verb is a folder ``bot/verbs/<verb>/`` and one line below.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aws.reads import ParallelReads
from bot.errors import AmibotError, PreflightError
from bot.requests import Request
from bot.slacktext import escape
from bot.verbs import cardtext
from bot.verbs.audit import VERB as AUDIT
from bot.verbs.cardtext import CardFacts
from bot.verbs.cancel import VERB as CANCEL
from bot.verbs.common import PlanningContext, Prepared
from bot.verbs.copy import VERB as COPY
from bot.verbs.distribute import VERB as DISTRIBUTE
from bot.verbs.form_fields import VerbForm
from bot.verbs.help import VERB as HELP
from bot.verbs.history import VERB as HISTORY
from bot.verbs.list import VERB as LIST
from bot.verbs.migrate import VERB as MIGRATE
from bot.verbs.retire import VERB as RETIRE
from bot.verbs.share import VERB as SHARE
from bot.verbs.status import VERB as STATUS
from bot.verbs.tag import VERB as TAG
from bot.verbs.unshare import VERB as UNSHARE
from bot.verbs.verb import Verb

# In the order the usage lists them.
ALL: tuple[Verb, ...] = (SHARE, UNSHARE, COPY, DISTRIBUTE, AUDIT, TAG, MIGRATE, RETIRE, STATUS, LIST, HISTORY, CANCEL, HELP)

_BY_NAME: dict[str, Verb] = {v.name: v for v in ALL}
_BY_WORD: dict[str, Verb] = {**_BY_NAME, **{word: v for v in ALL for word in v.syntax.synonyms}}
_BY_COMMAND: dict[type, Verb] = {v.command: v for v in ALL if v.command is not None}


def verb(word: str) -> Verb | None:
    """The verb a word names (its name or a synonym), if any."""
    return _BY_WORD.get(word)


def names() -> tuple[str, ...]:
    """Every verb's name, in usage order."""
    return tuple(_BY_NAME)


def reason_verbs() -> tuple[str, ...]:
    """The verbs that take ``reason "…"`` (the ones that make a request)."""
    return tuple(v.name for v in ALL if v.syntax.takes_reason)


def form_verbs() -> dict[str, str]:
    """The verbs the request form offers, with their one-line summary."""
    return {v.name: v.syntax.summary for v in ALL if v.in_form}


def form_of(name: str | None) -> VerbForm | None:
    """The fields the request form shows for the verb ``name`` (None: not offered)."""
    found = _BY_NAME.get(name or "")
    return found.form if found is not None else None


def is_operation(command: Any) -> bool:
    """Whether the command makes a request (it has a preparer)."""
    found = _BY_COMMAND.get(type(command))
    return found is not None and found.prepare is not None


def prepare(ctx: PlanningContext, command: Any) -> Prepared:
    """Preflight and plan any operation's command."""
    found = _BY_COMMAND.get(type(command))
    if found is None or found.prepare is None:
        word = type(command).__name__.replace("Command", "").lower()
        raise AmibotError(f"`{word}` is not available yet.", fix="`/ami help` lists what works.")
    try:
        return found.prepare(ctx, command)
    except PreflightError:
        if not ctx.cached_facts_used or ctx.fresh:
            raise
        # A refusal never rests on a cached account-level fact (aws.account_facts):
        # the same preflight again, every fact read fresh.
        ctx.reads.close()
        return prepare(dataclasses.replace(ctx, reads=ParallelReads(), fresh=True, cached_facts_used=False), command)
    finally:
        ctx.reads.close()


def risk(request: Request) -> str:
    """The request's main risk in one line, in its verb's words."""
    found = _BY_NAME.get(request.kind)
    if found is None or found.risk is None:
        return f"{request.kind}: {request.params.get('image_id') or request.params.get('instance_id') or ''}".strip()
    return found.risk(request)


def alert(request: Request) -> str:
    """What the request asks, in a few words for a lock screen (its verb's ``text.alert``);
    the command itself for a verb without one (an extension)."""
    found = _BY_NAME.get(request.kind)
    if found is None or found.alert is None:
        return escape(" ".join(request.command_text.split())[:120])
    return found.alert(request)


def statement(request: Request) -> str | None:
    """The IAM statement the target's roles need after this request (its verb's
    ``text.statement``), if any: shown in a modal and in ``/ami status``."""
    found = _BY_NAME.get(request.kind)
    return found.statement(request) if found is not None and found.statement is not None else None
def card(request: Request) -> CardFacts:
    """The request's card fields (Requester and Why are the card's own), in its verb's words."""
    found = _BY_NAME.get(request.kind)
    return found.card(request) if found is not None and found.card is not None else cardtext.generic(request)


def settle_after_success(request: Request, store: Any, third: Any) -> list[str]:
    """Run the after-success hooks of the request's verb, in order, with ``third``
    passed through; returns the lines for the final reply. A hook's failure is logged,
    never turns a finished request into a failed one."""
    found = _BY_NAME.get(request.kind)
    lines: list[str] = []
    for hook in found.after_success if found else ():
        try:
            lines += hook(request, store, third)
        except Exception:
            logging.getLogger("amibot.verbs").exception("after-success hook of %s failed", request.display_id)
    return lines
