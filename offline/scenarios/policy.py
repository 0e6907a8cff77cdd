"""Demo scenario: the approval policy (README "Approval policy", the rules in
``rehearsal.POLICY_TOML``) — a request a rule approves by itself, a two-owner rule, a
shorter approval, a reassign and an escalation (the clock moved 4 h forward)."""

from __future__ import annotations

from offline import rehearsal
from offline.scenarios.stage import Stage, blocks_text, request_id, wait

CAROL = "U0CAROL"


def _image(stage: Stage, name: str, tags: dict[str, str] | None = None) -> str:
    return stage.sandbox.create_image(rehearsal.PROD, rehearsal.REGION, name=name, tags=tags or {})


def _click(stage: Stage, who: str, user: str, root: dict, action: str, label: str, value: str | None = None) -> None:
    stage.t.say(who, f"clicks [ {label} ]")
    stage.slack.click(user, stage.channel, root["ts"], action, value or request_id(root))


def _state(stage: Stage, root: dict) -> str:
    return stage.bot.store.get(int(request_id(root)[2:])).state


def play(stage: Stage) -> None:
    """Each policy feature once, checked in the store and the thread."""
    t = stage.t
    t.note("— approval policy: a rule that approves by itself (AMI tagged golden=approved, prod to dev, at most 7 days) —")
    golden = _image(stage, "golden-al2023", {"golden": "approved"})
    stage.ask(f"share {golden} from prod to dev for 1d")
    root = stage.root_for(golden)
    t.expect("the approval message was posted", bool(root))
    final = stage.final_reply(root) if root else None
    if root:
        stage.show_thread(root)
    t.expect("the rule `golden-to-dev` approved it and it ran (active until its end)",
             bool(final) and _state(stage, root) == "active" and any("approved by policy `golden-to-dev`" in (m.get("text") or "")
                                                                      for m in stage.fake.thread(stage.channel, root["ts"])))
    t.expect("a longer share under that rule is refused before anyone is asked",
             "at most 168 h" in str(stage.ask_refused(f"share {golden} from prod to dev for 2w")))

    t.note("— a two-owner rule (tier=critical): two different people of prod —")
    critical = _image(stage, "payments-critical", {"tier": "critical"})
    stage.ask(f"share {critical} from prod to dev")
    root = stage.root_for(critical)
    if t.expect("the approval message was posted", bool(root)):
        _click(stage, "@alice", rehearsal.OWNER, root, "amibot_approve", "Approve")
        wait(lambda: stage.bot.store.get(int(request_id(root)[2:])).votes or None)
        t.say("amibot (card)", blocks_text(stage.fake.message(stage.channel, root["ts"])))
        t.expect("after Alice alone it still waits (1 of 2)", _state(stage, root) == "pending_approval")
        _click(stage, "@carol", CAROL, root, "amibot_approve", "Approve")
        final = stage.final_reply(root)
        stage.show_thread(root)
        t.expect("after Carol, a second owner, it ran", bool(final) and ":tada:" in final.get("text", ""))

    t.note("— approve for less time: Bob asks for 7 days, Alice approves 1 day —")
    short = _image(stage, "short-lived-al2023")
    stage.ask(f"share {short} from prod to dev for 7d")
    root = stage.root_for(short)
    if t.expect("the approval message was posted", bool(root)):
        _click(stage, "@alice", rehearsal.OWNER, root, "amibot_approve_for_24h", "Approve for 1 d")
        final = stage.final_reply(root)
        stage.show_thread(root)
        t.expect("the share ends after 1 day and says Alice shortened it",
                 bool(final) and f"<@{rehearsal.OWNER}> approved it for 24 h (asked: 168 h)" in final.get("text", ""))

    t.note("— reassign, then escalation: Carol passes the decision to Alice; nobody decides for 4 hours —")
    waiting = _image(stage, "reporting-al2023")
    stage.ask(f"share {waiting} from prod to dev")
    root = stage.root_for(waiting)
    if not t.expect("the approval message was posted", bool(root)):
        return
    _click(stage, "@carol", CAROL, root, "amibot_reassign", "Reassign to… alice", f"{request_id(root)}|prod|{rehearsal.OWNER}")
    alert = wait(lambda: next((text for text in _posted_dms(stage, rehearsal.OWNER) if text.startswith("Reassigned to you")), None))
    t.say("amibot (DM to alice, lock screen)", str(alert))
    t.expect("Alice got the reassignment as one alert: the card, its lock-screen text saying why", bool(alert))
    t.note("(the test clock moves 4 hours forward)")
    stage.clock.advance(4 * 3600 + 60)
    stage.bot.clockwork.tick()
    stage.bot.clockwork.tick()  # a second tick does not escalate again
    escalated = wait(lambda: _posted_dms(stage, rehearsal.ONCALL) or None)
    for text in escalated or []:
        t.say("amibot (DM to on-call, lock screen)", text)
    t.expect("on-call got the escalation once: one alert, the card with the same buttons",
             bool(escalated) and len(escalated) == 1 and escalated[0].startswith("Escalated (prod, nobody decided in 4 h): "))
    _click(stage, "@oncall", rehearsal.ONCALL, root, "amibot_approve", "Approve")
    final = stage.final_reply(root)
    stage.show_thread(root)
    t.expect("on-call's approval ran it", bool(final) and ":tada:" in final.get("text", ""))


def _posted_dms(stage: Stage, user: str) -> list[str]:
    """The texts of the DMs posted to ``user``: what their phone showed (later edits keep the card current)."""
    channel = stage.fake.dm_channel(user)
    return [c.params.get("text", "") for c in stage.fake.calls_to("chat.postMessage") if channel and c.params.get("channel") == channel]
