"""``/ami share``: launch access to an AMI for accounts, the organisation or an OU."""

from bot.verbs.share.plan import prepare_share
from bot.verbs.share import text
from bot.verbs.share.command import SYNTAX, ShareCommand
from bot.verbs.share.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=ShareCommand, prepare=prepare_share, risk=text.risk, card=text.card, alert=text.alert, statement=text.statement, after_success=(text.launch_notes,), form=FORM)
