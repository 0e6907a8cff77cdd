"""AWS calls and time per scheduler tick with many copies in flight.

Starts N copies (within prod, us-east-1 → eu-west-1) held pending by the sandbox,
then runs ticks and prints DescribeImages/DescribeSnapshots calls and wall time per
tick: batching should keep it at one pair per account and region, whatever N.
Run: `.venv/bin/python bench/poll_batching.py` (BENCH_N=50 by default).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from offline import rehearsal  # noqa: E402
from offline.demo import offline_stack  # noqa: E402

N = int(os.environ.get("BENCH_N", "50"))


def main() -> None:
    offset = [0.0]
    clock = lambda: time.time() + offset[0]  # noqa: E731
    with offline_stack(clock=clock, tick_seconds=3600, notifier_poll_seconds=0.05) as stack:
        sandbox, fake, bot, slack, world = stack.sandbox, stack.fake, stack.bot, stack.slack, stack.world
        sandbox.hold_pending(True)
        for _ in range(N):
            slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"copy {world.plain_image} from prod to prod:{rehearsal.OTHER_REGION}")
        bot.worker.drain(300)
        fake.wait_for(lambda: len(fake.messages(rehearsal.CHANNEL)) >= N, 120)
        for root in fake.messages(rehearsal.CHANNEL)[:N]:
            slack.click("U0CAROL", rehearsal.CHANNEL, root["ts"], "amibot_approve", root["text"].split(":")[0])
        bot.listeners.drain(300)
        bot.worker.drain(300)
        in_flight = len(sandbox.pending_images())
        print(f"{in_flight} copies in flight (held pending by the sandbox), 1 account, 1 destination region")
        for tick in range(3):
            offset[0] += 61
            images, snaps = sandbox.calls("DescribeImages", rehearsal.PROD), sandbox.calls("DescribeSnapshots", rehearsal.PROD)
            started = time.perf_counter()
            bot.clockwork.tick()
            bot.worker.drain(300)
            elapsed = (time.perf_counter() - started) * 1000
            print(f"  tick {tick + 1}: DescribeImages {sandbox.calls('DescribeImages', rehearsal.PROD) - images}, "
                  f"DescribeSnapshots {sandbox.calls('DescribeSnapshots', rehearsal.PROD) - snaps}, {elapsed:.0f} ms (tick and the resumed steps)")


if __name__ == "__main__":
    main()
