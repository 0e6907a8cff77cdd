"""Scenarios of the ``amibot demo`` rehearsal, one module per operation.

Each module has ``play(stage)``: it speaks to the real bot as people would (signed
slash commands and clicks), prints the conversation, and records expectations,
checked where possible from the target account's side. :data:`SCENARIOS` is the
registry, in the order of the transcript; the shared parts are in ``stage``.
"""

from __future__ import annotations

from typing import Callable

from offline.scenarios import copy, distribute, history, migrate, policy, retire, share, surfaces, unshare
from offline.scenarios.stage import Stage

SCENARIOS: list[Callable[[Stage], None]] = [
    share.refused_aws_managed, share.play_unencrypted, share.play, migrate.refused_wrong_subnet, migrate.play,
    unshare.play,  # after share: it unshares what share shared
    unshare.org_share,
    copy.play_same_region, copy.play,  # it leaves only a copy in dev behind
    distribute.play, distribute.audit,  # after copy: its dev:eu-west-1 copy is not made again
    surfaces.play,  # its own AMI; it ends its share
    retire.play,  # it deregisters the distributed AMI and the copies amibot made of it
    history.play,  # after the day's requests: prod's history, the CSV, a stranger sees nothing
    policy.play,  # last: it moves the clock 4 h forward (escalation)
]
"""Demo scenarios, in the order of the transcript."""
