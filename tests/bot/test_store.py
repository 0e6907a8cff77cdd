"""The store: migrations, compare-and-set transitions, approvals and the outbox,
on real SQLite files."""

import threading

import pytest

from bot.errors import RequestNotFoundError
from bot.requests import APPROVED, DENIED, PENDING_APPROVAL, RUNNING, PlannedStep, STEP_DONE
from bot.store import Store


def make_request(store: Store, **overrides):
    fields = dict(
        kind="share", uid="abc123", requester="U1", channel="C1", command_text="share ami-1 from prod to dev",
        params={}, facts={}, approver_accounts=["prod"],
        steps=[PlannedStep("ec2.add_launch_permission", "prod", "111111111111", "us-east-1", {"image_id": "ami-1"}, "add launch permission")],
        ttl_seconds=3600, state=PENDING_APPROVAL,
    )
    fields.update(overrides)
    return store.create_request(**fields)


def test_migrations_are_recorded_and_idempotent(tmp_path):
    path = str(tmp_path / "a.db")
    Store(path)
    store = Store(path)  # a second start must not re-run migrations
    from bot.store import MIGRATIONS
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_request_round_trip_with_plan_and_audit(tmp_path):
    store = Store(str(tmp_path / "a.db"), clock=lambda: 1000.0)
    request = make_request(store)
    assert request.display_id == "R-1"
    assert request.expires_at == 4600.0
    assert [s.action for s in request.steps] == ["ec2.add_launch_permission"]
    assert store.audit(request.id)[0]["to_state"] == PENDING_APPROVAL
    with pytest.raises(RequestNotFoundError):
        store.get(99)


def test_transition_is_compare_and_set(tmp_path):
    store = Store(str(tmp_path / "a.db"))
    request = make_request(store)
    assert store.transition(request.id, PENDING_APPROVAL, APPROVED, "U2")
    assert not store.transition(request.id, PENDING_APPROVAL, DENIED, "U3")  # lost the race
    assert store.get(request.id).state == APPROVED
    with pytest.raises(ValueError):
        store.transition(request.id, APPROVED, DENIED, "U3")  # not a transition of the state machine
    assert [a["to_state"] for a in store.audit(request.id)] == [PENDING_APPROVAL, APPROVED]


def test_concurrent_transitions_have_exactly_one_winner(tmp_path):
    path = str(tmp_path / "a.db")
    store = Store(path)
    request = make_request(store)
    winners = []
    barrier = threading.Barrier(16)

    def contend(i):
        barrier.wait()
        if store.transition(request.id, PENDING_APPROVAL, APPROVED, f"U{i}"):
            winners.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert len([a for a in store.audit(request.id) if a["to_state"] == APPROVED]) == 1


def test_approvals_record_each_account_once(tmp_path):
    store = Store(str(tmp_path / "a.db"))
    request = make_request(store, approver_accounts=["prod", "dev"])
    assert store.record_approvals(request.id, ["prod"], "U2") == ["prod"]
    assert store.record_approvals(request.id, ["prod", "dev"], "U3") == ["dev"]
    assert store.get(request.id).approvals == {"prod": "U2", "dev": "U3"}


def test_steps_record_results(tmp_path):
    store = Store(str(tmp_path / "a.db"))
    request = make_request(store)
    store.transition(request.id, PENDING_APPROVAL, APPROVED, "U2")
    store.transition(request.id, APPROVED, RUNNING, "amibot")
    store.mark_step(request.id, 1, STEP_DONE, result={"added": [{"UserId": "2"}]})
    step = store.get(request.id).steps[0]
    assert step.state == STEP_DONE and step.result == {"added": [{"UserId": "2"}]}


def test_outbox_dedupes_and_keeps_order(tmp_path):
    now = [100.0]
    store = Store(str(tmp_path / "a.db"), clock=lambda: now[0])
    first = store.enqueue("reply", {"text": "a"}, request_id=None, dedupe_key="final:1")
    assert store.enqueue("reply", {"text": "again"}, dedupe_key="final:1") is None
    second = store.enqueue("reply", {"text": "b"})
    assert [r["id"] for r in store.pending_outbox()] == [first, second]
    store.retry_outbox_later(first, 30, "ratelimited")
    assert [r["id"] for r in store.pending_outbox()] == [second]
    now[0] += 31
    assert [r["id"] for r in store.pending_outbox()] == [first, second]
    store.finish_outbox(first, "sent")
    assert [r["id"] for r in store.pending_outbox()] == [second]


def test_store_survives_reopen(tmp_path):
    path = str(tmp_path / "a.db")
    store = Store(path)
    request = make_request(store)
    store.close()
    assert Store(path).get(request.id).command_text == request.command_text


def test_database_file_is_private(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "private.db"
        store = Store(str(path))
        store.remember_signature("v0=x", 1)  # a write: the -wal and -shm files exist now
        for name in ("private.db", "private.db-wal", "private.db-shm"):
            file = tmp_path / name
            if file.exists():
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, name
        store.close()
    finally:
        os.umask(old)
