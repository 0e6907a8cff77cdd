"""Shared pieces of the benchmarks: percentiles, a paced (open-loop) request player,
the bare Bolt baseline app, and the sandbox AWS in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``samples``, in the samples' unit."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary_ms(samples: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds of latencies given in seconds."""
    return {"n": len(samples), "p50_ms": round(pct(samples, 0.5) * 1000, 2), "p99_ms": round(pct(samples, 0.99) * 1000, 2),
            "max_ms": round(max(samples) * 1000, 2) if samples else float("nan")}


def play_paced(send: Callable[[int], float], rate: float, count: int, workers: int = 16) -> list[float]:
    """Send ``count`` requests at ``rate`` per second, open loop (a slow answer does
    not delay the next request, as with real Slack traffic); returns the latencies."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        elapsed = send(i)
        with lock:
            latencies.append(elapsed)

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    return latencies


def bare_bolt_wsgi(signing_secret: str, client, *, process_before_response: bool = False) -> Callable:
    """The floor of the stack: a Bolt app that only acknowledges ``/ami`` and the
    two buttons, with the same options as amibot's (process_before_response=False),
    plus ``/healthz``. With ``process_before_response=True`` Bolt runs the listener in
    the request thread and answers when it returns, without its 10 ms polling loop."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = App(client=client, signing_secret=signing_secret, token_verification_enabled=False, process_before_response=process_before_response)
    app.command("/ami")(lambda ack: ack())
    app.action("amibot_approve")(lambda ack: ack())
    app.action("amibot_deny")(lambda ack: ack())
    handler = SlackRequestHandler(app)

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
            return [b'{"ok":true}']
        return handler(environ, start_response)

    return wsgi


def serve_in_thread(wsgi: Callable, threads: int = 8) -> tuple[str, Callable[[], None]]:
    """Serve ``wsgi`` on waitress on a free loopback port; returns (url, stop)."""
    from waitress.server import create_server

    server = create_server(wsgi, host="127.0.0.1", port=0, threads=threads, ident="bench")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.close()

    return f"http://127.0.0.1:{server.effective_port}", stop


SANDBOX_PROCESS = r"""
import json, sys
from offline.sandbox import Sandbox
from offline import rehearsal
sandbox = Sandbox(rehearsal.REGION, server=True)
sandbox.start()
world = rehearsal.seed(sandbox)
print(json.dumps({"endpoint": sandbox.endpoint_url, "plain_image": world.plain_image, "encrypted_image": world.encrypted_image}), flush=True)
sys.stdin.read()
sandbox.stop()
"""


class SandboxProcess:
    """The sandbox AWS (moto server plus the sandbox's semantics, seeded with the
    rehearsal world) in another process, so its CPU does not share the bot's GIL."""

    def __init__(self) -> None:
        env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "PYTHONPATH": ROOT}
        self.proc = subprocess.Popen([sys.executable, "-c", SANDBOX_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        self.info = json.loads(self.proc.stdout.readline())
        self._saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        os.environ.update(AWS_ENDPOINT_URL=self.info["endpoint"], AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")

    def close(self) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> "SandboxProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
