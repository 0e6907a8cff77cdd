"""Demo scenarios: migrating prod's web-1 from us-east-1a to us-east-1b, and a
migration into a subnet of the wrong zone that the bot must refuse."""

from __future__ import annotations

import time

from offline import rehearsal
from offline.scenarios.stage import Stage, ack_text, blocks_text, request_id

TARGET = f"{rehearsal.REGION}b"


def refused_wrong_subnet(stage: Stage) -> None:
    """A subnet outside the target zone is refused before anyone is asked."""
    t, fake, world = stage.t, stage.fake, stage.world
    t.note("— a migration the bot must refuse: the named subnet is not in the target zone —")
    wrong = world.network["subnets"][f"{rehearsal.REGION}a"]
    text = f"migrate {world.instance_id} from prod to {TARGET} subnet {wrong}"
    answer = stage.ask_refused(text)
    t.expect("a subnet in another zone is refused before anyone is asked, in plain words", bool(answer and wrong in answer and f"not in {TARGET}" in answer))
    t.expect("no approval message was posted for it", not any(wrong in (m.get("text") or "") for m in fake.messages(stage.channel)))


def play(stage: Stage) -> None:
    """Migrate web-1 from prod's us-east-1a to us-east-1b: the plan names the subnet
    and why, an owner approves, and the new instance is checked in prod itself."""
    t, world, channel = stage.t, stage.world, stage.channel
    t.note(f"— migrating web-1 ({world.instance_id}) from {rehearsal.REGION}a to {TARGET} —")
    text = f"migrate {world.instance_id} from prod to {TARGET}"
    t.say("@bob", f"/ami {text}")
    started = time.perf_counter()
    result = stage.slack.slash(rehearsal.REQUESTER, channel, text)
    ack_ms = (time.perf_counter() - started) * 1000
    t.say("amibot (only bob)", ack_text(result))
    t.expect(f"the slash command was acknowledged with HTTP 200 in {ack_ms:.0f} ms (Slack allows 3,000)", result.status == 200 and ack_ms < 3000)
    root = stage.root_for(text)
    if not t.expect("the approval message with the plan was posted in the channel", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    t.expect("the card names the main risk: a reboot of web-1", "*Risk:* reboots web-1" in blocks_text(root))
    plan = stage.exact_changes(root)
    subnet = world.network["subnets"][TARGET]
    t.expect(f"the plan names the subnet {subnet} and why it was chosen", subnet in plan and "the only subnet" in plan)
    t.expect("the plan says the instance id and private IP change and the source is left running", "instance id and private IP change" in plan and "left running" in plan)

    t.say("@alice", "clicks [ Approve ]")
    stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
    final = stage.final_reply(root, timeout=60)
    stage.show_thread(root)
    ec2 = stage.sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2")
    found = ec2.describe_instances(Filters=[{"Name": "tag:amibot:migrated-from", "Values": [world.instance_id]}])["Reservations"]
    new = next((i for r in found for i in r["Instances"]), None)
    final_text = (final or {}).get("text", "")
    t.expect("the last reply mentions the requester and is broadcast", f"<@{rehearsal.REQUESTER}>" in final_text)
    if not t.expect("from prod's side: a new instance was launched", new is not None):
        return
    t.expect("the last reply names the new instance id and its private IP", new["InstanceId"] in final_text and new["PrivateIpAddress"] in final_text)
    source = ec2.describe_instances(InstanceIds=[world.instance_id])["Reservations"][0]["Instances"][0]
    t.expect(f"from prod's side: the new instance runs in {TARGET}, in {subnet}", new["State"]["Name"] == "running" and new["Placement"]["AvailabilityZone"] == TARGET and new["SubnetId"] == subnet)
    t.expect(
        "from prod's side: same type, security groups, key pair, instance profile and tags",
        new["InstanceType"] == source["InstanceType"]
        and [g["GroupId"] for g in new["SecurityGroups"]] == [g["GroupId"] for g in source["SecurityGroups"]]
        and new.get("KeyName") == source.get("KeyName")
        and new.get("IamInstanceProfile", {}).get("Arn") == source.get("IamInstanceProfile", {}).get("Arn")
        and {t_["Key"]: t_["Value"] for t_ in source["Tags"]}.items() <= {t_["Key"]: t_["Value"] for t_ in new["Tags"]}.items(),
    )
    t.expect(f"from prod's side: the source {world.instance_id} is still running in {rehearsal.REGION}a", source["State"]["Name"] == "running" and source["Placement"]["AvailabilityZone"] == f"{rehearsal.REGION}a")
