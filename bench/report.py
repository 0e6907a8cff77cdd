"""BENCHMARKS.md from bench/results.json (written by ``bench/run_all.py``)."""

from __future__ import annotations

METHOD = """\
`make bench` runs `bench/run_all.py`: each benchmark in a process of its own, each
number beside a baseline measured in the same run, on the same machine, at the same
time. Results: `bench/results.json`. The machine is shared (see the load average
below): read the numbers against their baselines, not as absolutes.

1. **Acknowledgement over HTTP** (`bench/ack_http.py`). Signed requests, paced open
   loop at 20 per second (a slow answer does not delay the next): a mix of slash
   commands (`status R-1`, `help`) and clicks (Approve by someone who owns nothing).
   The bot is measured idle, then while 60 `share` requests are preflighted in the
   background against the sandbox AWS running in another process (a moto server with
   the sandbox's semantics). Baseline: a bare Bolt app (listeners that only `ack()`,
   `process_before_response=False` as in the bot) on the same waitress settings,
   same requests. Targets: p50 < 5 ms; p99 < 100 ms under load.
2. **Memory and start-up** (`bench/memory_startup.py`). `amibot serve` as a fresh
   process on a store holding 10,000 requests; time from process start to the first
   200 on `/healthz`; resident set (VmRSS) after 100 signed requests. Baseline: the
   bare Bolt app on waitress, measured the same way. Targets: < 150 MB, < 2 s.
3. **Polling** (`bench/polling.py`). N copies in flight (held pending by the sandbox),
   1 account-region; `DescribeImages` + `DescribeSnapshots` calls per scheduler tick.
   Baseline: boto3's `image_available` waiter, one per image, one polling round.
   N is a parameter (`BENCH_COPIES`).
4. **A burst under Slack's rate limits** (`bench/slack_burst.py`). 50 `share` requests
   asked in one channel at once, then approved. The fake Slack enforces Slack's
   published limits (`bot/slack_limits.py`, from
   https://docs.slack.dev/apis/web-api/rate-limits: `chat.postMessage` one a second per
   channel after a burst of 4, `chat.update` Tier 3 = 50 a minute, …) and answers 429
   `Retry-After` over them; a second run turns them off and answers one `chat.*` call
   in five with 429 `Retry-After: 1` whatever the rate (the first wave's pattern); a
   third counts replies in a thread apart from their channel (Slack does not say).
   Baseline: a plain slack-sdk `WebClient` with `RateLimitErrorRetryHandler` posting
   50 messages back to back into one channel, same fake, same rules. Also: Slack calls
   per request for one share, one cross-account copy and one distribution. Targets
   (issue 20): ≤ 60 s, ≤ 20 answered 429, ≤ 1 edit per message per minute while
   running (the final state at once), none lost.
"""


def _ms(d: dict, key: str) -> str:
    return f"{d[key]:.1f}" if isinstance(d.get(key), (int, float)) else "–"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_benchmarks_md(results: dict, path: str) -> None:
    """The method, then one table per benchmark with the baseline beside each number."""
    lines = ["# Benchmarks", "", "## Method", "", METHOD]
    machine = results.get("machine", {})
    lines += [f"Last run: Python {machine.get('python')}, {machine.get('cpus')} CPUs, load average at start "
              f"{machine.get('load_average_at_start')} ({machine.get('platform')}).", ""]
    ack = results.get("ack_http")
    if ack:
        idle, loaded, bare = ack["bot_idle"], ack["bot_during_preflights"], ack["bare_bolt"]
        lines += ["## 1. Acknowledgement over HTTP (20 requests/s, commands and clicks)", "",
                  "| | amibot idle | amibot, 60 preflights in background | bare Bolt (baseline) | target |", "|---|---|---|---|---|",
                  f"| p50 (ms) | {_ms(idle, 'p50_ms')} | {_ms(loaded, 'p50_ms')} | {_ms(bare, 'p50_ms')} | < 5 ({_verdict(idle['p50_ms'] < 5)}) |",
                  f"| p99 (ms) | {_ms(idle, 'p99_ms')} | {_ms(loaded, 'p99_ms')} | {_ms(bare, 'p99_ms')} | < 100 under load ({_verdict(loaded['p99_ms'] < 100)}) |",
                  f"| max (ms) | {_ms(idle, 'max_ms')} | {_ms(loaded, 'max_ms')} | {_ms(bare, 'max_ms')} | |",
                  "", f"{ack['requests']} requests per column; the 60 preflights took {ack.get('preflights_seconds')} s."]
        if "bare_bolt_process_before_response" in ack:
            fast = ack["bare_bolt_process_before_response"]
            lines += ["", "Where the floor comes from: with `process_before_response=False` Bolt runs the listener in its "
                      "executor and the request thread polls for `ack()` in 10 ms sleeps (`slack_bolt/listener/thread_runner.py`). "
                      f"The same bare app with `process_before_response=True` (listener in the request thread, no polling): "
                      f"p50 {_ms(fast, 'p50_ms')} ms, p99 {_ms(fast, 'p99_ms')} ms."]
        lines += [""]
    mem = results.get("memory_startup")
    if mem:
        a, b = mem["amibot"], mem["bare_bolt"]
        lines += [f"## 2. Memory and start-up ({mem['requests_stored']:,} requests stored)", "",
                  "| | amibot | bare Bolt on waitress (baseline) | target |", "|---|---|---|---|",
                  f"| start to healthy /healthz (s) | {a['start_to_healthy_s']} | {b['start_to_healthy_s']} | < 2 ({_verdict((a['start_to_healthy_s'] or 99) < 2)}) |",
                  f"| resident memory serving (MB) | {a['rss_mb']} | {b['rss_mb']} | < 150 ({_verdict(a['rss_mb'] < 150)}) |",
                  f"| peak resident memory (MB) | {a['peak_rss_mb']} | {b['peak_rss_mb']} | |", ""]
    poll = results.get("polling")
    if poll:
        lines += ["## 3. Polling: AWS calls per account-region per tick", "",
                  "| copies in flight | amibot calls per tick | amibot tick (ms) | one waiter per image: calls per round (baseline) | waiters' round (ms) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['copies_in_flight']} | {r['bot_calls_per_tick']} | {r['bot_tick_ms']} | {r['waiters_calls_per_round']} | {r['waiters_round_ms']} |" for r in poll["sizes"]]
        lines += ["", "A tick's time includes the steps it resumes (each copy's progress is recorded).", ""]
    burst = results.get("slack_burst")
    if burst and "under_slack_limits" in burst:
        lines += _burst_section(burst)
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


