"""`amibot migrate-store`: an installation moves from SQLite to a real PostgreSQL
without losing a request, approval, step result, audit entry or outbox message."""

from __future__ import annotations

from bot.cli import main
from bot.requests import APPROVED, PENDING_APPROVAL, RUNNING, STEP_DONE, PlannedStep
from bot.store import Store

STEPS = [
    PlannedStep("ec2.add_launch_permission", "prod", "111111111111", "us-east-1", {"image_id": "ami-1"}, "add launch permission"),
    PlannedStep("kms.create_grant", "prod", "111111111111", "us-east-1", {"key_arn": "arn:k"}, "grant dev use of the key"),
]


def populated_sqlite(path: str) -> Store:
    store = Store(path, clock=lambda: 1000.0)
    for n in range(3):
        store.create_request(kind="share", uid=f"uid{n}", requester="U1", channel="C1", command_text=f"share ami-{n} from prod to dev",
                             params={"n": n}, facts={"checked": ["x"]}, approver_accounts=["prod", "dev"], steps=STEPS, ttl_seconds=3600, state=PENDING_APPROVAL)
    store.record_approvals(2, ["prod", "dev"], "U2")
    store.transition(2, PENDING_APPROVAL, APPROVED, "U2")
    store.transition(2, APPROVED, RUNNING, "amibot")
    store.mark_step(2, 1, STEP_DONE, result={"added": [{"UserId": "222222222222"}]})
    store.save_step_progress(2, 2, {"grant_id": "g-1"})
    store.set_fields(2, wake_at=1030.5, progress="20%", root_ts="1700000000.000200")
    store.enqueue("reply", {"text": "R-2 approved"}, request_id=2, dedupe_key="approved:2")
    store.enqueue("respond", {"url": "http://x", "text": "hi"})
    store.claim_lease("request:2", "old-process", 30)
    return store


def test_everything_moves_with_its_ids_and_the_sequences_continue(tmp_path, pg_url, capsys):
    path = str(tmp_path / "amibot.db")
    old = populated_sqlite(path)
    assert main(["migrate-store", "--from", f"sqlite:{path}", "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "requests" in out and "verified" in out and "MISMATCH" not in out

    new = Store(pg_url)
    assert new.kind == "postgresql"
    for number in (1, 2, 3):
        assert vars(new.get(number)) == vars(old.get(number))
        assert new.events(number) == old.events(number)
    assert new.outbox() == old.outbox()
    assert new.live_leases() == {}  # leases belong to the old processes
    # New rows continue after the copied ids.
    created = new.create_request(kind="share", uid="new", requester="U1", channel="C1", command_text="share", params={}, facts={},
                                 approver_accounts=["prod"], steps=STEPS, ttl_seconds=60, state=PENDING_APPROVAL)
    assert created.display_id == "R-4"
    assert new.enqueue("reply", {"text": "x"}) == max(r["id"] for r in old.outbox()) + 1
    assert new.events(4)[0]["id"] == max(a["id"] for n in (1, 2, 3) for a in old.events(n)) + 1


def test_a_target_holding_data_is_refused_unless_overwrite(tmp_path, pg_url, capsys):
    path = str(tmp_path / "amibot.db")
    populated_sqlite(path)
    target = Store(pg_url)
    target.create_request(kind="share", uid="other", requester="U9", channel="C9", command_text="share other", params={}, facts={},
                          approver_accounts=["prod"], steps=STEPS, ttl_seconds=60, state=PENDING_APPROVAL)
    assert main(["migrate-store", "--from", f"sqlite:{path}", "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert "already holds data" in err and "--overwrite" in err
    assert [r.command_text for r in target.find()] == ["share other"]  # unchanged

    assert main(["migrate-store", "--from", f"sqlite:{path}", "--to", pg_url, "--overwrite"]) == 0
    assert [r.command_text for r in target.find()] == [f"share ami-{n} from prod to dev" for n in (2, 1, 0)]


def test_bad_sources_and_targets_are_refused_with_the_fix(tmp_path, capsys):
    assert main(["migrate-store", "--from", f"sqlite:{tmp_path / 'missing.db'}", "--to", str(tmp_path / "new.db")]) == 2
    assert "There is no SQLite database" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # not created by the attempt
    assert main(["migrate-store", "--from", f"sqlite:{tmp_path / 'a.db'}", "--to", "mysql://x/y"]) == 2
    assert "postgresql://" in capsys.readouterr().err


def test_an_unreachable_server_is_a_message_not_a_traceback(tmp_path, capsys):
    path = str(tmp_path / "amibot.db")
    populated_sqlite(path)
    assert main(["migrate-store", "--from", path, "--to", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    assert "the database refused" in capsys.readouterr().err


def test_a_postgresql_store_moves_back_to_sqlite(tmp_path, pg_url, capsys):
    # Both ways: rows are inserted by sqlite-utils on a SQLite target, by psycopg on PostgreSQL.
    first = str(tmp_path / "first.db")
    old = populated_sqlite(first)
    assert main(["migrate-store", "--from", f"sqlite:{first}", "--to", pg_url]) == 0
    back = str(tmp_path / "back.db")
    assert main(["migrate-store", "--from", pg_url, "--to", f"sqlite:{back}"]) == 0
    assert "MISMATCH" not in capsys.readouterr().out
    new = Store(back)
    for number in (1, 2, 3):
        assert vars(new.get(number)) == vars(old.get(number))
        assert new.events(number) == old.events(number)
    assert new.outbox() == old.outbox()
