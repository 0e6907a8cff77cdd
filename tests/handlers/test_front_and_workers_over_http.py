"""`amibot serve --workers 2` as it runs (issue 20): an HTTP front that only answers
Slack and records the work, and two `amibot work` processes that do it, sharing one
SQLite file. A slash command's card arrives through a worker; a worker SIGKILLed
holding an approved request's run is replaced, and the run is finished by another
worker once its leases expire; the front's /healthz counts the workers.

The sandbox runs as a moto server in this process (AWS state outlives the bots).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from bot.store import Store
from offline import rehearsal
from offline.net import free_port
from offline.replicas import Replica
from offline.sandbox import Sandbox
from offline.slack import FakeSlack
from tests.conftest import SUITE_CONSISTENCY_DELAY


@pytest.fixture(scope="module")
def server_sandbox(sandbox_session):
    sandbox = Sandbox(rehearsal.REGION, server=True, consistency_delay=SUITE_CONSISTENCY_DELAY, permission_delay=0, status_check_delay=0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def admin_health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 while no worker is alive: the same report
        return json.loads(error.read())


def wait_until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_a_card_arrives_through_a_worker_and_a_killed_workers_run_is_finished_by_another(server_sandbox, tmp_path):
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    rehearsal.enforce_generated_policies(server_sandbox, rehearsal.sandbox_config(str(tmp_path / "policy.db"), env={}))
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    db = str(tmp_path / "amibot.db")
    admin = free_port()
    front = Replica("front", tmp_path, server_sandbox, fake, db, workers=2, args=("--admin-port", str(admin)))
    try:
        # Every process inherits the pause; only the first to reach it stops there.
        front.start(pause_at="before:1", env={"AMIBOT_PAUSE_ONCE": "1"})
        health = wait_until(lambda: (h := admin_health(admin))["workers"]["alive"] == 2 and h)
        assert health["role"] == "front" and health["ok"] and health["scheduler"] is False

        # The front acks; a worker preflights (the front has no scheduler and no pool
        # for AWS work) and the card arrives.
        image = world.plain_image
        answer = front.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev")
        assert answer.status == 200 and "Checking" in answer.json()["text"]
        root = fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "")), None), 60)

        # Approved in the front; the run is a job a worker claims: kill that worker in it.
        front.slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        front.wait_paused("before:1", timeout=60)
        worker = front.paused_pid("before:1")
        assert worker != front.pid and parent_of(worker) == front.pid  # a worker paused, not the front
        os.kill(worker, signal.SIGKILL)

        # Another worker finishes it once the dead one's leases expire; the front starts a new worker.
        final = fake.wait_for(lambda: [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")], 60)
        assert len(final) == 1
        store = Store(db)
        request = store.get(1)
        assert request.state == "succeeded" and all(s.state == "done" for s in request.steps)
        done_by = {r[0] for r in store.db.execute("SELECT done_by FROM steps WHERE request_id = 1").fetchall()}
        assert done_by and all(holder and holder.rsplit("-", 2)[1] not in (str(worker), str(front.pid)) for holder in done_by)
        launch = server_sandbox.session(rehearsal.PROD).client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")
        assert launch["LaunchPermissions"] == [{"UserId": rehearsal.DEV}]  # once
        # One SQLite file shared by the processes: WAL, nothing waiting.
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        health = wait_until(lambda: (h := admin_health(admin))["workers"]["alive"] == 2 and h["workers"]["jobs_waiting"] == 0 and h)
        assert str(worker) not in " ".join(health["workers"]["holders"])
        # The front wrote its jobs to its inbox, not to the file the workers write, and
        # forgot them once the workers marked them done.
        inbox = Store(db + "-front")
        assert inbox.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()[0] >= 2
        assert store.db.execute("SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'jobs'").fetchone()[0] == 0
        assert wait_until(lambda: inbox.waiting_jobs() == [] and store.db.execute("SELECT COUNT(*) FROM job_marks").fetchone()[0] == 0)
    finally:
        front.stop()
        fake.stop()
