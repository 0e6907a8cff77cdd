"""Demo scenario: ``/ami history`` after the day's requests: Alice's page with who
decided each, Next for older ones, the CSV in her DM, and a stranger who sees nothing."""

from __future__ import annotations

import csv
import io

from offline import rehearsal
from offline.scenarios.stage import Stage, wait


def play(stage: Stage) -> None:
    """Alice (an owner of prod) reads the history of prod and exports it; Mallory
    (who owns nothing) sees none of it."""
    t, fake, slack, channel = stage.t, stage.fake, stage.slack, stage.channel
    t.note("— the history of prod, in Slack —")
    result = stage.ask("history prod", rehearsal.OWNER, "alice")
    answer = result.json() or {}
    lines = [x for x in (answer.get("text") or "").splitlines() if x.startswith("*R-")]
    t.expect(f"one line per request ({len(lines)} on this page), each saying who decided it",
             bool(lines) and "approved by <@U0ALICE>" in answer.get("text", "") and "<!date^" in lines[0])
    nexts = [e for b in answer.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"] if e.get("action_id") == "amibot_history_next"]
    if nexts:
        before = len(fake.ephemerals(rehearsal.OWNER))
        t.say("@alice", "clicks [ Next (older) ]")
        slack.click(rehearsal.OWNER, channel, "1700000000.000100", "amibot_history_next", nexts[0]["value"])
        older = wait(lambda: fake.ephemerals(rehearsal.OWNER)[before:] or None)
        t.say("amibot (only alice)", (older or [{}])[-1].get("text", ""))
        t.expect("Next shows the older requests", bool(older) and "*R-" in older[-1].get("text", ""))
    stage.ask("history prod csv", rehearsal.OWNER, "alice")
    files = wait(lambda: fake.files(fake.dm_channel(rehearsal.OWNER)) if fake.dm_channel(rehearsal.OWNER) else None)
    rows = list(csv.DictReader(io.StringIO(files[-1]["content"].decode()))) if files else []
    t.say("amibot (DM to alice)", f"[file {files[-1]['name']}: {len(rows)} events]" if files else "(nothing)")
    t.expect(f"the CSV arrived in Alice's DM only ({len(rows)} events, names resolved)",
             bool(rows) and len(fake.files()) == 1 and any(r["actor_name"] for r in rows))
    stranger = stage.ask("history prod", rehearsal.STRANGER, "mallory")
    t.expect("someone who owns nothing and is not in the channel sees none of it", "R-" not in (stranger.json() or {}).get("text", "R-"))
