"""``/ami retire``: deprecate, disable or deregister a golden image, with every copy
amibot made of it (``with-copies``), each its own group of steps."""

from bot.verbs.retire.plan import prepare_retire
from bot.verbs.retire import text
from bot.verbs.retire.command import SYNTAX, RetireCommand
from bot.verbs.retire.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=RetireCommand, prepare=prepare_retire, risk=text.risk, card=text.card, alert=text.alert, after_success=(text.settle_disabled,), form=FORM)
