"""Demo scenario: the request form and the App Home, shown as the views the bot
published (``views.open`` / ``views.publish``), played with signed payloads."""

from __future__ import annotations

from offline import rehearsal
from offline.scenarios.stage import Stage, wait

FORM = "amibot_request_form"


def view_text(view: dict) -> str:
    """A view as a person would read it: headers, texts, fields, buttons."""
    lines = []
    for block in view.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"▌{block['text']['text']}")
        elif kind == "section":
            accessory = block.get("accessory") or {}
            button = f"   [ {accessory['text']['text']} ]" if accessory.get("type") == "button" else ""
            lines.append(block["text"]["text"] + button)
        elif kind == "actions":
            lines.append("   ".join(f"[ {e['text']['text']} ]" for e in block["elements"]))
        elif kind == "context":
            lines.append(" ".join(e.get("text", "") for e in block["elements"]))
        elif kind == "input":
            optional = "" if not block.get("optional") else " (optional)"
            lines.append(f"{block['label']['text']}{optional}: ⟨{block['element']['type']}⟩")
    return "\n".join(lines)


def _leaf(kind: str, value, label: str | None = None) -> dict:
    if kind == "select":
        return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": label or value}, "value": value}}
    if kind == "multi":
        return {"type": "multi_static_select", "selected_options": [{"text": {"type": "plain_text", "text": v}, "value": v} for v in value]}
    return {"type": "plain_text_input", "value": value}


def play(stage: Stage) -> None:
    """Bob asks through the form; Alice approves from her App Home; Bob ends the
    time-boxed share from his Home (an ordinary unshare, approved as usual)."""
    t, fake, slack, channel = stage.t, stage.fake, stage.slack, stage.channel
    t.note("— the request form and the App Home —")
    image = stage.sandbox.create_image(rehearsal.PROD, rehearsal.REGION, name="reports-2026.11")
    home = f"VHOME{rehearsal.OWNER}"

    t.say("@alice", "opens amibot's Home tab")
    slack.home_opened(rehearsal.OWNER)
    shown = wait(lambda: fake.views.get(home))
    t.expect("her Home was published (views.publish)", bool(shown))
    retried = len(fake.calls_to("views.publish"))
    slack.home_opened(rehearsal.OWNER, event_id="Ev0DEMO", retry_num=None)
    wait(lambda: len(fake.calls_to("views.publish")) > retried)
    slack.home_opened(rehearsal.OWNER, event_id="Ev0DEMO", retry_num=1)
    stage.bot.listeners.drain()
    stage.bot.notifier.flush()
    t.expect("Slack's retry of the same event (X-Slack-Retry-Num) published nothing more",
             len(fake.calls_to("views.publish")) == retried + 1)

    t.say("@bob", "/ami")
    slack.slash(rehearsal.REQUESTER, channel, "")
    form = wait(lambda: next((v for v in fake.views.values() if v.get("callback_id") == FORM), None))
    if not t.expect("the request form opened (views.open with the command's trigger_id)", bool(form)):
        return
    t.say("amibot (form)", view_text(form))
    state = {"source": {"source": _leaf("select", "prod")}, "region": {"region": _leaf("select", rehearsal.REGION)}}
    t.say("@bob", "types “reports” in the AMI field")
    def suggest():  # a first load may still be running: "still loading", type again
        found = slack.suggest(rehearsal.REQUESTER, "ami", "reports", view_id=form["id"], values=state).json()["options"]
        return None if [o["value"] for o in found] == ["loading"] else found

    options = wait(suggest) or []
    t.say("amibot (options)", "\n".join(o["text"]["text"] for o in options) or "(none)")
    t.expect("the picker offers prod's own AMI by name", [o["value"] for o in options] == [image])

    values = {
        **state,
        "operation": {"operation": _leaf("select", "share")},
        "ami": {"ami": {"type": "external_select", "selected_option": options[0]}},
        "targets": {"targets": _leaf("multi", ["dev"])},
        "duration": {"duration": _leaf("text", "3 fortnights")},
        "reason": {"reason": _leaf("text", "quarterly reports for the dev team")},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": channel}},
    }
    # The form's channel must be one bob is in (issue 17): the platform channel's members.
    fake.channel_members.setdefault(channel, [rehearsal.REQUESTER, rehearsal.OWNER, fake.bot_user_id])
    t.say("@bob", "submits with duration “3 fortnights”")
    errors = slack.submit_view(rehearsal.REQUESTER, FORM, values).json() or {}
    t.say("amibot (form)", "\n".join(f"{k}: {v}" for k, v in (errors.get("errors") or {}).items()))
    t.expect("the field error comes back under the duration, in the grammar's words",
             errors.get("response_action") == "errors" and "hours or days" in errors.get("errors", {}).get("duration", ""))
    values["duration"] = {"duration": _leaf("text", "2d")}
    t.say("@bob", "corrects it to “2d” and submits")
    slack.submit_view(rehearsal.REQUESTER, FORM, values)
    root = stage.root_for(f"share {image}")
    number = (root or {}).get("text", "").split(":")[0]
    asked = stage.bot.store.get(int(number[2:])).command_text if number.startswith("R-") else ""
    if not t.expect("the form created the same request as the command it stands for", bool(root) and f"share {image} from prod:{rehearsal.REGION} to dev for 2d" in asked):
        return

    waiting = wait(lambda: number in str(fake.views.get(home)) and "Approve" in str(fake.views.get(home)) and fake.views.get(home))
    t.say("amibot (alice's Home)", view_text(waiting or {}))
    t.expect("Alice's Home was republished with the request waiting on her and its buttons", bool(waiting))
    buttons = {e["action_id"]: e for b in (waiting or {}).get("blocks", []) if b.get("type") == "actions" for e in b["elements"]}
    t.expect("her Home decides as the card does: Approve asks to confirm with the risk, Deny opens the form, View exact changes is there",
             "Risk:" in ((buttons.get("amibot_approve") or {}).get("confirm") or {}).get("text", {}).get("text", "")
             and "confirm" not in (buttons.get("amibot_deny") or {"confirm": 1}) and "amibot_view_changes" in buttons)
    t.say("@alice", "clicks [ Approve ] on her Home")
    slack.click_view(rehearsal.OWNER, home, "amibot_approve", number)
    final = stage.final_reply(root, timeout=30)
    t.expect("approved from the Home: the share ran and the thread says so", bool(final))

    bob_home = f"VHOME{rehearsal.REQUESTER}"
    slack.home_opened(rehearsal.REQUESTER)
    shares = wait(lambda: "Unshare" in str(fake.views.get(bob_home)) and fake.views.get(bob_home))
    t.say("amibot (bob's Home)", view_text(shares or {}))
    t.expect("Bob's Home lists the active time-boxed share with an Unshare button", bool(shares))
    t.say("@bob", "clicks [ Unshare ] on his Home")
    slack.click_view(rehearsal.REQUESTER, bob_home, "amibot_home_unshare", number)
    unshare = stage.root_for(f"unshare {image}")
    t.expect("Unshare asked for an ordinary unshare, waiting for an owner's approval", bool(unshare))
    if unshare:
        t.say("@alice", "clicks [ Approve ]")
        slack.click(rehearsal.OWNER, channel, unshare["ts"], "amibot_approve", unshare["text"].split(":")[0])
        t.expect("the unshare ran once approved", bool(stage.final_reply(unshare, timeout=30)))
