"""Benchmark 4: a burst of BURST requests in one channel while Slack answers one call
in five with HTTP 429 (``Retry-After: 1``).

The bot: BURST ``share`` requests are asked in one channel at once, then all are
approved; the fake Slack records every Web API call. Measured from the record: the
most successful ``chat.postMessage`` calls into the channel in any one second, the
most ``chat.update`` edits of one request's root message in any 60 seconds, and the
messages lost (outbox rows never delivered, and requests without their final
reply). Baseline, same run, same fake and 429 pattern: a plain slack-sdk WebClient
with ``RateLimitErrorRetryHandler`` posting BURST messages back to back.
Targets: none lost; at most one edit a minute per request (Slack: about one post
per second per channel, short bursts allowed).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

from common import ROOT  # noqa: F401 (puts the project on sys.path)

from offline import rehearsal
from offline.demo import offline_stack
from offline.stack import without_rate_limit

BURST = int(os.environ.get("BENCH_BURST", "50"))
CHANNEL = "C0BURST"


def _max_in_window(times: list[float], window: float) -> int:
    ordered, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _measure(fake, start: float, channel: str) -> dict:
    calls = [c for c in fake.calls if c.at >= start]
    posts = [c.at for c in calls if c.method == "chat.postMessage" and c.status == 200 and c.params.get("channel") == channel]
    edits: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        if c.method == "chat.update" and c.status == 200 and c.params.get("channel") == channel:
            edits[c.params.get("ts")].append(c.at)
    span = (max(posts) - min(posts)) if len(posts) > 1 else 0.0
    return {
        "calls": len(calls),
        "answered_429": sum(1 for c in calls if c.status == 429),
        "posts": len(posts),
        "most_posts_in_one_second": _max_in_window(posts, 1.0),
        "mean_posts_per_second": round(len(posts) / span, 2) if span else None,
        "most_edits_per_request_per_minute": max((_max_in_window(t, 60.0) for t in edits.values()), default=0),
    }


def run() -> dict:
    with offline_stack(notifier_poll_seconds=0.05, grant_wait_seconds=1, configure=without_rate_limit) as stack:
        fake, bot, slack, world = stack.fake, stack.bot, stack.slack, stack.world
        fake.rate_limit_every(5, retry_after=1)
        start = time.time()
        for _ in range(BURST):
            assert slack.slash(rehearsal.REQUESTER, CHANNEL, f"share {world.plain_image} from prod to dev").status == 200
        bot.worker.drain(600)
        fake.wait_for(lambda: len([m for m in fake.messages(CHANNEL) if not m.get("thread_ts")]) >= BURST or None, 600)
        for root in [m for m in fake.messages(CHANNEL) if not m.get("thread_ts")][:BURST]:
            slack.click(rehearsal.OWNER, CHANNEL, root["ts"], "amibot_approve", root["text"].split(":")[0])
        bot.listeners.drain(600)
        bot.worker.drain(600)
        deadline = time.monotonic() + 900
        while bot.notifier.pending_count() and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.time() - start
        outbox = bot.store.outbox()
        requests = bot.store.find(limit=10_000)
        finals = [m for m in fake.messages(CHANNEL) if m.get("reply_broadcast")]
        bot_side = _measure(fake, start, CHANNEL)
        bot_side.update({
            "requests": len(requests),
            "succeeded": sum(1 for r in requests if r.state == "succeeded"),
            "outbox_rows": len(outbox),
            "outbox_not_delivered": sum(1 for r in outbox if r["state"] not in ("sent", "superseded")),
            "requests_without_final_reply": max(0, len(requests) - len(finals)),
            "seconds_to_drain": round(elapsed, 1),
        })
        bot_side["messages_lost"] = bot_side["outbox_not_delivered"]

        # Baseline: a plain WebClient with slack-sdk's 429 retry handler, back to back.
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        client = WebClient(base_url=fake.api_url, token="xoxb-sandbox", retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
        start = time.time()
        lost = 0
        for i in range(BURST):
            try:
                client.chat_postMessage(channel="C0BASELINE", text=f"baseline message {i}")
            except SlackApiError:
                lost += 1
        baseline = _measure(fake, start, "C0BASELINE")
        baseline.update({"messages_lost": lost, "seconds_to_drain": round(time.time() - start, 1)})
        fake.rate_limit_every(None)
    return {"burst": BURST, "one_call_in_n_answered_429": 5, "amibot": bot_side, "plain_webclient": baseline}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
