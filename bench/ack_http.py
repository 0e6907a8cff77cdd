"""Benchmark 1: acknowledgement over HTTP at a steady rate, beside a bare Bolt app.

Both apps run on the same waitress server settings in this process and get the same
signed requests, paced open-loop at RATE per second: a mix of slash commands
(``status R-1``, ``help``) and clicks (Approve by someone who owns nothing, which
changes nothing). The bot is measured idle and again while PREFLIGHTS ``share``
requests are being preflighted in the background against the sandbox AWS running
in another process. Targets: p50 < 5 ms; p99 < 100 ms under load.
"""

from __future__ import annotations

import os
import tempfile
import time

from common import SandboxProcess, bare_bolt_wsgi, play_paced, serve_in_thread, summary_ms

from offline import rehearsal
from offline.slack import FakeSlack, SignedSlackClient
from offline.stack import without_rate_limit

RATE = float(os.environ.get("BENCH_RATE", "20"))
COUNT = int(os.environ.get("BENCH_ACK_N", "200"))
PREFLIGHTS = int(os.environ.get("BENCH_PREFLIGHTS", "60"))


def _mix(slack: SignedSlackClient, root_ts: str) -> callable:
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


def run() -> dict:
    from bot.app import Amibot, slack_client

    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    results: dict = {"rate_per_s": RATE, "requests": COUNT, "background_preflights": PREFLIGHTS}
    with SandboxProcess() as aws, tempfile.TemporaryDirectory() as tmp:
        config = without_rate_limit(rehearsal.sandbox_config(os.path.join(tmp, "amibot.db"), fake.api_url, env={}))
        bot = Amibot(config, notifier_poll_seconds=0.05)
        bot.start()
        try:
            url = bot.start_http(port=0)
            slack = SignedSlackClient(url + "/slack/events", config.slack.signing_secret, fake)
            slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {aws.info['plain_image']} from prod to dev")
            root = fake.wait_for(lambda: next(iter(fake.messages(rehearsal.CHANNEL)), None), 60)
            bot.worker.drain(120)
            send = _mix(slack, root["ts"])
            play_paced(send, RATE, 30)  # warm-up
            results["bot_idle"] = summary_ms(play_paced(send, RATE, COUNT))
            for _ in range(PREFLIGHTS):
                slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {aws.info['encrypted_image']} from prod to dev")
            started = time.monotonic()
            results["bot_during_preflights"] = summary_ms(play_paced(send, RATE, COUNT))
            bot.worker.drain(600)
            results["preflights_seconds"] = round(time.monotonic() - started, 1)
            results["requests_stored"] = len(bot.store.find(limit=10_000))
            # The floor: a bare Bolt app on the same server settings, same requests.
            bare_url, stop = serve_in_thread(bare_bolt_wsgi(config.slack.signing_secret, slack_client(config)))
            try:
                bare = SignedSlackClient(bare_url + "/slack/events", config.slack.signing_secret, fake)
                bare_send = _mix(bare, root["ts"])
                play_paced(bare_send, RATE, 30)
                results["bare_bolt"] = summary_ms(play_paced(bare_send, RATE, COUNT))
            finally:
                stop()
            # What Bolt's ack wait costs: the same bare app answering in the request thread.
            bare_url, stop = serve_in_thread(bare_bolt_wsgi(config.slack.signing_secret, slack_client(config), process_before_response=True))
            try:
                bare = SignedSlackClient(bare_url + "/slack/events", config.slack.signing_secret, fake)
                bare_send = _mix(bare, root["ts"])
                play_paced(bare_send, RATE, 30)
                results["bare_bolt_process_before_response"] = summary_ms(play_paced(bare_send, RATE, COUNT))
            finally:
                stop()
        finally:
            bot.stop()
            fake.stop()
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
