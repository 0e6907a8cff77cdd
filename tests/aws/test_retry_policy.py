"""The retry policy an action declares (aws/actions/retry.py): a failed removal backs
off from one minute, doubling, to one hour; a wait is spread by the jitter."""

from __future__ import annotations

from aws.actions import ACTIONS, Action
from aws.actions.retry import DEFAULT, RetryPolicy, slowest


def test_the_default_backs_off_from_a_minute_doubling_to_an_hour():
    assert [DEFAULT.backoff(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_wait_is_spread_by_the_jitter_and_nothing_else():
    policy = RetryPolicy(jitter=0.1)
    assert policy.spread(30.0, lambda low, high: low) == 27.0
    assert policy.spread(30.0, lambda low, high: high) == 33.0
    assert RetryPolicy(jitter=0.0).spread(30.0) == 30.0


def test_every_action_declares_a_policy_and_the_slowest_wins():
    assert Action.retry == DEFAULT and all(isinstance(a.retry, RetryPolicy) for a in ACTIONS.values())
    patient = RetryPolicy(initial_interval=300.0)
    assert slowest([DEFAULT, patient]) is patient and slowest([]) is DEFAULT
    assert not DEFAULT.gives_up_after(1000) and RetryPolicy(maximum_attempts=3).gives_up_after(3)
