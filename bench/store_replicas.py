"""What a second database and a second replica cost and give: acknowledgement time
(slash commands and clicks, Slack allows 3 s) and requests completed per minute, for
1 `amibot serve` process on SQLite, 1 on PostgreSQL and 2 on PostgreSQL, in one run.

Every configuration runs the same real processes (`amibot serve`, waitress + Bolt) on
the same sandbox (a moto server in this process) and local Slack: N shares asked
round-robin over the replicas, each approved on the next replica, timed from the
first approval to the last final message. PostgreSQL is a throwaway server started
with the machine's initdb/pg_ctl (offline/postgres.py). Run: `make bench`.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from offline import rehearsal  # noqa: E402
from offline.postgres import HOW_TO_GET, PostgresCluster, find_bindir  # noqa: E402
from offline.replicas import Replica  # noqa: E402
from offline.sandbox import Sandbox  # noqa: E402
from offline.slack import FakeSlack  # noqa: E402

N = int(os.environ.get("BENCH_N", "30"))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(label: str, db: str, processes: int, sandbox: Sandbox, tmp: Path) -> dict:
    """N shares over ``processes`` replicas on ``db``; acks and throughput."""
    sandbox.reset()
    world = rehearsal.seed(sandbox)
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    replicas = [Replica(f"{label}-{i}", tmp, sandbox, fake, db, lease_seconds=10, tick_seconds=1) for i in range(processes)]
    for replica in replicas:
        # One requester asks for all N: above the default 20 AWS-calling commands a
        # minute (bot.aws_commands_per_minute), which would refuse a third of them.
        replica.config.write_text(replica.config.read_text().replace("[bot]\n", "[bot]\naws_commands_per_minute = 600\n", 1))
    acks: list[float] = []
    try:
        for replica in replicas:
            replica.start()
        for i in range(N):
            result = replicas[i % processes].slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {world.plain_image} from prod to dev")
            assert result.status == 200 and "Checking" in result.body, result.body
            acks.append(result.elapsed)
        roots = fake.wait_for(lambda: (lambda found: found if len(found) >= N else None)(
            [m for m in fake.messages(rehearsal.CHANNEL) if not m.get("reply_broadcast")]), 120)
        started = time.monotonic()
        for i, root in enumerate(roots):
            number = root["text"].split(":")[0]
            result = replicas[(i + 1) % processes].slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", number)
            assert result.status == 200, result.body
            acks.append(result.elapsed)
        fake.wait_for(lambda: len([m for m in fake.messages(rehearsal.CHANNEL) if m.get("reply_broadcast")]) >= N or None, 300)
        elapsed = time.monotonic() - started
    finally:
        for replica in replicas:
            replica.stop()
        fake.stop()
    return {"label": label, "processes": processes, "acks": acks, "per_minute": N / elapsed * 60}


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's request log
    bindir = find_bindir()
    if bindir is None:
        sys.exit(HOW_TO_GET)
    sandbox = Sandbox(rehearsal.REGION, server=True)
    sandbox.start()
    cluster = PostgresCluster(bindir)
    cluster.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run("sqlite", os.path.join(tmp, "amibot.db"), 1, sandbox, Path(tmp)))
            rows.append(run("postgresql", cluster.create_database(), 1, sandbox, Path(tmp)))
            rows.append(run("postgresql", cluster.create_database(), 2, sandbox, Path(tmp)))
    finally:
        cluster.stop()
        sandbox.stop()
    print(f"Replicas: {N} shares asked and approved per configuration (acks: {2 * N} slash commands and clicks), "
          f"real `amibot serve` processes, sandbox AWS as a moto server, {os.cpu_count()} cores:")
    print(f"  {'store':<11} {'processes':>9} {'ack p50':>9} {'ack p95':>9} {'ack p99':>9} {'completed/min':>14}")
    for row in rows:
        acks = row["acks"]
        print(f"  {row['label']:<11} {row['processes']:>9} {percentile(acks, 0.5):>6.1f} ms {percentile(acks, 0.95):>6.1f} ms "
              f"{percentile(acks, 0.99):>6.1f} ms {row['per_minute']:>14.1f}")


if __name__ == "__main__":
    main()
