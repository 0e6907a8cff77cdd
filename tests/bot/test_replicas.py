"""Two real `amibot serve` processes on one real PostgreSQL: requests and clicks land
on either, one of them is SIGKILLed in the middle of a copy, sixteen clicks race over
both, and a rolling restart runs under a steady stream of commands.

The sandbox runs as a moto server in this process (AWS state outlives the bots), the
Slack stand-in too; leases and ticks are short (``lease_seconds = 3``,
``tick_seconds = 1``) so a dead replica's work is taken up within seconds.
"""

from __future__ import annotations

import threading
import time
import urllib.error

import pytest

from bot.requests import APPROVED, RUNNING, SUCCEEDED
from bot.store import Store
from offline import rehearsal
from offline.replicas import Replica
from offline.sandbox import Sandbox
from offline.slack import FakeSlack

LEASE_SECONDS = 3
TICK_SECONDS = 1

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_sandbox(sandbox_session):
    sandbox = Sandbox(rehearsal.REGION, server=True)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def deployment(server_sandbox, pg_url, tmp_path):
    """The sandbox world, a local Slack and two replicas (not started) on one database."""
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    replicas = [Replica(name, tmp_path, server_sandbox, fake, pg_url, lease_seconds=LEASE_SECONDS, tick_seconds=TICK_SECONDS) for name in ("a", "b")]
    try:
        yield world, fake, replicas, pg_url
    finally:
        for replica in replicas:
            replica.stop()
        server_sandbox.hold_pending(False)
        fake.stop()


def root_for(fake: FakeSlack, needle: str, after: int = 0, timeout: float = 30) -> dict:
    return fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL)[after:] if needle in m.get("text", "") and not m.get("reply_broadcast")), None), timeout)


def finals(fake: FakeSlack, root: dict) -> list[dict]:
    return [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")]


def transitions(store: Store, number: int, to_state: str) -> int:
    return len([a for a in store.events(number) if a["to_state"] == to_state])


def test_requests_and_clicks_alternate_between_replicas_and_each_ends_once(deployment):
    world, fake, (a, b), db = deployment
    a.start()
    b.start()
    flows = [
        (a, b, f"share {world.plain_image} from prod to dev"),
        (b, a, f"share {world.encrypted_image} from prod to dev allow-copy"),
        (a, b, f"unshare {world.plain_image} from prod to dev"),
        (b, a, f"unshare {world.encrypted_image} from prod to dev"),
    ]
    roots = []
    for number, (asked, clicked, text) in enumerate(flows, start=1):
        before = len(fake.messages(rehearsal.CHANNEL))
        assert asked.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, text).status == 200
        root = root_for(fake, f"R-{number}", after=before)
        # The approval message was posted by one replica; the click lands on the other.
        assert clicked.slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", f"R-{number}").status == 200
        fake.wait_for(lambda: finals(fake, root), 60)
        roots.append(root)

    store = Store(db)
    time.sleep(TICK_SECONDS * 2)  # a late duplicate would show by now
    for number, root in enumerate(roots, start=1):
        request = store.get(number)
        assert request.state == SUCCEEDED, (request.state, request.error)
        assert transitions(store, number, APPROVED) == 1 and transitions(store, number, RUNNING) == 1
        assert len(finals(fake, root)) == 1
        texts = [m["text"] for m in fake.thread(rehearsal.CHANNEL, root["ts"])]
        assert len(texts) == len(set(texts)), texts
    assert len([m for m in fake.messages(rehearsal.CHANNEL) if not m.get("reply_broadcast")]) == len(flows)
    # Back where it started in AWS: both shares removed.
    prod = world.sandbox.session(rehearsal.PROD).client("ec2")
    for image in (world.plain_image, world.encrypted_image):
        assert prod.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []


