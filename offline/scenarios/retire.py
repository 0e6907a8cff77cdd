"""Demo scenario: retiring the distributed golden image with every copy amibot made
of it (``/ami retire … deregister with-copies``), one request, a group per AMI."""

from __future__ import annotations

from offline import rehearsal
from offline.sandbox.ec2_retire import add_recycle_bin_rule
from offline.scenarios.stage import Stage, blocks_text, request_id


def play(stage: Stage) -> None:
    """Deregister prod's encrypted AMI and its copies (dev:eu-west-1, prod:eu-west-1,
    dev:us-west-2, made by the copy and distribute scenarios): the plan lists each
    AMI, the Recycle Bin rule that keeps prod's restorable, both accounts' owners
    approve, and the final message lists each account-region and its outcome."""
    t, world, channel, sandbox = stage.t, stage.world, stage.channel, stage.sandbox
    image = world.encrypted_image
    add_recycle_bin_rule(rehearsal.PROD, rehearsal.REGION, 7)
    t.note("— retiring the golden image everywhere amibot copied it (prod keeps a 7-day Recycle Bin rule) —")
    stage.ask(f"retire {image} from prod deregister with-copies reason \"replaced by the 2.5 image\"")
    root = stage.root_for(f"retire {image}")
    if not t.expect("one approval message for the AMI and its copies", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    plan = stage.exact_changes(root)
    t.expect("the plan lists the copies amibot made, each in its account-region",
             all(f"`{x}`" in plan for x in ("dev:eu-west-1", "prod:eu-west-1", "dev:us-west-2")))
    t.expect("the plan says prod's AMI stays restorable from the Recycle Bin for 7 days", "7 days" in plan)
    t.say("@alice", "clicks [ Approve ] (prod)")
    stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
    t.say("@devops", "clicks [ Approve ] (dev)")
    stage.slack.click(rehearsal.DEV_OWNER, channel, root["ts"], "amibot_approve", request_id(root))
    final = stage.final_reply(root, timeout=60)
    if not t.expect("the final message lists each account-region and its outcome", bool(final) and "deregistered" in final.get("text", "")):
        return
    t.say("amibot (thread)", final["text"])
    stage.closing.append("Retire, final message:\n" + final["text"])
    west = sandbox.session(rehearsal.DEV, "us-west-2").client("ec2")
    left = [i for i in west.describe_images(Owners=["self"])["Images"] if any(tg.get("Value") == image for tg in i.get("Tags", []))]
    t.expect("from dev's side in us-west-2: the copy is gone", not left)
