"""Holdings in the store: who relies on which AWS access, counted across requests
(real SQLite and real PostgreSQL)."""

from __future__ import annotations

import pytest

from bot.holdings import StoreHoldings
from bot.requests import ACTIVE, APPROVED, FAILED, RUNNING, SUCCEEDED
from bot.store import Store

RESOURCE = "ec2:launch:111111111111:us-east-1:ami-1:222222222222"


@pytest.fixture
def store(store_target):
    return Store(store_target)


def new_request(store: Store, state: str) -> int:
    request = store.create_request(
        kind="share", uid=f"uid-{state}-{len(store.find(limit=1000))}", requester="U0BOB", channel="C1",
        command_text="share", params={}, facts={}, approver_accounts=["prod"], steps=[], ttl_seconds=60, state="pending_approval",
    )
    path = {"approved": [APPROVED], "running": [APPROVED, RUNNING], "active": [APPROVED, RUNNING, ACTIVE],
            "succeeded": [APPROVED, RUNNING, SUCCEEDED], "failed": [APPROVED, RUNNING, FAILED]}[state]
    current = "pending_approval"
    for nxt in path:
        assert store.transition(request.id, current, nxt, "test")
        current = nxt
    return request.id


def test_the_creator_removes_what_nobody_else_holds(store):
    mine = StoreHoldings(store, new_request(store, "running"))
    mine.hold(RESOURCE, created=True)
    assert mine.release(RESOURCE, created=True).remove


def test_a_live_holder_keeps_what_its_creator_lets_go(store):
    creator = StoreHoldings(store, new_request(store, "active"))  # a time-boxed share
    creator.hold(RESOURCE, created=True)
    permanent = new_request(store, "succeeded")  # found it there, relies on it
    StoreHoldings(store, permanent).hold(RESOURCE, created=False)
    release = creator.release(RESOURCE, created=True)
    assert not release.remove and release.kept_for == [f"R-{permanent}"]
    assert "still needs it" in release.why_kept()


def test_the_last_holder_removes_what_amibot_created(store):
    creator = StoreHoldings(store, new_request(store, "active"))
    creator.hold(RESOURCE, created=True)
    copy = StoreHoldings(store, new_request(store, "running"))
    copy.hold(RESOURCE, created=False)
    assert not creator.release(RESOURCE, created=True).remove
    # The copy found it there, but amibot made it: the last one out removes it.
    assert copy.release(RESOURCE, created=False).remove


def test_what_a_person_made_is_never_removed_by_a_release(store):
    request = StoreHoldings(store, new_request(store, "running"))
    request.hold(RESOURCE, created=False)
    assert not request.release(RESOURCE, created=False).remove


def test_holders_that_ended_do_not_count(store):
    failed = new_request(store, "failed")
    StoreHoldings(store, failed).hold(RESOURCE, created=False)
    creator = StoreHoldings(store, new_request(store, "running"))
    creator.hold(RESOURCE, created=True)
    assert creator.release(RESOURCE, created=True).remove


def test_an_unshare_ends_shares_in_force_but_keeps_what_work_in_flight_needs(store):
    permanent, timeboxed = new_request(store, "succeeded"), new_request(store, "active")
    StoreHoldings(store, permanent).hold(RESOURCE, created=True)
    StoreHoldings(store, timeboxed).hold(RESOURCE, created=False)
    unshare = StoreHoldings(store, new_request(store, "running"))
    assert unshare.end(RESOURCE).remove  # both shares in force end with the unshare
    assert store.holders(RESOURCE) == []
    assert all(any("ended by" in (a["detail"] or "") for a in store.events(r)) for r in (permanent, timeboxed))

    copy = new_request(store, "running")  # a copy reading through its temporary share
    StoreHoldings(store, copy).hold(RESOURCE, created=False)  # a person had made it
    release = StoreHoldings(store, new_request(store, "running")).end(RESOURCE)
    assert not release.remove and release.kept_for == [f"R-{copy}"]
    # The unshare asked for its removal: the copy removes it when it lets go.
    assert StoreHoldings(store, copy).release(RESOURCE, created=False).remove
