"""``/ami copy``: a copy of an AMI owned by another account (or in another region).
Several targets make a distribution (``bot.verbs.distribute``)."""

from bot.verbs.copy.plan import prepare_copy, settle_copy
from bot.verbs.copy import text
from bot.verbs.copy.command import SYNTAX, CopyCommand
from bot.verbs.copy.form import FORM
from bot.verbs.verb import Verb

# The final reply starts with the new AMI (bot.lifecycle, results first), then the launch notes.
VERB = Verb(SYNTAX, command=CopyCommand, prepare=prepare_copy, risk=text.risk, card=text.card, alert=text.alert, statement=text.statement, after_success=(text.launch_notes, settle_copy), form=FORM)