# The first wave's figures (issue 20's table): one chat.* call in five answered 429.
_BEFORE = {"seconds_to_drain": 213, "answered_429": 89, "edits": "2 per request per minute", "outbox_rows": 500}


def _burst_section(burst: dict) -> list[str]:
    """Section 4: the burst beside its baselines, and Slack calls per request."""
    a, b = burst["under_slack_limits"]["amibot"], burst["under_slack_limits"]["plain_webclient"]
    five = burst.get("one_in_five_answered_429") or {"amibot": {}, "plain_webclient": {}}
    c, d = five["amibot"], five["plain_webclient"]

    def cell(x: dict, key: str) -> str:
        return str(x.get(key, "–"))

    edits = a["most_edits_per_message_per_minute_while_running"]
    lines = [f"## 4. A burst of {burst['burst']} requests in one channel, under Slack's rate limits", "",
             "| | amibot, Slack's limits | plain WebClient, Slack's limits (baseline) | amibot, 1 call in 5 answered 429 | plain WebClient, 1 in 5 | before (first wave, 1 in 5) | target |",
             "|---|---|---|---|---|---|---|",
             f"| seconds until everything was delivered | {a['seconds_to_drain']} | {b['seconds_to_drain']} | {cell(c, 'seconds_to_drain')} | {cell(d, 'seconds_to_drain')} | {_BEFORE['seconds_to_drain']} (baseline 22) | ≤ 60 ({_verdict(a['seconds_to_drain'] <= 60)}) |",
             f"| calls answered 429 | {a['answered_429']} | {b['answered_429']} | {cell(c, 'answered_429')} | {cell(d, 'answered_429')} | {_BEFORE['answered_429']} (baseline 13) | ≤ 20 ({_verdict(a['answered_429'] <= 20)}) |",
             f"| most edits of one message in a minute while running (all edits) | {edits} ({a['most_edits_per_message_per_minute_all']}) | – | {cell(c, 'most_edits_per_message_per_minute_while_running')} ({cell(c, 'most_edits_per_message_per_minute_all')}) | – | {_BEFORE['edits']} | ≤ 1 ({_verdict(edits <= 1)}) |",
             f"| messages lost | {a['messages_lost']} | {b['messages_lost']} | {cell(c, 'messages_lost')} | {cell(d, 'messages_lost')} | 0 | 0 ({_verdict(a['messages_lost'] == 0)}) |",
             f"| posts into the channel (Slack's floor at 1/s, s) | {a['posts']} ({a['posting_floor_seconds']}) | {b['posts']} ({b['posting_floor_seconds']}) | {cell(c, 'posts')} | {cell(d, 'posts')} | | |",
             f"| most posts in one second, one channel | {a['most_posts_in_one_second']} | {b['most_posts_in_one_second']} | {cell(c, 'most_posts_in_one_second')} | {cell(d, 'most_posts_in_one_second')} | | about 1/s (Slack) |",
             f"| outbox messages (superseded) | {a['outbox_rows']} ({a['outbox_superseded']}) | – | {cell(c, 'outbox_rows')} ({cell(c, 'outbox_superseded')}) | – | {_BEFORE['outbox_rows']} | |",
             f"| seconds until every card was posted | {a['seconds_to_all_cards']} | – | {cell(c, 'seconds_to_all_cards')} | – | | |",
             "", f"amibot, Slack's limits: {a['requests']} requests, {a['succeeded']} succeeded, {a['requests_without_final_reply']} without their final "
             f"reply; 429s by method {a['answered_429_by_method']}; outbox rows by kind {a['outbox_rows_by_kind']}.", ""]
    apart = (burst.get("thread_replies_apart") or {}).get("amibot")
    if apart:
        lines += [f"If Slack counted replies in a thread apart from their channel (it does not say; amibot and the fake read it the stricter way), "
                  f"the same burst: {apart['seconds_to_drain']} s until delivered, {apart['answered_429']} answered 429, "
                  f"{apart['most_edits_per_message_per_minute_while_running']} edit per message per minute while running, "
                  f"{apart['messages_lost']} lost, every card posted after {apart['seconds_to_all_cards']} s.", ""]
    if burst.get("note"):
        lines += [burst["note"], ""]
    per = burst.get("calls_per_request") or {}
    if per:
        lines += ["Slack calls per request (one request alone, under Slack's limits; posts = into channels, DMs = into direct messages):", "",
                  "| request | posts | edits | DMs | views | ephemerals | other calls | answered 429 | ended |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {name} | {r['posts']} | {r['edits']} | {r['dms']} | {r['views']} | {r['ephemerals']} | "
                  f"{', '.join(f'{m} {n}' for m, n in sorted(r['other'].items()))} | {r['answered_429']} | {r['state']} |" for name, r in per.items()]
        lines += [""]
    return lines