def test_sigkill_during_a_copy_the_other_replica_finishes_it(deployment, capsys):
    """A copies across accounts and regions, is SIGKILLed with the copy in flight, and
    B finishes it within the lease time plus a tick (plus the remaining steps)."""
    world, fake, (a, b), db = deployment
    sandbox = world.sandbox
    sandbox.hold_pending(True)  # the copy stays in flight until the test completes it
    a.start(pause_at="before:6")  # step 6 waits for the copy: A stops right before it
    b.start()
    image = world.encrypted_image
    a.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"copy {image} from prod to dev:{rehearsal.OTHER_REGION}")
    root = root_for(fake, image)
    a.slack.click(rehearsal.DEV_OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
    a.slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
    a.wait_paused("before:6")
    dev_other = sandbox.session(rehearsal.DEV, rehearsal.OTHER_REGION).client("ec2")
    [copy] = dev_other.describe_images(Owners=["self"])["Images"]
    assert copy["State"] == "pending"

    killed_at = time.monotonic()
    a.kill()
    sandbox.complete(copy["ImageId"])
    [final] = fake.wait_for(lambda: finals(fake, root), 60)
    taken = time.monotonic() - killed_at

    store = Store(db)
    request = store.get(1)
    done_by = dict(tuple(r) for r in store.db.execute("SELECT seq, done_by FROM steps WHERE request_id = ? ORDER BY seq", [1]).fetchall())
    a_steps = sorted(seq for seq, by in done_by.items() if f"-{a.pid}-" in (by or ""))
    b_steps = sorted(seq for seq, by in done_by.items() if f"-{b.pid}-" in (by or ""))
    with capsys.disabled():
        print(f"\n[kill test] A (pid {a.pid}) SIGKILLed before step 6 (wait for the copy {copy['ImageId']}), holding R-1's lease;"
              f" B (pid {b.pid}) finished R-1 {taken:.1f} s later (lease {LEASE_SECONDS} s, tick {TICK_SECONDS} s);"
              f" steps by A: {a_steps}, by B: {b_steps}")
    assert request.state == SUCCEEDED, request.error
    assert a_steps == [1, 2, 3, 4, 5] and b_steps == [6, 7, 8, 9], done_by  # 9: the delivery (DeleteTags amibot:disposable)
    # How long B took is printed, not asserted (a loaded machine must not fail this):
    # that B, not a restarted A, did steps 6-9 is the lease's evidence.
    # Exactly one copy, available; the temporaries (grant, launch permission) removed; one final message.
    images = dev_other.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [copy["ImageId"]] and images[0]["State"] == "available"
    prod = sandbox.session(rehearsal.PROD)
    assert prod.client("kms").list_grants(KeyId=world.cmk_arn)["Grants"] == []
    assert prod.client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []
    time.sleep(TICK_SECONDS * 2)
    assert len(finals(fake, root)) == 1 and f"<@{rehearsal.REQUESTER}>" in final["text"]
    texts = [m["text"] for m in fake.thread(rehearsal.CHANNEL, root["ts"])]
    assert len(texts) == len(set(texts)), texts


def test_sixteen_concurrent_clicks_over_both_replicas_approve_and_run_once(deployment):
    world, fake, (a, b), db = deployment
    a.start()
    b.start()
    image = world.encrypted_image
    a.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev")
    root = root_for(fake, image)
    clickers = [rehearsal.OWNER, "U0CAROL"]  # both owners of prod, clicking repeatedly
    barrier = threading.Barrier(16)
    statuses = []

    def click(i):
        replica = (a, b)[i % 2]
        barrier.wait()
        statuses.append(replica.slack.click(clickers[i // 2 % 2], rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1").status)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 16
    fake.wait_for(lambda: finals(fake, root), 60)
    time.sleep(TICK_SECONDS * 2)

    store = Store(db)
    assert store.get(1).state == SUCCEEDED
    assert len(store.get(1).approvals) == 1
    assert transitions(store, 1, APPROVED) == 1 and transitions(store, 1, RUNNING) == 1
    thread = [m["text"] for m in fake.thread(rehearsal.CHANNEL, root["ts"])]
    assert len([t for t in thread if "approved by" in t]) == 1
    assert len(finals(fake, root)) == 1
    # One execution in AWS: one grant, one launch permission.
    prod = world.sandbox.session(rehearsal.PROD)
    assert len(prod.client("kms").list_grants(KeyId=world.cmk_arn)["Grants"]) == 1
    assert prod.client("ec2").describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == [{"UserId": rehearsal.DEV}]


def test_rolling_restart_under_a_steady_stream_of_commands(deployment):
    """The test is the load balancer: it sends each command to the next replica and,
    when that one refuses the connection (it is restarting), to the other."""
    world, fake, (a, b), db = deployment
    a.start()
    b.start()
    replicas = [a, b]
    answers: list[tuple[int, str]] = []
    sent = [0]
    stop = threading.Event()

    def send(text: str) -> tuple[int, str]:
        for attempt in range(40):
            replica = replicas[(sent[0] + attempt) % 2]
            try:
                result = replica.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, text)
                return result.status, result.body
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)  # refused: try the other one
        return 0, "nobody answered"

    shares = []

    def stream():
        # Mostly commands answered at once (list); every fourth one a share, answered
        # at once and then, after the AWS preflight, by its approval message.
        while not stop.is_set():
            sent[0] += 1
            share = sent[0] % 4 == 0
            text = f"share {world.plain_image} from prod to dev" if share else "list pending"
            answers.append(send(text))
            if share:
                shares.append(answers[-1])
            time.sleep(0.1)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        time.sleep(1)
        for replica in (a, b):
            assert replica.terminate() == 0
            time.sleep(0.5)  # commands keep coming while it is down
            replica.start()
            time.sleep(1)
    finally:
        stop.set()
        streamer.join()
    assert len(answers) >= 20 and len(shares) >= 5
    unanswered = [answer for answer in answers if answer[0] != 200 or not answer[1]]
    assert unanswered == []
    assert all("Checking" in body for _, body in shares)
    # Every share became a request with its approval message: none was lost.
    fake.wait_for(lambda: len([m for m in fake.messages(rehearsal.CHANNEL) if not m.get("reply_broadcast")]) >= len(shares), 60)
    store = Store(db)
    assert len(store.find(limit=1000)) == len(shares)
    roots = [m for m in fake.messages(rehearsal.CHANNEL) if not m.get("reply_broadcast")]
    assert len(roots) == len(shares) == len({m["text"].split(":")[0] for m in roots})
