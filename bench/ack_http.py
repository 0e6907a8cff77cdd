"""Benchmark 1: acknowledgement over HTTP at a steady rate, beside a bare Bolt app.

The bot runs as ``amibot serve`` in a process of its own, twice: as an HTTP front
with two worker processes (``--workers 2``, the default) and as one process doing
everything (``--workers 0``, as before issue 20: the baseline). The bare Bolt app
runs in a process of its own too. All get the same signed requests, paced open loop
at RATE per second: a mix of slash commands (``status R-1``, ``help``) and clicks
(Approve by someone who owns nothing, which changes nothing). The bot is measured
idle and again while PREFLIGHTS ``share`` requests are being preflighted against
the sandbox AWS (a moto server in another process, at nice 10: it stands in for
AWS, whose CPU is not this host's); then ``/ami share`` itself is
measured while SHARE_BACKGROUND others are being preflighted, beside the same
command to bare Bolt. Targets: p99 ≤ 100 ms under load; share ack p99 ≤ 2 × bare
Bolt; p50 < 5 ms (stretch).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import ROOT, SandboxProcess, play_paced, summary_ms

from offline import rehearsal
from offline.net import free_port
from offline.slack import FakeSlack, SignedSlackClient

RATE = float(os.environ.get("BENCH_RATE", "20"))
COUNT = int(os.environ.get("BENCH_ACK_N", "200"))
PREFLIGHTS = int(os.environ.get("BENCH_PREFLIGHTS", "60"))
SHARE_BACKGROUND = int(os.environ.get("BENCH_SHARE_BACKGROUND", "50"))
SHARE_MEASURED = int(os.environ.get("BENCH_SHARE_N", "40"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
SECRET = "bench-signing-secret"

BARE_SERVER = r"""
import sys
sys.path.insert(0, sys.argv[2])
from bench.common import bare_bolt_wsgi
from slack_sdk import WebClient
from waitress import serve
serve(bare_bolt_wsgi(sys.argv[3], WebClient(base_url=sys.argv[4], token="xoxb-bench"), process_before_response=sys.argv[5] == "1"),
      host="127.0.0.1", port=int(sys.argv[1]), threads=8)
