"""``amibot demo``: an offline rehearsal of a whole conversation.

It starts the sandbox (moto plus real AWS semantics), a local Slack Web API and the
real bot behind its real HTTP endpoint, then plays what people would do — every
request signed exactly as Slack signs it — and prints the conversation as a
transcript. It exits 0 only if every expected step happened, checked from the
target account's side where AWS is concerned.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from offline import rehearsal
from offline.clock import Clock
from offline.stack import offline_stack
from offline.scenarios import SCENARIOS
from offline.scenarios.stage import Stage, Transcript


def closing_note(t: Transcript, stage: Stage, out: Any) -> None:
    """What the rehearsal showed, quoted: the messages scenarios kept, and the
    polling figures of a distribution (bench/poll_distribution.py)."""
    if not stage.closing:
        return
    print("\n── closing note " + "─" * 60, file=out)
    for quoted in stage.closing:
        print(quoted, file=out)
        print("", file=out)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: bench/ is beside offline/
    if root not in sys.path:
        sys.path.append(root)
    try:
        from bench.poll_distribution import main as poll_figures
    except ImportError:  # an install without the checkout's bench/
        return
    print("Polling, copies in flight over 4 account-regions — describe calls per tick (batched / naive one-waiter-per-image):", file=out)
    for row in poll_figures()["poll_distribution"]:
        print(f"  {row['copies']:>4} copies: {row['batched_calls']:>3} (at most {row['batched_max_per_account_region']} per account-region)"
              f" / {row['naive_calls']:>5} (up to {row['naive_max_per_account_region']} per account-region)", file=out)


def run_demo(out=sys.stdout) -> int:
    """Play the rehearsal; 0 if every expectation held."""
    logging.getLogger().setLevel(logging.WARNING)  # the transcript is the output
    t = Transcript(out)
    if os.environ.get("AMIBOT_DEMO_ONLY"):
        wanted = set(os.environ["AMIBOT_DEMO_ONLY"].split(","))
        SCENARIOS[:] = [s for s in SCENARIOS if s.__module__.rsplit(".", 1)[-1] in wanted]
    clock = Clock()  # real time, moved forward by the policy scenario (escalation after 4 h)
    with offline_stack(grant_wait_seconds=5, tick_seconds=1, notifier_poll_seconds=0.2, clock=clock, toml=rehearsal.POLICY_TOML) as stack:
        stack.sandbox.use_clock(clock)
        t.note(f"sandbox: prod={rehearsal.PROD} dev={rehearsal.DEV}; CMK {stack.world.cmk_arn}")
        t.note(f"bot listening on {stack.url}/slack/events (waitress); Slack stand-in at {stack.fake.api_url}")
        stage = Stage(t=t, slack=stack.slack, fake=stack.fake, world=stack.world, channel=rehearsal.CHANNEL, sandbox=stack.sandbox, bot=stack.bot,
                      clock=clock)
        for scenario in SCENARIOS:
            scenario(stage)
        closing_note(t, stage, out)
    print("", file=out)
    if t.failures:
        print(f"DEMO FAILED: {len(t.failures)} of {t.checks} expectations did not hold:", file=out)
        for failure in t.failures:
            print(f"  - {failure}", file=out)
        return 1
    print(f"DEMO OK: {t.checks} expectations held; transcript {t.lines} lines.", file=out)
    return 0


