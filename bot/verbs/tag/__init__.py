"""``/ami tag``: an approved change of an AMI's (and its snapshots') tags."""

from bot.verbs.tag.plan import prepare_tag
from bot.verbs.tag import text
from bot.verbs.tag.command import SYNTAX, TagCommand
from bot.verbs.tag.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=TagCommand, prepare=prepare_tag, risk=text.risk, card=text.card, alert=text.alert, form=FORM)
