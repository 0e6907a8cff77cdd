"""``/ami audit``: who can use an AMI and what amibot changed (answered by the
services at once; it changes nothing, so nobody approves it)."""

from bot.verbs.audit.command import SYNTAX
from bot.verbs.verb import Verb

VERB = Verb(SYNTAX)
