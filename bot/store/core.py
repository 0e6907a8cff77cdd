"""The ``Store``: all persistence of amibot, on SQLite (sqlite-utils) or PostgreSQL
(psycopg). It is the truth; the scheduler is only a clock.

It is one connection (``bot.store.connection``) and one part per concern, each in its
own module and each adding its methods to the one ``Store``:

- ``requests``: requests, their steps and approvals; ``votes``: each approver's vote
  (two-owner rules); ``events``: each request's events
  and the request log that ``amibot audit`` exports;
- ``outbox``: messages to Slack; ``slack_messages``: posted messages edited later;
  ``replays``: signatures and Events API deliveries already seen; ``home``: who opened
  the App Home;
- ``leases``: which process does what; ``holdings``: which request relies on which
  AWS access; ``drift``: what differs from AWS; ``counts``: figures for the metrics;
  ``jobs``: work the HTTP front hands to the worker processes.
"""

from __future__ import annotations

from typing import Any

from bot.store.counts import CountStore
from bot.store.drift import DriftStore
from bot.store.holdings import HoldingStore
from bot.store.in_flight import InFlightStore
from bot.store.home import HomeStore
from bot.store.jobs import JobStore
from bot.store.leases import LeaseStore
from bot.store.outbox import OutboxStore
from bot.store.rates import RateStore
from bot.store.replays import ReplayStore
from bot.store.requests import RequestStore
from bot.store.schema import SCHEMA_CHANGES
from bot.store.slack_messages import SlackMessageStore
from bot.store.votes import VoteStore


class Store(RequestStore, InFlightStore, VoteStore, OutboxStore, SlackMessageStore, ReplayStore, HomeStore, LeaseStore, HoldingStore, DriftStore, CountStore, RateStore, JobStore):
    """All persistence of amibot, on SQLite or PostgreSQL (``target``: a file path, or
    nothing for ``amibot.db``; or a ``postgresql://…`` URL). Thread-safe: one
    connection per thread."""

    def health(self) -> dict[str, Any]:
        """A cheap account of the store for /healthz and ``amibot doctor``: its kind,
        where it is (no credentials), whether it answers, the schema changes run and
        expected, and the leases held and expired."""
        report: dict[str, Any] = {"kind": self.kind, "database": self.backend.describe(), "reachable": False,
                                  "version": None, "expected_version": len(SCHEMA_CHANGES), "leases": None}
        try:
            report["version"] = self.schema_version()
            report["leases"] = self.lease_counts()
            report["reachable"] = True
        except Exception as error:  # the report says what failed; no credentials in it
            report["error"] = type(error).__name__
        report["migrated"] = report["version"] == report["expected_version"]
        return report
