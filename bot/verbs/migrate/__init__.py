"""``/ami migrate``: an instance imaged and launched again in another zone of its region."""

from bot.verbs.migrate.plan import prepare_migrate, report_new_instance
from bot.verbs.migrate import text
from bot.verbs.migrate.command import SYNTAX, MigrateCommand
from bot.verbs.migrate.form import FORM
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX, command=MigrateCommand, prepare=prepare_migrate, risk=text.risk, card=text.card, alert=text.alert, after_success=(report_new_instance,), form=FORM)
