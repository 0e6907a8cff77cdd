"""The polling figures the distribution relies on: at most 2 describe calls per
account-region per tick however many copies are in flight (the naive count grows
with the copies)."""

from bench.poll_distribution import main


def test_at_most_two_describe_calls_per_account_region_per_tick():
    rows = {row["copies"]: row for row in main()["poll_distribution"]}
    assert rows[500]["account_regions"] == 4
    assert all(row["batched_max_per_account_region"] <= 2 for row in rows.values())
    assert rows[500]["batched_calls"] == 8 and rows[500]["naive_calls"] == 1000
