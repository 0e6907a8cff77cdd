"""How fast the AMI picker answers an option load (Slack allows 3 s; the bot aims for
2.5 s), over the real HTTP endpoint on the sandbox, with many AMIs in the account.

Prints, side by side in one process: the first load (cold cache: DescribeImages runs),
loads from the warm cache, loads after the cache expired while AWS is slow (the answer
leaves at once, from the stale list, while a refresh runs), and, as the baseline, a signed
`list all` slash command on the same endpoint. Run: `make bench`.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.ack_latency import percentiles  # noqa: E402
from offline import rehearsal  # noqa: E402
from offline.demo import offline_stack  # noqa: E402
from offline.stack import without_rate_limit  # noqa: E402

N = int(os.environ.get("BENCH_N", "40"))
IMAGES = int(os.environ.get("BENCH_IMAGES", "500"))


def main() -> None:
    with offline_stack(notifier_poll_seconds=0.05, configure=without_rate_limit) as stack:
        slack, bot, sandbox = stack.slack, stack.bot, stack.sandbox
        for i in range(IMAGES):
            sandbox.create_image(rehearsal.PROD, rehearsal.REGION, name=f"service-{i:04d}-build-" + "x" * 100)
        state = {"source": {"source": {"type": "static_select", "selected_option": {"value": "prod"}}},
                 "region": {"region": {"type": "static_select", "selected_option": {"value": rehearsal.REGION}}}}
        results: dict[str, list[float]] = {"first load (cold)": [], "warm cache": [], "expired, AWS slow": [], "baseline: list all": []}
        r = slack.suggest(rehearsal.REQUESTER, "ami", "", values=state)
        results["first load (cold)"].append(r.elapsed)
        for i in range(N):
            r = slack.suggest(rehearsal.REQUESTER, "ami", f"service-{i % 50:04d}", values=state)
            assert r.status == 200
            results["warm cache"].append(r.elapsed)
        counts = len(slack.suggest(rehearsal.REQUESTER, "ami", "", values=state).json()["options"])
        catalog = bot.catalog
        real_load = catalog._load

        def slow_load(key):  # AWS answers after 4 s: longer than Slack's 3 s
            time.sleep(4)
            real_load(key)

        catalog._load = slow_load
        for i in range(3):
            catalog._lists = {k: (0.0, v) for k, (_, v) in catalog._lists.items()}  # expired
            r = slack.suggest(rehearsal.REQUESTER, "ami", "service", values=state)
            results["expired, AWS slow"].append(r.elapsed)
            time.sleep(4.2)
        catalog._load = real_load
        for i in range(N):
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "list all")
            results["baseline: list all"].append(r.elapsed)
    print(f"Option loads of the AMI picker ({IMAGES + 4} AMIs in the account, {counts} options shown; Slack allows 3,000 ms), {os.cpu_count()} cores:")
    for name, samples in results.items():
        print(f"  {name:<20} {percentiles(samples)}")


if __name__ == "__main__":
    main()
