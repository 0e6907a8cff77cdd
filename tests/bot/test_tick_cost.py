"""What a scheduler tick costs with many copies in flight (issue 20, item 4): one
batched poll per account-region; a copy the poll shows unchanged is neither resumed
nor recorded; a copy that moved is resumed and its progress recorded."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from slack_sdk import WebClient

from aws.actions.images import WaitImageAvailable
from bot.engine import PlanRunner
from bot.leases import Leases
from bot.notifier import Notifier
from bot.requests import RUNNING, STEP_DONE, SUCCEEDED
from bot.scheduler import Clockwork
from bot.store import Store
from offline.clock import Clock

ACCOUNT, REGION = "222222222222", "eu-west-1"


class Ec2:
    """DescribeImages/DescribeSnapshots over images whose state and progress the test
    sets. Like AWS: the ``state`` filter leaves out the images in other states, and an
    image whose state is ``gone`` (deregistered a while ago) is answered empty."""

    def __init__(self):
        self.images: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.filtered = 0  # DescribeImages calls with the state filter
        self.snapshot_calls = 0

    def describe_images(self, ImageIds: list[str] | None = None, Filters: list[dict[str, Any]] | None = None,
                        Owners: list[str] | None = None) -> dict[str, Any]:
        """By ids, or (the light look) the owner's images by filters: ``state`` and a
        ``tag:`` filter, which every image here matches (all are amibot's copies)."""
        self.calls += 1
        states = next((set(f["Values"]) for f in Filters or [] if f["Name"] == "state"), None)
        self.filtered += states is not None
        self.by_tag = getattr(self, "by_tag", 0) + (ImageIds is None)
        return {"Images": [{"ImageId": i, "State": self.images[i]["state"], "BlockDeviceMappings": [{"Ebs": {"SnapshotId": f"snap-{i[4:]}"}}]}
                           for i in (ImageIds if ImageIds is not None else list(self.images))
                           if self.images[i]["state"] != "gone" and (states is None or self.images[i]["state"] in states)]}

    def get_paginator(self, name: str) -> SimpleNamespace:
        assert name == "describe_images"
        return SimpleNamespace(paginate=lambda **kw: iter([self.describe_images(**kw)]))

    def describe_snapshots(self, SnapshotIds: list[str]) -> dict[str, Any]:
        self.snapshot_calls += 1
        return {"Snapshots": [{"SnapshotId": s, "Progress": f"{self.images['ami-' + s[5:]]['progress']}%"} for s in SnapshotIds]}


class Sessions:
    def __init__(self, ec2: Ec2):
        self.ec2 = ec2

    def client(self, service: str, account: str, region: str, *tag: Any) -> Ec2:
        return self.ec2


class InlineWorker:
    """Runs what is submitted at once (unless told not to) and remembers it."""

    def __init__(self):
        self.submitted: list[int] = []
        self.runs = True

    def submit(self, fn, *args):
        self.submitted.append(args[0])
        if self.runs:
            fn(*args)


@contextmanager
def tick_world(tmp_path, copies: int):
    clock = Clock(at=1_000_000.0)
    store = Store(str(tmp_path / "amibot.db"), clock=clock)
    leases = Leases(store, holder="this-process")
    notifier = Notifier(store, WebClient(base_url="http://127.0.0.1:9/", token="xoxb-test"), owners_of=lambda alias: [], leases=leases)
    ec2 = Ec2()
    runner = PlanRunner(store, Sessions(ec2), notifier, clock=clock, leases=leases, sleep=lambda s: None)
    worker = InlineWorker()
    clockwork = Clockwork(store, notifier, worker, runner, clock, leases=leases)
    account = SimpleNamespace(alias="prod", id=ACCOUNT)
    for n in range(copies):
        image_id = f"ami-{n:017x}"
        ec2.images[image_id] = {"state": "pending", "progress": 40}
        step = WaitImageAvailable.plan(account, REGION, WaitImageAvailable.Params(image_id=image_id), copy=True)
        store.create_request(kind="copy", uid=f"uid{n}", requester="U0ALICE", channel="C0COPY", command_text="copy", params={}, facts={},
                             approver_accounts=["prod"], steps=[step], ttl_seconds=3600, state=RUNNING)
    try:
        yield SimpleNamespace(clock=clock, store=store, ec2=ec2, worker=worker, clockwork=clockwork)
    finally:
        leases.stop()


def snapshot(store: Store) -> dict[str, list]:
    """Everything a resumed step would write: requests, steps, events, outbox."""
    return {table: [tuple(r) for r in store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()]
            for table in ("requests", "steps", "audit", "outbox")}


def counting_transactions(store: Store) -> list[int]:
    count = [0]
    real = store.transaction

    @contextmanager
    def counted():
        count[0] += 1
        with real() as db:
            yield db

    store.transaction = counted  # type: ignore[method-assign]
    return count


def test_a_tick_with_unchanged_copies_resumes_and_writes_nothing(tmp_path):
    with tick_world(tmp_path, copies=20) as world:
        world.clockwork.resume_waiting()  # the first look records every copy at 40 %
        assert sorted(world.worker.submitted) == list(range(1, 21))
        assert {s.result.get("progress") for n in range(1, 21) for s in world.store.get(n).steps} == {40}

        world.worker.submitted.clear()
        world.clock.advance(61)
        before, polls = snapshot(world.store), world.ec2.calls
        transactions = counting_transactions(world.store)
        assert world.clockwork.resume_waiting() == []
        assert world.worker.submitted == []  # nothing resumed
        assert snapshot(world.store) == before  # nothing recorded, nothing sent
        # No transaction at all: the one write, this account-region's poll lease, is a
        # single statement (bot.store.leases, kept off the front's write lock).
        assert transactions[0] == 0
        assert world.ec2.calls == polls + 1  # one batched DescribeImages

        world.clock.advance(5)  # the next tick, within the copies' poll interval
        world.clockwork.resume_waiting()
        assert world.ec2.calls == polls + 1  # not looked at again before it


def test_one_copy_that_moved_among_many_is_resumed_and_recorded(tmp_path):
    with tick_world(tmp_path, copies=20) as world:
        world.clockwork.resume_waiting()
        world.worker.submitted.clear()
        world.clock.advance(61)
        moved = "ami-" + f"{6:017x}"  # request 7
        world.ec2.images[moved]["progress"] = 55
        before = snapshot(world.store)
        assert world.clockwork.resume_waiting() == [7]
        assert world.worker.submitted == [7]
        [step] = world.store.get(7).steps
        assert step.result["progress"] == 55 and "55%" in (world.store.get(7).progress or "")
        after = snapshot(world.store)
        changed = {row[0] for row in set(after["requests"]) - set(before["requests"])}
        assert changed == {7}
        assert {row[0] for row in set(after["steps"]) - set(before["steps"])} == {7}


def test_a_copy_that_finished_or_failed_is_noticed_on_the_next_tick(tmp_path):
    with tick_world(tmp_path, copies=5) as world:
        world.clockwork.resume_waiting()
        world.worker.submitted.clear()
        world.clock.advance(61)
        world.ec2.images[f"ami-{1:017x}"]["state"] = "available"
        world.ec2.images[f"ami-{2:017x}"]["state"] = "failed"
        world.ec2.images[f"ami-{3:017x}"]["state"] = "deregistered"
        assert sorted(world.clockwork.resume_waiting()) == [2, 3, 4]
        assert world.store.get(2).steps[0].state == STEP_DONE
        assert world.store.get(2).state == SUCCEEDED
        assert world.store.get(3).state == "failed" and world.store.get(4).state == "failed"


def test_progress_is_read_once_a_minute_and_shown_then(tmp_path):
    with tick_world(tmp_path, copies=1) as world:
        world.clockwork.resume_waiting()  # shown at 40 %
        world.clock.advance(35)
        world.ec2.images[f"ami-{0:017x}"]["progress"] = 45
        assert world.clockwork.resume_waiting() == []  # a light look: progress is not read within the minute
        world.clock.advance(35)  # the full look: 45 % read, recorded and shown
        assert world.clockwork.resume_waiting() == [1]
        request = world.store.get(1)
        assert "45%" in request.progress and request.progress_shown_at == world.clock()
        world.clock.advance(35)
        assert world.clockwork.resume_waiting() == []  # caught up: left be again


def test_progress_held_back_by_the_edit_interval_is_shown_once_it_is_over(tmp_path):
    with tick_world(tmp_path, copies=1) as world:
        world.clockwork.resume_waiting()  # shown at 40 %
        world.clock.advance(35)
        world.clockwork.runner.image_status.full_every = 30  # this account-region's full look comes within the edit minute
        world.ec2.images[f"ami-{0:017x}"]["progress"] = 45
        assert world.clockwork.resume_waiting() == [1]  # recorded, not shown (within the minute)
        request = world.store.get(1)
        shown_at = request.progress_shown_at
        assert "45%" in request.progress and world.clock() - shown_at < 60
        world.clock.advance(35)  # unchanged since, but the minute is over: shown now
        assert world.clockwork.resume_waiting() == [1]
        assert world.store.get(1).progress_shown_at > shown_at
        world.clock.advance(35)
        assert world.clockwork.resume_waiting() == []  # caught up: left be again


def test_between_full_looks_only_images_no_longer_pending_are_asked_for(tmp_path):
    with tick_world(tmp_path, copies=20) as world:
        world.clockwork.resume_waiting()  # the first look is a full one
        world.worker.submitted.clear()
        assert (world.ec2.filtered, world.ec2.snapshot_calls) == (0, 1)
        world.clock.advance(35)
        world.ec2.images[f"ami-{4:017x}"]["state"] = "available"
        world.ec2.images[f"ami-{5:017x}"]["state"] = "failed"
        assert sorted(world.clockwork.resume_waiting()) == [5, 6]  # noticed at the light look
        assert (world.ec2.filtered, world.ec2.snapshot_calls) == (1, 1)  # filtered, and no DescribeSnapshots
        assert world.ec2.by_tag == 1  # by the amibot:disposable tag, naming no ids: as small for 500 copies as for 1
        assert world.store.get(5).state == SUCCEEDED and world.store.get(6).state == "failed"
        world.clock.advance(35)  # a minute since the full look: the next one is full again
        world.clockwork.resume_waiting()
        assert (world.ec2.filtered, world.ec2.snapshot_calls) == (1, 2)


def test_an_image_gone_between_looks_is_noticed_by_the_full_look(tmp_path):
    """AWS answers a deregistered image empty after a while: absent from a filtered
    answer it would look pending forever; the unfiltered look once a minute sees it."""
    with tick_world(tmp_path, copies=3) as world:
        world.clockwork.resume_waiting()
        world.worker.submitted.clear()
        world.clock.advance(35)
        world.ec2.images[f"ami-{1:017x}"]["state"] = "gone"
        assert world.clockwork.resume_waiting() == []  # the light look cannot tell it from pending
        world.clock.advance(35)
        assert world.clockwork.resume_waiting() == [2]  # the full look finds it missing
        assert world.store.get(2).steps[0].result.get("misses") == 1


def test_a_restart_looks_at_every_copy_again(tmp_path):
    with tick_world(tmp_path, copies=3) as world:
        world.clockwork.resume_waiting()
        world.worker.submitted.clear()
        world.clock.advance(61)
        assert world.clockwork.resume_waiting() == []
        fresh = Clockwork(world.store, world.clockwork.notifier, world.worker, world.clockwork.runner, world.clock, leases=world.clockwork.leases)
        assert sorted(fresh.resume_unfinished()) == [1, 2, 3]  # crash recovery resumes everything


def test_a_target_not_started_is_run_though_the_other_copies_are_unchanged(tmp_path):
    """A distribution whose process stopped after one target's copy started and before
    the next target's first step: the unchanged copy does not hold that target back."""
    with tick_world(tmp_path, copies=1) as world:
        account = SimpleNamespace(alias="prod", id=ACCOUNT)
        image_id = f"ami-{99:017x}"
        world.ec2.images[image_id] = {"state": "pending", "progress": 40}
        wait = WaitImageAvailable.plan(account, REGION, WaitImageAvailable.Params(image_id=image_id), copy=True)
        steps = [replace(wait, params={**wait.params, "unit": "prod:eu-west-1"}),
                 replace(wait, action="ec2.copy_image", params={"unit": "prod:us-west-2"}, description="Copy to us-west-2")]
        world.store.create_request(kind="distribute", uid="uid-d", requester="U0ALICE", channel="C0COPY", command_text="distribute",
                                   params={}, facts={}, approver_accounts=["prod"], steps=steps, ttl_seconds=3600, state=RUNNING)
        world.worker.runs = False
        world.store.save_step_progress(2, 1, {"image_id": image_id, "progress": 40, "misses": 0})  # its copy: recorded at 40 %
        world.clockwork.resume_waiting()
        world.clock.advance(61)
        world.worker.submitted.clear()
        assert 2 in world.clockwork.resume_waiting()


def test_a_tick_reads_copies_in_flight_without_loading_whole_requests(tmp_path):
    with tick_world(tmp_path, copies=20) as world:
        world.clockwork.resume_waiting()
        world.worker.submitted.clear()
        world.clock.advance(61)
        world.ec2.images[f"ami-{6:017x}"]["progress"] = 55  # request 7 moved
        loaded: list = []
        for name in ("get", "find"):
            real = getattr(world.store, name)
            setattr(world.store, name, lambda *a, _real=real, _name=name, **k: loaded.append(_name) or _real(*a, **k))
        world.worker.runs = False
        assert world.clockwork.resume_waiting() == [7]
        assert loaded == []  # the narrow read only; the engine loads request 7 when it runs it
