"""Slack calls that fit Slack's limits (issue 20, item 3): the pacer, the fake Slack
refusing what goes over the limits, and the notifier's delivery (edits coalesced to
one a minute while a request runs, the final state at once, a 429 holding back only
its method, posts in a thread kept in order). Time comes from a frozen test clock."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from aws.actions import PlannedStep
from bot.notifier import Notifier
from bot.requests import PENDING_APPROVAL
from bot.slack_limits import LIMITS, Pacer
from bot.store import Store
from offline.clock import Clock
from offline.slack import FakeSlack

POST_BURST = LIMITS["chat.postMessage"].burst


@pytest.fixture
def clock():
    return Clock(at=1_800_000_000.0)


@pytest.fixture
def fake(clock):
    with FakeSlack() as fake:
        fake.use_clock(clock)
        yield fake


@pytest.fixture
def store(tmp_path, clock):
    return Store(str(tmp_path / "amibot.db"), clock)


def _notifier(store, fake):
    return Notifier(store, WebClient(base_url=fake.api_url, token="xoxb-test"), owners_of=lambda alias: [])


def _request(store, **fields):
    fields = {"steps": [], **fields}
    return store.create_request(kind="share", uid=f"u{len(store.find(limit=100))}", requester="U0BOB", channel="C0PLATFORM", command_text="share …", params={}, facts={},
                                approver_accounts=["prod"], ttl_seconds=3600, state=PENDING_APPROVAL, **fields)


def _step_done(store, notifier, request, seq):
    store.mark_step(request.id, seq, "done")
    notifier.update_root(request.id)


def _running(store, notifier, fake):
    """A request whose card is posted, approved and running (eight steps to do)."""
    steps = [PlannedStep("ec2.add_launch_permission", "prod", "111111111111", "us-east-1", {"image_id": "ami-1"}, f"step {n}") for n in range(1, 9)]
    request = _request(store, steps=steps)
    notifier.post_root(request.id)
    notifier.flush()
    store.transition(request.id, PENDING_APPROVAL, "approved", "U0ALICE")
    store.transition(request.id, "approved", "running", "amibot")
    return store.get(request.id)


def test_pacer_per_channel_burst_then_one_a_second_and_a_hold_is_per_method(clock):
    pacer = Pacer(clock)
    for _ in range(POST_BURST):
        assert pacer.wait("chat.postMessage", "C1") == 0
        pacer.took("chat.postMessage", "C1")
    assert pacer.wait("chat.postMessage", "C1") > 0  # the burst is spent in C1 …
    assert pacer.wait("chat.postMessage", "C2") == 0  # … not in C2
    clock.advance(1 / 0.9)
    assert pacer.wait("chat.postMessage", "C1") == 0
    pacer.hold("chat.update", 30)
    assert pacer.wait("chat.update") == pytest.approx(30) and pacer.wait("chat.postMessage", "C2") == 0
    assert pacer.wait("views.publish") == 0 and pacer.wait("auth.test") == 0  # no limit known: never paced


def test_fake_slack_refuses_what_goes_over_slacks_limits(fake, clock):
    client = WebClient(base_url=fake.api_url, token="xoxb-test", retry_handlers=[])
    for i in range(POST_BURST):
        client.chat_postMessage(channel="C1", text=f"m{i}")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="one too many")
    assert refused.value.response.status_code == 429 and refused.value.response.headers["Retry-After"] == "1"
    client.chat_postMessage(channel="C2", text="another channel has its own second")
    clock.advance(1)
    client.chat_postMessage(channel="C1", text="a second later")
    ts = client.chat_postMessage(channel="C3", text="to edit")["ts"]
    for _ in range(LIMITS["chat.update"].burst):
        client.chat_update(channel="C3", ts=ts, text="edited")
    with pytest.raises(SlackApiError):  # Tier 3: 50 a minute
        client.chat_update(channel="C3", ts=ts, text="edited again")
    assert [m["text"] for m in fake.messages("C1")] == [*(f"m{i}" for i in range(POST_BURST)), "a second later"]


def test_posts_are_paced_before_slack_answers_429_and_keep_their_order(store, fake, clock):
    notifier = _notifier(store, fake)
    request = _request(store)
    notifier.post_root(request.id)
    for i in range(8):
        notifier.reply(request.id, f"reply {i}")
    notifier.flush()
    posted = len(fake.messages("C0PLATFORM")) + len(fake.thread("C0PLATFORM", store.get(request.id).root_ts))
    assert posted < 9 and notifier.pending_count() == 9 - posted  # the rest wait, nothing sleeps
    for _ in range(20):
        clock.advance(1)
        notifier.flush()
    root_ts = store.get(request.id).root_ts
    assert [m["text"] for m in fake.thread("C0PLATFORM", root_ts)] == [f"reply {i}" for i in range(8)]
    assert not [c for c in fake.calls if c.status == 429] and notifier.pending_count() == 0


def test_a_429_holds_back_only_its_method(store, fake, clock):
    notifier = _notifier(store, fake)
    running = _running(store, notifier, fake)
    other = _request(store)
    fake.script_rate_limit("chat.update", times=1, retry_after=30)
    notifier.update_root(running.id)
    notifier.post_root(other.id)
    notifier.flush()
    assert store.get(other.id).root_ts  # chat.postMessage went on
    updates = fake.calls_to("chat.update")
    assert [c.status for c in updates] == [429]
    notifier.update_root(running.id, progress="1 of 2")
    clock.advance(10)
    notifier.flush()
    assert len(fake.calls_to("chat.update")) == 1  # still held: Retry-After is 30 s
    clock.advance(21)
    notifier.flush()
    assert [c.status for c in fake.calls_to("chat.update")] == [429, 200]  # the latest one, once


def test_edits_coalesce_to_one_a_minute_while_running_and_the_final_state_goes_at_once(store, fake, clock):
    notifier = _notifier(store, fake)
    request = _running(store, notifier, fake)
    for seq in (1, 2):  # updates pending at once: the latest wins
        _step_done(store, notifier, request, seq)
    notifier.flush()
    edits = fake.calls_to("chat.update")
    assert len(edits) == 1  # the new phase (running): at once
    clock.advance(20)
    _step_done(store, notifier, request, 3)
    notifier.flush()
    assert len(fake.calls_to("chat.update")) == 1  # within the minute: held back
    clock.advance(20)
    _step_done(store, notifier, request, 4)  # supersedes the held-back one
    notifier.flush()
    clock.advance(21)
    notifier.flush()
    edits = fake.calls_to("chat.update")
    assert len(edits) == 2 and "4 of 8 done" in str(edits[1].params)  # a minute after the last, the latest
    clock.advance(61)
    notifier.update_root(request.id, progress="40%")  # a copy's progress, paced once a minute by the engine
    notifier.flush()
    assert len(fake.calls_to("chat.update")) == 3
    clock.advance(5)
    _step_done(store, notifier, request, 6)
    notifier.flush()  # held back for its minute …
    store.transition(request.id, "running", "succeeded", "amibot")
    notifier.update_root(request.id)
    notifier.flush()
    edits = fake.calls_to("chat.update")
    assert len(edits) == 4 and "done" in edits[3].params["text"]  # the final state at once
    clock.advance(61)
    notifier.flush()
    assert len(fake.calls_to("chat.update")) == 4  # … and superseded by it: never sent after the final state
    notifier.update_root(request.id)
    notifier.flush()
    assert len(fake.calls_to("chat.update")) == 4  # an edit that would change nothing is not sent
    assert all(r["state"] in ("sent", "superseded") for r in store.outbox())
