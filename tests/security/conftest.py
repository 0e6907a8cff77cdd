"""A stack started with a config of the test's own (the attacker's tests change
``[bot]`` and ``[accounts.*]``)."""

from __future__ import annotations

import pytest

from offline import rehearsal
from offline.stack import start_stack
from tests.conftest import bot_options


@pytest.fixture
def stack_with(sandbox, fake_slack, tmp_path, clock):
    """``stack_with(bot_lines=..., prod_lines=...)``: the offline stack whose ``[bot]``
    and ``[accounts.prod]`` tables get these extra TOML lines."""
    started = []

    def start(bot_lines: str = "", prod_lines: str = "", **options):
        toml = rehearsal.SANDBOX_TOML.replace("approval_ttl_hours = 24\n", "approval_ttl_hours = 24\n" + bot_lines + "\n", 1)
        toml = toml.replace("[accounts.dev]", prod_lines + "\n\n[accounts.dev]", 1)
        stack = start_stack(sandbox, fake_slack, str(tmp_path / f"amibot{len(started)}.db"), toml=toml, **bot_options(clock), **options)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.bot.stop()
