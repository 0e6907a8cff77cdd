"""``/ami history``: past requests, paged, visible by the same rule as ``/ami status``
(answered at once; the lines and the CSV are built by ``bot.history``)."""

from bot.verbs.history.command import SYNTAX, HistoryCommand
from bot.verbs.verb import Verb

__all__ = ["HistoryCommand", "VERB"]

VERB = Verb(SYNTAX)
