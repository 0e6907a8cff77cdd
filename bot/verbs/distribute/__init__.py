"""``/ami distribute`` (and ``/ami copy`` to several targets): one copy per
account-region, each target its own group of steps."""

from bot.verbs.distribute.plan import prepare_distribute
from bot.verbs.distribute import text
from bot.verbs.distribute.command import SYNTAX, DistributeCommand
from bot.verbs.distribute.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=DistributeCommand, prepare=prepare_distribute, risk=text.risk, card=text.card, alert=text.alert, form=FORM)
