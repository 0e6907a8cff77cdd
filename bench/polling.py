"""Benchmark 3: AWS calls per account-region per scheduler tick with N copies in
flight, beside one waiter per image.

The bot: N copies (prod us-east-1 → prod eu-west-1, held pending by the sandbox) are
asked for and approved over HTTP, then scheduler ticks run; the sandbox counts the
``DescribeImages``/``DescribeSnapshots`` calls each tick makes (batching: one of each
per account and region, whatever N). The baseline, in the same process on the same
pending images: boto3's ``image_available`` waiter, one per image, each polling once
(one ``DescribeImages`` per image per round). ``copies_in_flight(n)`` is the
parameter a later distribution benchmark reuses.
"""

from __future__ import annotations

import os
import time

from common import ROOT  # noqa: F401 (puts the project on sys.path)

from botocore.exceptions import WaiterError

from offline import rehearsal
from offline.demo import offline_stack

SIZES = tuple(int(n) for n in os.environ.get("BENCH_COPIES", "1,10,100,500").split(","))
TICKS = 2
CHANNELS = tuple(f"C0BENCH{k:02d}" for k in range(int(os.environ.get("BENCH_CHANNELS", "50"))))


class CopiesInFlight:
    """An offline stack where copies are added through Slack and held pending."""

    def __init__(self, stack, offset: list[float]):
        self.stack, self.offset = stack, offset
        stack.sandbox.hold_pending(True)

    def copies_in_flight(self, n: int) -> int:
        """Ask for and approve copies until ``n`` are pending in the sandbox. Requests
        are spread over CHANNELS channels: the bot posts at most about one message per
        second per channel (Slack's limit), which would otherwise set the pace."""
        sandbox, fake, bot, slack, world = self.stack.sandbox, self.stack.fake, self.stack.bot, self.stack.slack, self.stack.world
        have = len(sandbox.pending_images())
        seen = {c: len(fake.messages(c)) for c in CHANNELS}
        for i in range(n - have):
            slack.slash(rehearsal.REQUESTER, CHANNELS[i % len(CHANNELS)], f"copy {world.plain_image} from prod to prod:{rehearsal.OTHER_REGION}")
        bot.worker.drain(900)
        fake.wait_for(lambda: sum(len(fake.messages(c)) - seen[c] for c in CHANNELS) >= n - have, 600)
        for channel in CHANNELS:
            for root in fake.messages(channel)[seen[channel]:]:
                slack.click("U0CAROL", channel, root["ts"], "amibot_approve", root["text"].split(":")[0])
        bot.listeners.drain(900)
        bot.worker.drain(900)
        return len(sandbox.pending_images())

    def bot_tick(self) -> tuple[int, float]:
        """One scheduler tick (and the steps it resumes): polling calls, seconds."""
        sandbox, bot = self.stack.sandbox, self.stack.bot
        self.offset[0] += 61
        before = sandbox.calls("DescribeImages", rehearsal.PROD) + sandbox.calls("DescribeSnapshots", rehearsal.PROD)
        started = time.perf_counter()
        bot.clockwork.tick()
        bot.worker.drain(900)
        elapsed = time.perf_counter() - started
        return sandbox.calls("DescribeImages", rehearsal.PROD) + sandbox.calls("DescribeSnapshots", rehearsal.PROD) - before, elapsed

    def waiter_round(self) -> tuple[int, float]:
        """One polling round of one waiter per pending image: calls, seconds."""
        sandbox = self.stack.sandbox
        ec2 = sandbox.client("ec2", rehearsal.PROD, rehearsal.OTHER_REGION)
        waiter = ec2.get_waiter("image_available")
        before = sandbox.calls("DescribeImages", rehearsal.PROD)
        started = time.perf_counter()
        for image in sandbox.pending_images():
            try:
                waiter.wait(ImageIds=[image], WaiterConfig={"Delay": 0, "MaxAttempts": 1})
            except WaiterError:
                pass  # still pending: the waiter would sleep and poll again
        return sandbox.calls("DescribeImages", rehearsal.PROD) - before, time.perf_counter() - started


def run() -> dict:
    offset = [0.0]
    clock = lambda: time.time() + offset[0]  # noqa: E731
    rows = []
    with offline_stack(clock=clock, tick_seconds=3600, notifier_poll_seconds=0.05, grant_wait_seconds=1) as stack:
        copies = CopiesInFlight(stack, offset)
        for n in SIZES:
            started = time.monotonic()
            in_flight = copies.copies_in_flight(n)
            setup = time.monotonic() - started
            ticks = [copies.bot_tick() for _ in range(TICKS)]
            rounds = [copies.waiter_round() for _ in range(TICKS)]
            rows.append({
                "copies_in_flight": in_flight,
                "account_regions": 1,
                "bot_calls_per_tick": max(c for c, _ in ticks),
                "bot_tick_ms": round(max(t for _, t in ticks) * 1000, 1),
                "waiters_calls_per_round": max(c for c, _ in rounds),
                "waiters_round_ms": round(max(t for _, t in rounds) * 1000, 1),
                "setup_seconds": round(setup, 1),
            })
            print(rows[-1], flush=True)
    return {"sizes": rows}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
