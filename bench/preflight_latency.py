"""Benchmark: slash → approval card when every AWS call takes LATENCY seconds.

Every AWS API call the bot makes (``BaseClient._make_api_call``: AssumeRole included,
each retry not counted twice) first sleeps ``BENCH_AWS_LATENCY`` (default 0.1 s: a
real region's round trip), then reaches the sandbox. For four requests — an
unencrypted share, an encrypted share (the target with two launch roles, so IAM is
asked), a cross-account cross-region copy and a distribution to two regions — the
bench measures the time from the signed slash command to the approval card in the
(fake) Slack channel, the AWS calls made (in total) and the calls *in sequence*: the
longest chain of calls each of which started after the one before it ended (the
critical path; equal to the total when nothing overlaps).

Baseline, same run, same code: the preflight's reads with parallelism off
(``aws.reads.WORKERS = 1``: each read runs where it is started, one after the other).
Each figure is the median of RUNS requests; the account-level facts cache is emptied
before each request (cold: the slowest case), and one more figure with it warm.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

from common import ROOT  # noqa: F401 (puts the project on sys.path)

from offline import rehearsal
from offline.demo import offline_stack
from offline.stack import without_rate_limit

LATENCY = float(os.environ.get("BENCH_AWS_LATENCY", "0.1"))
RUNS = int(os.environ.get("BENCH_PREFLIGHT_RUNS", "3"))
CHANNEL = "C0PREFLIGHT"
DEV = rehearsal.DEV
LAUNCH_ROLES = (f"arn:aws:iam::{DEV}:role/app-deployer", f"arn:aws:iam::{DEV}:role/legacy-deployer")


class SlowAws:
    """Patches botocore so each API call first waits ``latency``; records each call's
    (start, end, operation) while ``recording``."""

    def __init__(self, latency: float):
        from botocore.client import BaseClient

        self.latency = latency
        self.calls: list[tuple[float, float, str]] = []
        self.recording = False
        self._lock = threading.Lock()
        self._real = BaseClient._make_api_call
        slow = self

        def make_api_call(client, operation_name, api_params):
            if not slow.recording:
                return slow._real(client, operation_name, api_params)
            start = time.monotonic()
            time.sleep(slow.latency)
            try:
                return slow._real(client, operation_name, api_params)
            finally:
                with slow._lock:
                    slow.calls.append((start, time.monotonic(), operation_name))

        BaseClient._make_api_call = make_api_call

    def start(self) -> None:
        with self._lock:
            self.calls = []
        self.recording = True

    def stop(self) -> list[tuple[float, float, str]]:
        self.recording = False
        with self._lock:
            return list(self.calls)


def in_sequence(calls: list[tuple[float, float, str]]) -> int:
    """The longest chain of calls each starting after the previous one ended (the
    greatest set of pairwise non-overlapping intervals: earliest end first)."""
    count, free_at = 0, float("-inf")
    for start, end, _ in sorted(calls, key=lambda c: c[1]):
        if start >= free_at:
            count, free_at = count + 1, end
    return count


def _set_parallel(on: bool) -> None:
    try:
        from aws import reads
    except ImportError:  # before the parallel reader existed
        return
    reads.WORKERS = reads.DEFAULT_WORKERS if on else 1


def _forget_account_facts(bot) -> None:
    facts = getattr(bot.sessions, "account_facts", None)
    if facts is not None:
        facts.clear()


_asked = [0]


def _one(stack, slow: SlowAws, text: str) -> dict:
    """One request, in a channel of its own: the bot posts about one message a second
    per channel (Slack's limit, bot/slack_limits.py), so a dozen requests in a row in
    one channel would time the pacing of their cards, not the preflight."""
    fake = stack.fake
    _asked[0] += 1
    channel = f"{CHANNEL}{_asked[0]:03d}"
    slow.start()
    started = time.monotonic()
    assert stack.slack.slash(rehearsal.REQUESTER, channel, text).status == 200
    card = fake.wait_for(lambda: next((m for m in fake.messages(channel) if not m.get("thread_ts") and m.get("blocks")), None), 60)
    elapsed = time.monotonic() - started
    stack.bot.worker.drain(60)
    calls = slow.stop()
    assert card and not card["text"].startswith(":no_entry:"), card
    return {"seconds": elapsed, "total": len(calls), "in_sequence": in_sequence(calls), "operations": sorted(op for _, _, op in calls)}


def _median(runs: list[dict]) -> dict:
    return {"slash_to_card_s": round(statistics.median(r["seconds"] for r in runs), 3),
            "calls_total": int(statistics.median(r["total"] for r in runs)),
            "calls_in_sequence": int(statistics.median(r["in_sequence"] for r in runs))}


def _with_launch_roles(config):
    import dataclasses

    config = without_rate_limit(config)
    dev = dataclasses.replace(config.accounts["dev"], launch_roles=LAUNCH_ROLES)
    return dataclasses.replace(config, accounts={**config.accounts, "dev": dev})


def run() -> dict:
    slow = SlowAws(LATENCY)
    results: dict = {"aws_latency_s": LATENCY, "runs": RUNS, "scenarios": {}}
    with offline_stack(notifier_poll_seconds=0.02, configure=_with_launch_roles) as stack:
        world = stack.world
        sandbox = world.sandbox
        for role in LAUNCH_ROLES:
            sandbox.attach_role_policy(DEV, role.rsplit("/", 1)[1], {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": "*"}]})
        scenarios = {
            "unencrypted share": f"share {world.plain_image} from prod to dev",
            "encrypted share": f"share {world.encrypted_image} from prod to dev",
            "cross-account cross-region copy": f"copy {world.encrypted_image} from prod to dev:{rehearsal.OTHER_REGION}",
            "distribution (2 targets)": f"distribute {world.encrypted_image} from prod to dev:{rehearsal.REGION},dev:{rehearsal.OTHER_REGION}",
        }
        _one(stack, slow, scenarios["unencrypted share"])  # warm-up: modules, service models
        for name, text in scenarios.items():
            row: dict = {}
            for label, parallel in (("parallel", True), ("sequential_baseline", False)):
                _set_parallel(parallel)
                runs = []
                for _ in range(RUNS):
                    _forget_account_facts(stack.bot)
                    runs.append(_one(stack, slow, text))
                row[label] = _median(runs)
                row[label]["operations"] = runs[-1]["operations"]
            _set_parallel(True)
            row["parallel_warm_cache"] = _median([_one(stack, slow, text) for _ in range(RUNS)])
            results["scenarios"][name] = row
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
