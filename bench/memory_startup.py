"""Benchmark 2: resident memory serving with 10,000 requests stored, and the time from
start to a healthy ``/healthz``, beside a bare Bolt app on waitress.

Each side is a fresh process: ``amibot serve`` on a store holding STORED requests
(made with the store API), and the bare Bolt app of ``common.bare_bolt_wsgi``. Both
are timed from process start to the first 200 on ``/healthz``, then get the same
signed requests (``status``, ``list all``, ``help``), and their resident set size
(VmRSS) and peak (VmHWM) are read from /proc. Targets: < 150 MB, < 2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import ROOT

from offline import rehearsal
from offline.net import free_port
from offline.slack import FakeSlack, SignedSlackClient

STORED = int(os.environ.get("BENCH_STORED", "10000"))
SECRET = "bench-signing-secret"

BARE_SERVER = r"""
import sys
sys.path.insert(0, sys.argv[2])
from bench.common import bare_bolt_wsgi
from slack_sdk import WebClient
from waitress import serve
serve(bare_bolt_wsgi(sys.argv[3], WebClient(base_url=sys.argv[4], token="xoxb-bench")), host="127.0.0.1", port=int(sys.argv[1]), threads=8)
"""


def fill_store(path: str, count: int) -> None:
    """``count`` finished share requests with one step each, as the bot stores them."""
    from bot.requests import PlannedStep
    from bot.store import Store

    store = Store(path)
    step = PlannedStep("ec2.add_launch_permission", "prod", rehearsal.PROD, rehearsal.REGION, {"image_id": "ami-0123456789abcdef0", "accounts": [rehearsal.DEV]}, "Add launch permission")
    for i in range(count):
        store.create_request(kind="share", uid=f"{i:016x}", requester=rehearsal.REQUESTER, channel=rehearsal.CHANNEL,
                             command_text="/ami share ami-0123456789abcdef0 from prod to dev", params={"image_id": "ami-0123456789abcdef0"},
                             facts={}, approver_accounts=["prod"], steps=[step], ttl_seconds=86400, state="succeeded")
    store.close()


def _rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                fields[line.split(":")[0]] = int(line.split()[1])
    return fields


def _measure(argv: list[str], env: dict[str, str], port: int, fake: FakeSlack) -> dict:
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        healthy_after = None
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        healthy_after = time.monotonic() - started
                        break
            except OSError:
                time.sleep(0.01)
        slack = SignedSlackClient(f"http://127.0.0.1:{port}/slack/events", SECRET, fake)
        for i in range(100):
            text = ("status R-%d" % (1 + i * 97 % max(STORED, 1)), "list all", "help")[i % 3]
            assert slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, text).status == 200
        time.sleep(1)
        memory = _rss_kib(proc.pid)
        return {"start_to_healthy_s": round(healthy_after, 2) if healthy_after else None,
                "rss_mb": round(memory["VmRSS"] / 1024, 1), "peak_rss_mb": round(memory["VmHWM"] / 1024, 1)}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run() -> dict:
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "amibot.db")
            started = time.monotonic()
            fill_store(db, STORED)
            fill_seconds = time.monotonic() - started
            config = os.path.join(tmp, "amibot.toml")
            with open(config, "w") as handle:
                handle.write(rehearsal.SANDBOX_TOML)
            env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
                   "AMIBOT_DB": db, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AMIBOT_LOG_LEVEL": "WARNING", "PYTHONPATH": ROOT}
            port = free_port()
            amibot = _measure([sys.executable, "-m", "bot.cli", "serve", "--config", config, "--host", "127.0.0.1", "--port", str(port)], env, port, fake)
            port = free_port()
            bare = _measure([sys.executable, "-c", BARE_SERVER, str(port), ROOT, SECRET, fake.api_url], env, port, fake)
    finally:
        fake.stop()
    return {"requests_stored": STORED, "store_fill_seconds": round(fill_seconds, 1), "amibot": amibot, "bare_bolt": bare}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
