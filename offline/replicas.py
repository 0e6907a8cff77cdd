"""Real `amibot serve` processes for the replica tests and benchmarks: each a child
process on the sandbox (run as a moto server by the caller) and the local Slack,
sharing one database (``AMIBOT_DB``), with short leases and ticks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from offline import rehearsal
from offline.net import free_port
from offline.sandbox import Sandbox
from offline.slack import FakeSlack, SignedSlackClient

ROOT = Path(__file__).resolve().parents[1]
SECRET = "replica-signing-secret"


def replica_toml(lease_seconds: int | None, tick_seconds: int | None) -> str:
    """The sandbox config with the replicas' lease and tick (None: the config's own)."""
    lines = "".join(f"{name} = {value}\n" for name, value in (("lease_seconds", lease_seconds), ("tick_seconds", tick_seconds)) if value is not None)
    return rehearsal.SANDBOX_TOML.replace("[bot]\n", f"[bot]\n{lines}", 1)


class Replica:
    """One `amibot serve` process of a deployment, on the sandbox (a moto server) and
    the local Slack, with its own log file."""

    def __init__(self, name: str, tmp: Path, sandbox: Sandbox, fake: FakeSlack, db: str, *, lease_seconds: int | None = 3,
                 tick_seconds: int | None = 1, secret: str = SECRET, workers: int = 0, args: tuple[str, ...] = ()):
        self.name, self.tmp, self.sandbox, self.fake, self.db, self.secret = name, tmp, sandbox, fake, db, secret
        # ``amibot serve --workers N``: 0 is the single process (the replica tests);
        # more makes this an HTTP front with its own worker processes (issue 20).
        self.workers = workers
        self.args = list(args)  # more options for `amibot serve` (e.g. --admin-port)
        self.port = free_port()
        self.config = tmp / f"amibot-{name}.toml"
        self.config.write_text(replica_toml(lease_seconds, tick_seconds))
        self.marker = tmp / f"paused-{name}"
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.slack = SignedSlackClient(f"http://127.0.0.1:{self.port}/slack/events", secret, fake)

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}-{self.runs}.log"

    def start(self, pause_at: str = "", env: dict[str, str] | None = None) -> None:
        self.runs += 1
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AMIBOT_", "SLACK_"))},
            "AWS_ENDPOINT_URL": self.sandbox.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": rehearsal.REGION,
            "SLACK_API_URL": self.fake.api_url,
            "SLACK_BOT_TOKEN": "xoxb-replica",
            "SLACK_SIGNING_SECRET": self.secret,
            "AMIBOT_DB": self.db,
            "AMIBOT_PAUSE_AT": pause_at,
            "AMIBOT_PAUSE_MARKER": str(self.marker),
            "AMIBOT_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), *self.args],
            cwd=ROOT, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
            assert self.proc.poll() is None, self.log.read_text()
        raise AssertionError(f"{self.name} did not become healthy")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_paused(self, point: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker.exists() and point in self.marker.read_text():
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never paused at {point}: " + self.log.read_text())

    def paused_pid(self, point: str) -> int:
        """The pid of the process that paused at ``point`` (the front or a worker)."""
        return next(int(line.split(" ")[1]) for line in self.marker.read_text().splitlines() if line.split(" ")[0] == point)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
