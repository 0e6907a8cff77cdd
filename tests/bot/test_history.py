"""``/ami history``'s grammar (bot/verbs/history) and its Next button's cursor (bot/history)."""

from __future__ import annotations

import pytest

from bot.errors import AmibotError, UsageError
from bot.grammar import HistoryCommand, parse_command
from bot.history import cursor_value, read_cursor


@pytest.mark.parametrize("text, expected", [
    ("history", HistoryCommand()),
    ("history prod", HistoryCommand(account="prod")),
    ("history 1111-1111-1111", HistoryCommand(account="111111111111")),
    ("history csv since 2026-11-01 AMI-0123456789ABCDEF0 dev", HistoryCommand(account="dev", image_id="ami-0123456789abcdef0", since="2026-11-01", csv=True)),
    ("history by <@U0BOB|bob>", HistoryCommand(by="U0BOB")),
    ("history by &lt;@U0BOB&gt;", HistoryCommand(by="U0BOB")),  # as Slack escapes it
    ("history R-17", HistoryCommand(number=17)),
    ("history r-17-0123456789abcdef", HistoryCommand(number=17, uid="0123456789abcdef")),
    ("history 0123456789abcdef", HistoryCommand(uid="0123456789abcdef")),
])
def test_words_in_any_order(text, expected):
    assert parse_command(text) == expected
    assert parse_command(expected.render()) == expected  # what the Next button carries reads back the same


@pytest.mark.parametrize("text, words", [
    ("history since", "needs a date"), ("history since 2026-2-1", "YYYY-MM-DD"), ("history since 2026-02-30", "no such day"),
    ("history by", "needs a person"), ("history by bob", "@ menu"), ("history csv csv", "one csv"),
    ("history ami-0123456789abcdef0 ami-0123456789abcdef1", "one image id"), ("history <!channel>", "unknown word"),
])
def test_bad_words_are_named(text, words):
    with pytest.raises(UsageError) as error:
        parse_command(text)
    assert words in error.value.user_message()


def test_the_cursor_reads_back_and_refuses_anything_else():
    command = HistoryCommand(account="prod", by="U0BOB", csv=True)
    assert read_cursor(cursor_value(42, command)) == (42, "history prod by <@U0BOB>")  # never csv
    for forged in ("", "x|history", "4|share ami-1 from prod to dev", "|history"):
        with pytest.raises(AmibotError):
            read_cursor(forged)
