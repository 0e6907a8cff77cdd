"""How fast the bot answers Slack over HTTP (Slack allows 3 s).

Plays N signed slash commands (`share`, which hands AWS work to the worker, and
`status`, which reads the store) and N signed clicks against the real waitress
endpoint, on the sandbox, and prints percentiles. Run: `make bench`.
"""

from __future__ import annotations

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from offline import rehearsal  # noqa: E402
from offline.demo import offline_stack  # noqa: E402
from offline.stack import without_rate_limit  # noqa: E402

N = int(os.environ.get("BENCH_N", "40"))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"n={len(samples)} p50={p(0.5):.1f} ms p95={p(0.95):.1f} ms max={ordered[-1] * 1000:.1f} ms mean={statistics.mean(samples) * 1000:.1f} ms"


def main() -> None:
    with offline_stack(grant_wait_seconds=1, notifier_poll_seconds=0.05, configure=without_rate_limit) as stack:
        slack, fake, bot, world = stack.slack, stack.fake, stack.bot, stack.world
        results: dict[str, list[float]] = {"share (slash)": [], "status (slash)": [], "approve (click)": [], "status, bot idle": []}
        for i in range(N):
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {world.plain_image} from prod to dev")
            assert r.status == 200, r.body
            results["share (slash)"].append(r.elapsed)
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "status R-1")
            results["status (slash)"].append(r.elapsed)
        bot.worker.drain(120)
        fake.wait_for(lambda: len([m for m in fake.messages(rehearsal.CHANNEL)]) >= N, 60)
        roots = fake.messages(rehearsal.CHANNEL)
        for root in roots[:N]:
            rid = root["text"].split(":")[0]
            r = slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", rid)
            results["approve (click)"].append(r.elapsed)
        bot.worker.drain(300)
        # The same endpoint with nothing running in the background: the bot's own cost,
        # without in-process moto competing for the GIL (real AWS calls are I/O).
        for i in range(N):
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "status R-1")
            results["status, bot idle"].append(r.elapsed)
    print(f"HTTP acknowledgement time (Slack allows 3,000 ms), waitress + Bolt, in-process sandbox AWS, {os.cpu_count()} cores:")
    for name, samples in results.items():
        print(f"  {name:<16} {percentiles(samples)}")


if __name__ == "__main__":
    main()
