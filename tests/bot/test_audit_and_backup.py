"""``amibot audit`` and ``amibot backup`` on a real SQLite store holding real
requests (made over HTTP against the sandbox)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from datetime import datetime, timezone

import pytest

from bot.request_log import COLUMNS, SinceError, parse_since
from bot.cli import main
from offline import rehearsal


@pytest.fixture
def store_with_requests(harness, monkeypatch):
    """One encrypted share approved and done, one share cancelled; AMIBOT_DB points at the store."""
    image = harness.world.encrypted_image
    text = f"share {image} from prod to dev"
    harness.slash(text)
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    harness.slash(f"share {harness.world.plain_image} from prod to dev")
    harness.root_for(harness.world.plain_image)
    harness.slash("cancel R-2")
    harness.settle()
    monkeypatch.setenv("AMIBOT_DB", harness.bot.config.db_path)
    return harness


def _audit(capsys, *args) -> str:
    assert main(["audit", *args]) == 0
    return capsys.readouterr().out


def test_audit_exports_requests_decisions_steps_and_aws_changes(store_with_requests, capsys):
    events = [json.loads(line) for line in _audit(capsys).splitlines()]
    assert events and all(set(e) == set(COLUMNS) for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    first = [e for e in events if e["request"] == "R-1"]
    requested = next(e for e in first if e["event"] == "requested")
    assert requested["actor"] == rehearsal.REQUESTER and requested["action"] == "share"
    assert any(e["event"] == "approved" and e["actor"] == rehearsal.OWNER and e["account"] == "prod" for e in first)
    assert any(e["event"] == "state" and e["state"] == "pending_approval→approved" and e["actor"] == rehearsal.OWNER for e in first)
    steps = [e for e in first if e["event"] == "step"]
    assert [(e["action"], e["account"], e["state"]) for e in steps] == [
        ("ec2.add_launch_permission", rehearsal.PROD, "done"),
        ("kms.create_grant", rehearsal.PROD, "done"),
        ("verify.target_access", rehearsal.DEV, "done"),
    ]
    # The AWS change that unsharing needs: the grant id the share made.
    assert json.loads(steps[1]["data"])["grant_id"]
    assert all(e["request_uid"] for e in first)
    cancelled = [e for e in events if e["request"] == "R-2" and e["event"] == "state"]
    assert any(e["state"] == "pending_approval→cancelled" and e["actor"] == rehearsal.REQUESTER for e in cancelled)


def test_audit_csv_and_since(store_with_requests, capsys, tmp_path):
    out = tmp_path / "audit.csv"
    assert main(["audit", "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows and tuple(rows[0].keys()) == COLUMNS
    assert {r["request"] for r in rows} == {"R-1", "R-2"}
    assert _audit(capsys, "--since", "2099-01-01") == ""
    assert _audit(capsys, "--since", "1h").count("\n") == len(rows)


def test_audit_refuses_a_bad_since(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AMIBOT_DB", str(tmp_path / "none.db"))
    assert main(["audit"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(SinceError, match="neither a date nor a duration"):
        parse_since("last tuesday", datetime.now(timezone.utc))
    now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    assert parse_since("36h", now) == datetime(2026, 11, 28, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()


def test_backup_copies_the_live_store(store_with_requests, capsys, tmp_path):
    live = store_with_requests.bot.config.db_path
    target = tmp_path / "backup" / "amibot-backup.db"
    target.parent.mkdir()
    assert main(["backup", str(target)]) == 0
    assert "verified: 2 requests" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    copy = sqlite3.connect(target)
    source = sqlite3.connect(live)
    for table in ("requests", "steps", "approvals", "audit"):
        assert copy.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() == source.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    # A backup never overwrites a file.
    assert main(["backup", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_backup_of_postgres_prints_pg_dump_advice(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AMIBOT_DB", "postgresql://amibot:hunter2@db.internal:5432/amibot")
    assert main(["backup", str(tmp_path / "x.dump")]) == 2
    err = capsys.readouterr().err
    assert "pg_dump --format=custom" in err and "postgresql://amibot@db.internal:5432/amibot" in err
    assert "hunter2" not in err
    assert not (tmp_path / "x.dump").exists()
