"""A process's leases (bot/leases.py) on both databases: one holder at a time, within
the process and across processes; renewal while work runs; takeover after a death."""

from __future__ import annotations

import threading
import time

from bot.leases import Leases, make_holder
from bot.store import Store


def test_holder_ids_differ_per_process_object():
    assert make_holder() != make_holder()


def test_one_holder_across_processes_and_threads(store_target):
    store = Store(store_target)
    a, b = Leases(store, seconds=30), Leases(store, seconds=30)
    with a.hold("request:1") as got_a:
        assert got_a
        with b.hold("request:1") as got_b:
            assert not got_b  # another process
        with a.hold("request:1") as again:
            assert not again  # another thread of the same process
    with b.hold("request:1") as got_b:
        assert got_b  # released on exit
    a.stop(), b.stop()


def test_a_held_lease_is_renewed_past_its_expiry(store_target):
    now = [1000.0]
    store = Store(store_target, clock=lambda: now[0])
    a, b = Leases(store, seconds=0.6), Leases(store, seconds=0.6)

    def expires_at() -> float:
        return store.db.execute("SELECT expires_at FROM leases WHERE name = ?", ["request:2"]).fetchone()[0]

    with a.hold("request:2") as got:
        assert got
        for _ in range(3):  # past the first expiry twice over, in the store's time
            now[0] += 0.5
            # The renewer thread runs on its own cadence: wait for its renewal, not for a time.
            deadline = time.monotonic() + 30
            while expires_at() < now[0] + 0.6 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert expires_at() == now[0] + 0.6
        assert not b.claim("request:2")
        assert not a.lost("request:2")
        assert a.report()["held_here"] == 1 and a.healthy()
    a.stop(), b.stop()


def test_a_dead_holders_lease_is_taken_over_after_expiry(store_target):
    now = [1000.0]
    store = Store(store_target, clock=lambda: now[0])
    dead = Leases(store, seconds=30, holder="dead-1-abc")
    assert dead.claim("request:3")  # then the process dies: nobody renews
    alive = Leases(store, seconds=30)
    assert alive.held_by_others("request:") == {"request:3"}
    with alive.hold("request:3") as got:
        assert not got
    now[0] += 31
    assert alive.held_by_others("request:") == set()
    with alive.hold("request:3") as got:
        assert got
    alive.stop()


def test_a_lease_taken_while_stalled_is_reported_lost(store_target):
    now = [1000.0]
    store = Store(store_target, clock=lambda: now[0])
    slow = Leases(store, seconds=30)
    other = Leases(store, seconds=30)
    with slow.hold("request:4"):
        now[0] += 31  # this process stalled past its lease …
        assert other.claim("request:4")  # … and another took the request
        slow.renew()
        assert slow.lost("request:4")
    assert store.live_leases() == {"request:4": other.holder}  # releasing did not free other's lease
    slow.stop(), other.stop()


def test_waiting_for_a_lease_gets_it_when_the_holder_lets_go(store_target):
    store = Store(store_target)
    a, b = Leases(store, seconds=30), Leases(store, seconds=30)
    order = []
    with a.hold("request:5"):
        def waiter():
            with b.hold("request:5", wait=True) as got:
                order.append(("b", got))

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)
        order.append(("a done", True))
    thread.join(10)
    assert order == [("a done", True), ("b", True)]
    a.stop(), b.stop()


def test_stop_gives_every_lease_back(store_target):
    store = Store(store_target)
    a = Leases(store, seconds=30)
    a.claim("duty:expire_pending")
    a.claim("poll:111111111111:us-east-1")
    a.stop()
    assert store.live_leases() == {}


def test_a_replica_whose_clock_runs_45_s_ahead_cannot_take_a_live_lease(store_target):
    """An attacker's view of clock skew: expiry is decided on the database's clock, one
    for every replica, so a replica 45 s ahead does not see a 30 s lease as expired."""
    honest = Store(store_target)
    ahead = Store(store_target, clock=lambda: time.time() + 45, database_time=True)
    assert honest.claim_lease("request:9", "replica-a", 30)
    assert not ahead.claim_lease("request:9", "replica-b", 30)
    assert ahead.live_leases("request:") == {"request:9": "replica-a"}
    # The test clock is still injectable at the store (database_time off): it drives expiry.
    driven = Store(store_target, clock=lambda: time.time() + 45)
    assert driven.claim_lease("request:9", "replica-c", 30)


def test_the_key_policy_lock_is_a_store_lease_two_replicas_cannot_interleave(store_target):
    from bot.leases import LeaseKeyPolicyLock

    store = Store(store_target)
    a, b = Leases(store, seconds=30), Leases(store, seconds=30)
    lock_a, lock_b = LeaseKeyPolicyLock(a), LeaseKeyPolicyLock(b)
    key = "arn:aws:kms:us-east-1:111111111111:key/k"
    order: list[str] = []
    a_in, b_done = threading.Event(), threading.Event()
    release_a = threading.Event()

    def replica_a():
        with lock_a.hold(key):
            order.append("a-read")
            a_in.set()
            release_a.wait(10)
            order.append("a-put")

    def replica_b():
        a_in.wait(10)
        with lock_b.hold(key):
            order.append("b-read")
            order.append("b-put")
        b_done.set()

    threads = [threading.Thread(target=replica_a), threading.Thread(target=replica_b)]
    for t in threads:
        t.start()
    a_in.wait(10)
    assert store.live_leases("key-policy:") == {f"key-policy:{key}": a.holder}
    assert not b_done.wait(0.3)  # b waits while a holds the key's policy (with the lease it never gets in)
    release_a.set()
    for t in threads:
        t.join(10)
    assert order == ["a-read", "a-put", "b-read", "b-put"]
    a.stop(), b.stop()
