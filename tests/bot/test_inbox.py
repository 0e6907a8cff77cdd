"""The HTTP front's inbox on SQLite (bot/store/inbox.py, issue 20): the front writes
what an ack needs to a file no worker writes; a job acked is there after the front's
crash; workers read it and mark claims and ends in the store."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from bot.jobs import InboxPruner, JobRunner, Jobs
from bot.leases import Leases
from bot.store import Store
from bot.store.inbox import Inbox, InboxReader, inbox_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker(store: Store, inbox, done: list) -> JobRunner:
    jobs = Jobs(None)
    jobs.register("run", lambda request_id: done.append(request_id))
    return JobRunner(jobs, store, Leases(store, seconds=30), inbox=inbox, threads=2)


def digest(path: str) -> str:
    """The inbox's database and write-ahead log, as bytes (a write changes one of them)."""
    h = hashlib.sha256()
    for name in (path, path + "-wal"):
        if os.path.exists(name):
            h.update(open(name, "rb").read())
    return h.hexdigest()


def test_the_front_writes_its_inbox_only_and_a_worker_never_writes_it(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    path = inbox_path(store)
    assert path == str(tmp_path / "amibot.db") + "-front"
    inbox = Inbox(path)
    front = Jobs(None, inbox)
    front.submit("run", request_id=1), front.submit("run", request_id=2)
    assert store.waiting_jobs() == [] and [j["payload"] for j in inbox.waiting_jobs()] == [{"request_id": 1}, {"request_id": 2}]
    assert inbox.count_use("U1", 60) == 1 and store.db.execute("SELECT COUNT(*) FROM rate_counts").fetchone()[0] == 0
    before = digest(path)
    done: list[int] = []
    runner = worker(store, InboxReader(path), done)
    ids = runner.dispatch()
    runner.drain(30)
    assert sorted(done) == [1, 2] and store.done_jobs(ids) == set(ids)
    assert digest(path) == before  # the worker read the inbox and wrote the store only
    assert runner.dispatch() == []  # done: not again, though still in the inbox
    assert InboxPruner(inbox, store).prune() == 2  # the front forgets them, then their marks
    assert inbox.waiting_jobs() == [] and store.db.execute("SELECT COUNT(*) FROM job_marks").fetchone()[0] == 0
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        InboxReader(path).add_job("run", {"request_id": 3})  # SQLite refuses a worker's write
    runner.stop()


def test_a_job_acked_by_the_front_is_done_after_the_front_crashed(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    path = inbox_path(store)
    crash = ("import os, sys; from bot.jobs import Jobs; from bot.store.inbox import Inbox;"
             "Jobs(None, Inbox(sys.argv[1])).submit('run', request_id=5); os._exit(9)")  # killed right after the ack
    assert subprocess.run([sys.executable, "-c", crash, path], cwd=ROOT, timeout=60).returncode == 9
    done: list[int] = []
    runner = worker(store, InboxReader(path), done)
    assert len(runner.dispatch()) == 1
    runner.drain(30)
    assert done == [5]
    runner.stop()


def test_a_job_done_and_forgotten_meanwhile_is_not_done_again(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    inbox = Inbox(inbox_path(store))
    job_id = inbox.add_job("run", {"request_id": 7})
    done: list[int] = []
    late = worker(store, InboxReader(inbox.path), done)
    job = late.inbox.waiting_jobs()[0]  # seen waiting; then another worker did it and the front forgot it
    store.finish_job(job_id)
    assert InboxPruner(inbox, store).prune() == 1
    late._running.add(job_id)
    late._do(job)
    assert done == []
    late.stop()


def test_a_new_inbox_numbers_its_jobs_after_the_stores_marks(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    store.finish_job(41)  # a job of an inbox deleted since
    inbox = Inbox(inbox_path(store), after_job=store.last_marked_job())
    assert inbox.add_job("run", {"request_id": 1}) == 42


def test_a_worker_started_before_the_front_sees_no_jobs(tmp_path):
    reader = InboxReader(str(tmp_path / "amibot.db-front"))
    assert reader.waiting_jobs() == [] and reader.job_times() == [] and not reader.has_job(1)
    assert not os.path.exists(tmp_path / "amibot.db-front")  # and made no file


def test_on_sqlite_the_front_is_given_its_inbox_and_a_worker_a_read_only_view(tmp_path):
    import time

    from bot.app import Amibot
    from offline import rehearsal
    from tests.conftest import bot_options

    config = rehearsal.sandbox_config(str(tmp_path / "amibot.db"), "http://127.0.0.1:9/api/", env={})
    front = Amibot(config, **bot_options(time.time), role="front")
    worker_side = Amibot(config, **bot_options(time.time), role="worker")
    one = Amibot(config, **bot_options(time.time))
    try:
        assert isinstance(front.inbox, Inbox) and front.jobs.store is front.inbox
        assert front.service.access.count_use == front.inbox.count_use
        assert isinstance(worker_side.inbox, InboxReader) and worker_side.job_runner.inbox is worker_side.inbox
        assert one.inbox is one.store and not one.jobs.durable
        assert front.listeners._pool._max_workers == 32 and one.listeners._pool._max_workers == 8  # free threads for acks
    finally:
        for bot in (front, worker_side, one):
            bot.worker.shutdown(wait=True), bot.listeners.shutdown(wait=True), bot.catalog.shutdown()


def test_with_one_database_a_worker_marks_and_forgets_its_jobs(store_target):
    store = Store(store_target)  # PostgreSQL: the store is the front's inbox
    assert inbox_path(store) is None or store.kind == "sqlite"
    job_id = store.add_job("run", {"request_id": 3})
    assert store.count_job_claim(job_id) == 1 and store.count_job_claim(job_id) == 2  # two tries so far
    done: list[int] = []
    runner = worker(store, None, done)
    assert runner.dispatch() == [job_id]
    runner.drain(30)
    assert done == [3] and store.waiting_jobs() == [] and store.done_jobs([job_id]) == set()  # job, then its mark, forgotten
    store.finish_job(99)
    assert store.count_job_claim(99) is None and store.last_marked_job() == 99
    runner.stop()


def test_jobs_an_earlier_version_left_in_the_store_move_to_the_inbox(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    old = store.add_job("run", {"request_id": 4})  # recorded by the front before the inbox
    inbox = Inbox(inbox_path(store), after_job=max(store.last_marked_job(), store.last_job_id()))
    assert inbox.adopt_jobs(store) == 1 and store.waiting_jobs() == []
    assert [(j["id"] > old, j["payload"]) for j in inbox.waiting_jobs()] == [(True, {"request_id": 4})]
