"""``/ami unshare``: remove what shares added (launch permission, grants, key-policy
statements), and record it in the earlier shares once done."""

from bot.verbs.unshare.plan import prepare_unshare
from bot.verbs.unshare.settle import settle_unshared
from bot.verbs.unshare import text
from bot.verbs.unshare.command import SYNTAX, UnshareCommand
from bot.verbs.unshare.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=UnshareCommand, prepare=prepare_unshare, risk=text.risk, card=text.card, alert=text.alert, after_success=(settle_unshared,), form=FORM)
