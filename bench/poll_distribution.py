"""Polling a distribution: describe calls per account-region per tick.

With N copies in flight spread over 4 account-regions, one scheduler tick polls them
through ``ImageStatusCache.refresh`` (the code the scheduler runs): one
DescribeImages and one DescribeSnapshots per account-region, however many copies.
Beside it, the naive way — one waiter per image, each polling its own image — costs
two calls per copy. The calls are counted on a recording EC2 stand-in that answers
like DescribeImages/DescribeSnapshots (every copy pending at 40 %), so the numbers
are the polling code's own, not the sandbox's speed.

``main()`` returns the numbers as a dict (for bench/run_all.py); run it directly to
print them: `.venv/bin/python bench/poll_distribution.py`.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aws.actions.images import ImageStatusCache, poll_images  # noqa: E402

ACCOUNT_REGIONS = [("222222222222", "us-east-1"), ("222222222222", "eu-west-1"), ("111111111111", "eu-west-1"), ("333333333333", "us-west-2")]
SIZES = (1, 10, 100, 500)


class CountingEc2:
    """Answers DescribeImages/DescribeSnapshots for the copies of one account-region
    and counts the calls."""

    def __init__(self, calls: Counter, where: tuple[str, str], images: list[str]):
        self.calls, self.where = calls, where
        self.images = {i: f"snap-{i[4:]}" for i in images}

    def describe_images(self, ImageIds: list[str]) -> dict[str, Any]:
        self.calls[(self.where, "DescribeImages")] += 1
        return {"Images": [{"ImageId": i, "State": "pending", "BlockDeviceMappings": [{"Ebs": {"SnapshotId": self.images[i]}}]} for i in ImageIds]}

    def describe_snapshots(self, SnapshotIds: list[str]) -> dict[str, Any]:
        self.calls[(self.where, "DescribeSnapshots")] += 1
        return {"Snapshots": [{"SnapshotId": s, "Progress": "40%"} for s in SnapshotIds]}


class Sessions:
    """The AwsSessions shape ``ImageStatusCache.refresh`` uses."""

    def __init__(self, clients: dict[tuple[str, str], CountingEc2]):
        self.clients = clients

    def client(self, service: str, account: str, region: str, tag: str) -> CountingEc2:
        return self.clients[(account, region)]


def one_size(copies: int) -> dict[str, Any]:
    waiting = [(*ACCOUNT_REGIONS[n % len(ACCOUNT_REGIONS)], f"ami-{n:017x}") for n in range(copies)]
    calls: Counter = Counter()
    clients = {where: CountingEc2(calls, where, [i for a, r, i in waiting if (a, r) == where]) for where in ACCOUNT_REGIONS}
    started = time.perf_counter()
    ImageStatusCache().refresh(Sessions(clients), waiting)
    batched_ms = (time.perf_counter() - started) * 1000
    batched = dict(calls)
    calls.clear()
    for account, region, image in waiting:  # the naive way: every waiter polls its own image
        poll_images(clients[(account, region)], [image])
    naive = dict(calls)
    regions_used = {(a, r) for a, r, _ in waiting}
    per_region = [sum(v for (w, _), v in batched.items() if w == where) for where in regions_used]
    naive_per_region = [sum(v for (w, _), v in naive.items() if w == where) for where in regions_used]
    return {
        "copies": copies,
        "account_regions": len(regions_used),
        "batched_calls": sum(batched.values()),
        "batched_max_per_account_region": max(per_region),
        "naive_calls": sum(naive.values()),
        "naive_max_per_account_region": max(naive_per_region),
        "batched_ms": round(batched_ms, 2),
    }


def main() -> dict[str, Any]:
    """Describe calls per tick, batched and naive, at 1, 10, 100 and 500 copies."""
    return {"poll_distribution": [one_size(n) for n in SIZES]}


if __name__ == "__main__":
    results = main()["poll_distribution"]
    print("copies in flight over 4 account-regions: describe calls per tick (DescribeImages + DescribeSnapshots)")
    print(f"{'copies':>7} {'batched':>8} {'max/acct-region':>16} {'naive':>7} {'max/acct-region':>16}")
    for row in results:
        print(f"{row['copies']:>7} {row['batched_calls']:>8} {row['batched_max_per_account_region']:>16} {row['naive_calls']:>7} {row['naive_max_per_account_region']:>16}")
