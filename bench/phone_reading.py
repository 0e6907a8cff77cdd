"""What people read on a phone (issue 18): the offline stack plays the demo's share,
cross-account encrypted copy and distribution to three account-regions (as
``make demo`` does, offline/scenarios), then counts, from every Slack call the bot
made (the local Slack records them):

- the lines of each root card as first posted (its blocks as the demo prints them);
- the lock-screen text of each DM (``text``: what a phone shows);
- the lines before the new AMI id in the copy's final message;
- pings per person per request: DMs to them, plus posted (not edited) channel
  messages that mention them or a user group they are in.

Run: `.venv/bin/python bench/phone_reading.py` (about a minute). ``main()`` returns
the numbers as a dict.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from offline import rehearsal  # noqa: E402
from offline.clock import Clock  # noqa: E402
from offline.scenarios import copy, distribute, share  # noqa: E402
from offline.scenarios.stage import Stage, Transcript, blocks_text  # noqa: E402
from offline.stack import offline_stack  # noqa: E402

PLAYED = {"share": share.play, "copy": copy.play, "distribute": distribute.play}
NAMES = {rehearsal.REQUESTER: "bob", rehearsal.OWNER: "alice", rehearsal.DEV_OWNER: "devops", "U0CAROL": "carol", rehearsal.ONCALL: "oncall"}


def _readable(text: str) -> str:
    """A text as a phone shows it: user mentions as @name."""
    return re.sub(r"<@(U\w+)>", lambda m: "@" + NAMES.get(m.group(1), m.group(1)), text or "")


def _pinged(text: str, groups: dict[str, list[str]]) -> set[str]:
    people = set(re.findall(r"<@(U\w+)>", text or ""))
    for group in re.findall(r"<!subteam\^(S\w+)", text or ""):
        people.update(groups.get(group, []))
    return people


def main() -> dict[str, Any]:
    """Play the three requests and return the figures."""
    logging.getLogger().setLevel(logging.ERROR)
    clock = Clock()
    out = io.StringIO()
    with offline_stack(grant_wait_seconds=5, tick_seconds=1, notifier_poll_seconds=0.2, clock=clock, toml=rehearsal.POLICY_TOML) as stack:
        stack.sandbox.use_clock(clock)
        stage = Stage(t=Transcript(out), slack=stack.slack, fake=stack.fake, world=stack.world, channel=rehearsal.CHANNEL,
                      sandbox=stack.sandbox, bot=stack.bot, clock=clock)
        played: dict[str, int] = {}
        for kind, scenario in PLAYED.items():
            before = {r.id for r in stack.bot.store.find(limit=1000)}
            scenario(stage)
            new = sorted({r.id for r in stack.bot.store.find(limit=1000)} - before)
            played[kind] = new[-1] if new else 0
        stack.bot.notifier.flush()
        store, fake = stack.bot.store, stack.fake
        owner_of_row = {row["id"]: row["request_id"] for row in store.outbox()}
        posts = [c for c in fake.calls_to("chat.postMessage") if c.status == 200 and c.response.get("ok")]
        failures = stage.t.failures

    def request_of(call: Any) -> int | None:
        payload = ((call.params.get("metadata") or {}).get("event_payload") or {})
        return owner_of_row.get(payload.get("outbox_id"))

    figures: dict[str, Any] = {"root_card_lines": {}, "dm_texts": {}, "lines_before_new_ami": None, "pings": {}, "expectations_failed": failures}
    for kind, request_id in played.items():
        mine = [c for c in posts if request_of(c) == request_id]
        root = next((c for c in mine if c.params.get("channel") == rehearsal.CHANNEL and not c.params.get("thread_ts")), None)
        if root:
            figures["root_card_lines"][kind] = len(blocks_text({"blocks": root.params.get("blocks"), "text": root.params.get("text")}).splitlines())
        figures["dm_texts"][kind] = [f"to {NAMES.get(_dm_user(fake, c.params['channel']), '?')}: {_readable(c.params.get('text', ''))}"
                                     for c in mine if str(c.params.get("channel", "")).startswith("D")]
        pings: Counter = Counter()
        for call in mine:
            if str(call.params.get("channel", "")).startswith("D"):
                pings[_dm_user(fake, call.params["channel"])] += 1
            else:
                for person in _pinged(call.params.get("text", "") + " " + blocks_text({"blocks": call.params.get("blocks") or []}), rehearsal.USERGROUPS):
                    pings[person] += 1
        figures["pings"][kind] = {NAMES.get(u, u): n for u, n in sorted(pings.items())}
        if kind == "copy":
            final = next((c for c in mine if c.params.get("reply_broadcast")), None)
            if final:
                lines = final.params.get("text", "").splitlines()
                figures["lines_before_new_ami"] = next((i for i, line in enumerate(lines) if _new_ami(line, stack.world.encrypted_image)), len(lines))
                figures["copy_final_lines"] = len(lines)
    return figures


def _new_ami(line: str, source: str) -> bool:
    return any(found != source for found in re.findall(r"ami-[0-9a-f]+", line))


def _dm_user(fake: Any, channel: str) -> str | None:
    return next((u for u in list(NAMES) + ["U0ONCALL"] if fake.dm_channel(u) == channel), None)


def report(figures: dict[str, Any]) -> str:
    """The figures as text."""
    lines = ["root card lines (as first posted): " + ", ".join(f"{k} {v}" for k, v in figures["root_card_lines"].items()),
             f"copy final message: {figures.get('copy_final_lines')} lines, {figures['lines_before_new_ami']} before the new AMI id"]
    for kind, texts in figures["dm_texts"].items():
        lines.append(f"DMs of the {kind} ({len(texts)}):")
        lines += [f"  {t.splitlines()[0] if t else ''}" for t in texts]
    for kind, pings in figures["pings"].items():
        lines.append(f"pings per person, {kind}: " + ", ".join(f"{u} {n}" for u, n in pings.items()))
    if figures["expectations_failed"]:
        lines.append("demo expectations that did not hold: " + "; ".join(figures["expectations_failed"]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(main()))
