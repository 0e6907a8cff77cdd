"""Jobs handed from the HTTP front to the workers (bot/jobs.py) and the leases at a
process's start (issue 20): a start frees only the leases of processes that are not
running; a job is done once, and a dead worker's job is taken when its lease expires."""

from __future__ import annotations

import socket
import subprocess
import threading

from bot.jobs import JobRunner, Jobs
from bot.leases import Leases
from bot.store import Store


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_start_frees_the_leases_of_stopped_processes_only(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    live = Leases(store, seconds=30)
    live.announce("worker")  # a worker sharing the file, running
    assert live.claim("request:1")
    killed = Leases(store, seconds=30, holder=f"{socket.gethostname()}-{dead_pid()}-abc123")
    killed.announce("worker")  # killed a moment ago: its heartbeat has not expired yet
    assert killed.claim("request:2")
    assert store.claim_lease("request:3", "old-host-4242-dead00", 10 ** 6)  # no heartbeat at all
    starting = Leases(store, seconds=30)
    starting.announce("front")
    assert starting.take_over_dead() == 3  # killed's two, the old one's
    assert store.live_leases("request:") == {"request:1": live.holder}
    assert set(starting.alive()) == {live.holder, starting.holder}
    assert set(starting.alive("worker")) == {live.holder}
    killed._stop.set()  # (its renewer, standing in for the dead process, stops too)
    live.stop(), starting.stop()
    assert store.live_leases() == {}  # a clean stop gives back the heartbeat too


def test_the_front_records_jobs_and_the_single_process_runs_them_with_the_same_payload(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    ran = []

    class Inline:
        def submit(self, fn, *args, **kwargs):
            return fn(*args, **kwargs)

    here = Jobs(Inline())
    here.register("run", lambda request_id: ran.append(request_id))
    here.submit("run", request_id=7)
    assert ran == [7] and store.waiting_jobs() == []
    front = Jobs(Inline(), store)
    front.register("run", lambda request_id: ran.append(request_id))
    front.submit("run", request_id=8)
    assert ran == [7]  # not here: in the store, for a worker
    assert [(j["kind"], j["payload"]) for j in store.waiting_jobs()] == [("run", {"request_id": 8})]


def worker_of(store: Store, done: list, holder: str | None = None, block: threading.Event | None = None) -> JobRunner:
    jobs = Jobs(None)

    def run(request_id: int) -> None:
        if block is not None:
            block.wait(30)
        done.append(request_id)

    jobs.register("run", run)
    return JobRunner(jobs, store, Leases(store, seconds=30, holder=holder), threads=2)


def test_a_job_is_done_once_and_a_dead_workers_job_is_taken_when_its_lease_expires(tmp_path):
    now = [1000.0]
    store = Store(str(tmp_path / "amibot.db"), clock=lambda: now[0])
    done: list[int] = []
    a, b = worker_of(store, done), worker_of(store, done)
    first = store.add_job("run", {"request_id": 1})
    assert a.dispatch() == [first]
    a.drain(30)
    assert b.dispatch() == [] and done == [1] and store.waiting_jobs() == []  # done once, by a
    # A worker claimed job 2 and died in it: nobody renews its lease.
    second = store.add_job("run", {"request_id": 2})
    assert store.claim_lease(f"job:{second}", "dead-host-1-abcdef", 30)
    assert b.dispatch() == []  # its lease is live: left to it
    now[0] += 31
    assert b.dispatch() == [second]
    b.drain(30)
    assert done == [1, 2] and store.waiting_jobs() == []
    a.stop(), b.stop()


def test_a_worker_takes_no_more_jobs_than_it_has_threads(tmp_path):
    store = Store(str(tmp_path / "amibot.db"))
    done: list[int] = []
    block = threading.Event()
    busy, idle = worker_of(store, done, block=block), worker_of(store, done)
    ids = [store.add_job("run", {"request_id": n}) for n in range(3)]
    assert busy.dispatch() == ids[:2]  # two threads
    assert busy.dispatch() == []
    deadline = 0
    while len(store.live_leases("job:")) < 2 and deadline < 1000:  # both started and hold their lease
        deadline += 1
        threading.Event().wait(0.01)
    assert idle.dispatch() == [ids[2]]  # the other worker takes the third
    block.set()
    busy.drain(30), idle.drain(30)
    assert sorted(done) == [0, 1, 2]
    busy.stop(), idle.stop()


def test_a_job_that_killed_its_workers_is_dropped(tmp_path):
    now = [1000.0]
    store = Store(str(tmp_path / "amibot.db"), clock=lambda: now[0])
    job = store.add_job("run", {"request_id": 9})
    for _ in range(JobRunner.MAX_CLAIMS):
        assert store.count_job_claim(job) is not None  # each worker that took it died
    done: list[int] = []
    worker = worker_of(store, done)
    assert worker.dispatch() == [job]
    worker.drain(30)
    assert done == [] and store.waiting_jobs() == []
    worker.stop()


def test_bolts_ack_wait_wakes_on_ack_instead_of_polling():
    from slack_bolt.context.ack import Ack
    from slack_bolt.listener import thread_runner

    from bot import bolt_ack

    bolt_ack.install()
    bolt_ack.install()  # once is enough; twice changes nothing
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(thread_runner.time.sleep(30)))
    waiter.start()
    while not bolt_ack._ACKED._waiters:  # the request thread waits for the ack …
        threading.Event().wait(0.001)
    ack = Ack()
    ack(text="ok")  # … and the listener's ack() wakes it, not the end of its wait
    waiter.join(30)
    assert woke == [True] and ack.response.status == 200


def test_the_sqlite_fronts_replay_guard_refuses_what_it_or_an_earlier_run_accepted(tmp_path):
    from bot.replay_memory import RememberedSignatures

    store = Store(str(tmp_path / "amibot.db"))
    assert store.remember_signature("v0=before", 100)  # accepted by an earlier run
    guard = RememberedSignatures(store)
    assert not guard("v0=before", 100)
    assert guard("v0=new", 200)
    assert not guard("v0=new", 200)  # a replay to this front
    guard.flush()
    assert store.signature_seen("v0=new")  # and recorded for the next run
    assert not RememberedSignatures(store)("v0=new", 200)
