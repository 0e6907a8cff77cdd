"""``/ami copy``: a copy of an AMI owned by another account (or in another region).
Several targets make a distribution (``bot.verbs.distribute``)."""

from bot.verbs.copy.plan import prepare_copy, settle_copy
from bot.verbs.copy import text
from bot.verbs.copy.command import SYNTAX, CopyCommand
from bot.verbs.copy.form import FORM
from bot.verbs.verb import Verb

# The launch notes come first in the final reply, then the new AMI (as always).
VERB = Verb(SYNTAX, command=CopyCommand, prepare=prepare_copy, risk=text.risk, card=text.card, after_success=(text.launch_notes, settle_copy), form=FORM)