"""


def _mix(slack: SignedSlackClient, root_ts: str):
    def send(i: int) -> float:
        kind = i % 3
        if kind == 0:
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "status R-1")
        elif kind == 1:
            r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "help")
        else:
            r = slack.click(rehearsal.STRANGER, rehearsal.CHANNEL, root_ts, "amibot_approve", "R-1")
        assert r.status == 200, (r.status, r.body)
        return r.elapsed

    return send


def _shares(slack: SignedSlackClient, image: str):
    def send(i: int) -> float:
        r = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {image} from prod to dev")
        assert r.status == 200, (r.status, r.body)
        return r.elapsed

    return send


class Served:
    """A server in a process of its own, on a free port, until ``stop()``."""

    def __init__(self, argv: list[str], env: dict[str, str], log: str):
        self.port = free_port()
        self.proc = subprocess.Popen([a.replace("@PORT@", str(self.port)) for a in argv], env=env, cwd=ROOT,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
            if self.proc.poll() is not None:
                raise RuntimeError(open(log).read()[-3000:])
        raise RuntimeError("server did not become healthy")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _bot(workers: int, tmp: str, aws: SandboxProcess, fake: FakeSlack) -> dict:
    """One ``amibot serve --workers N`` process: idle, under preflights, and the share ack."""
    from bot.store import Store

    db = os.path.join(tmp, f"amibot-{workers}.db")
    config = os.path.join(tmp, "amibot.toml")
    with open(config, "w") as handle:  # the benchmark measures the bot, not the per-user limit
        handle.write(rehearsal.SANDBOX_TOML.replace("[bot]\n", "[bot]\naws_commands_per_minute = 600\n", 1))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AMIBOT_", "SLACK_"))},
           "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url, "AMIBOT_DB": db,
           "AMIBOT_LOG_LEVEL": "WARNING", "PYTHONPATH": ROOT}
    server = Served([sys.executable, "-m", "bot.cli", "serve", "--config", config, "--host", "127.0.0.1", "--port", "@PORT@",
                     "--workers", str(workers)], env, os.path.join(tmp, f"serve-{workers}.log"))
    results: dict = {"workers": workers}
    try:
        store = Store(db)
        if workers:
            assert _wait(lambda: len(store.live_leases("alive:worker:")) == workers, 60), "workers did not start"
        slack = SignedSlackClient(server.url + "/slack/events", SECRET, fake)
        before = len(fake.messages(rehearsal.CHANNEL))
        slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {aws.info['plain_image']} from prod to dev")
        root = fake.wait_for(lambda: (fake.messages(rehearsal.CHANNEL)[before:] or [None])[0], 60)
        send = _mix(slack, root["ts"])
        play_paced(send, RATE, 30)  # warm-up
        results["idle"] = summary_ms(play_paced(send, RATE, COUNT))
        stored = store.count()
        for _ in range(PREFLIGHTS):
            slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {aws.info['encrypted_image']} from prod to dev")
        started = time.monotonic()
        results["during_preflights"] = summary_ms(play_paced(send, RATE, COUNT))
        _wait(lambda: store.count() >= stored + PREFLIGHTS, 600)
        results["preflights_seconds"] = round(time.monotonic() - started, 1)
        # /ami share itself, while SHARE_BACKGROUND others are being preflighted.
        stored = store.count()
        share = _shares(slack, aws.info["encrypted_image"])
        for i in range(SHARE_BACKGROUND):
            share(i)
        results["share_ack"] = summary_ms(play_paced(share, RATE, SHARE_MEASURED))
        _wait(lambda: store.count() >= stored + SHARE_BACKGROUND + SHARE_MEASURED, 600)
        results["requests_stored"] = store.count()
    finally:
        server.stop()
    return results


def _bare(fake: FakeSlack, root_ts: str, image: str, tmp: str, process_before_response: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": ROOT}
    server = Served([sys.executable, "-c", BARE_SERVER, "@PORT@", ROOT, SECRET, fake.api_url, "1" if process_before_response else "0"],
                    env, os.path.join(tmp, "bare.log"))
    try:
        slack = SignedSlackClient(server.url + "/slack/events", SECRET, fake)
        send = _mix(slack, root_ts)
        play_paced(send, RATE, 30)
        results = summary_ms(play_paced(send, RATE, COUNT))
        if not process_before_response:
            results = {**results, "share_ack": summary_ms(play_paced(_shares(slack, image), RATE, SHARE_MEASURED))}
        return results
    finally:
        server.stop()


def run() -> dict:
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    results: dict = {"rate_per_s": RATE, "requests": COUNT, "background_preflights": PREFLIGHTS, "share_background": SHARE_BACKGROUND,
                     "share_measured": SHARE_MEASURED, "workers": WORKERS}
    try:
        with SandboxProcess() as aws, tempfile.TemporaryDirectory() as tmp:
            # The sandbox stands in for AWS, whose CPU is not this host's: it yields the
            # CPU to the bot's processes (the same for every configuration measured).
            os.setpriority(os.PRIO_PROCESS, aws.proc.pid, 10)
            front = _bot(WORKERS, tmp, aws, fake)
            single = _bot(0, tmp, aws, fake)
            results["front"], results["single_process"] = front, single
            # The headline rows (bench/report.py): the bot as served by default.
            results["bot_idle"], results["bot_during_preflights"] = front["idle"], front["during_preflights"]
            results["preflights_seconds"], results["requests_stored"] = front["preflights_seconds"], front["requests_stored"]
            root = fake.messages(rehearsal.CHANNEL)[0]
            bare = _bare(fake, root["ts"], aws.info["encrypted_image"], tmp)
            results["bare_bolt_share_ack"] = bare.pop("share_ack")
            results["bare_bolt"] = bare
            # What Bolt's ack wait costs: the same bare app answering in the request thread.
            results["bare_bolt_process_before_response"] = _bare(fake, root["ts"], aws.info["encrypted_image"], tmp, process_before_response=True)
    finally:
        fake.stop()
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
