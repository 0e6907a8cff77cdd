"""Demo scenarios: unsharing what the share scenario shared, and a share with an OU
(key-policy statement shown before and after) that is then unshared."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from offline import rehearsal
from offline.scenarios.stage import Stage, blocks_text


def _dev_access(stage: Stage, image_id: str, key_arn: str) -> tuple[bool, bool]:
    """(dev sees the AMI, dev can use the key), asked from dev's side."""
    dev = stage.sandbox.session(rehearsal.DEV, rehearsal.REGION)
    try:
        visible = bool(dev.client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        visible = False
    # Usable = EC2 can use the key for dev's launch (org statements allow the key only
    # through EC2, so a direct KMS call is no evidence): the instance keeps running.
    ec2 = dev.client("ec2")
    try:
        instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
        usable = state == "running"
        ec2.terminate_instances(InstanceIds=[instance])
    except ClientError:
        usable = False
    return visible, usable


def _ask_and_approve(stage: Stage, text: str) -> dict | None:
    """Bob asks, the card and its exact changes are shown, Alice approves; returns the
    final reply (and keeps the exact changes in ``stage.last_plan``)."""
    t = stage.t
    stage.ask(text)
    root = stage.root_for(text)
    if not t.expect(f"the plan for `{text}` was posted for approval", bool(root)):
        return None
    t.say("amibot", blocks_text(root))
    stage.last_plan = stage.exact_changes(root)
    t.say("@alice", "clicks [ Approve ]")
    stage.slack.click(rehearsal.OWNER, stage.channel, root["ts"], "amibot_approve", root["text"].split(":")[0])
    final = stage.final_reply(root, timeout=30)
    stage.show_thread(root)
    t.expect("the last reply says it is done and mentions the requester", bool(final) and ":tada:" in final.get("text", "") and f"<@{rehearsal.REQUESTER}>" in final.get("text", ""))
    return final


def play(stage: Stage) -> None:
    """Unshare the AMI the share scenario shared with dev; checked from dev's side."""
    t, world = stage.t, stage.world
    t.note("— unsharing the CMK-encrypted AMI from dev (run after the share scenario) —")
    image, cmk = world.encrypted_image, world.cmk_arn
    visible, usable = _dev_access(stage, image, cmk)
    t.note(f"before: dev {'sees' if visible else 'does not see'} the AMI and {'can' if usable else 'cannot'} use prod's CMK")
    if _ask_and_approve(stage, f"unshare {image} from prod to dev") is None:
        return
    plan = stage.last_plan
    if visible:
        t.expect("the plan revokes the grant by its recorded id and says which request made it", "RevokeGrant" in plan and "made by R-" in plan)
    visible, usable = _dev_access(stage, image, cmk)
    t.expect("from dev's side: the AMI is no longer visible", not visible)
    t.expect("from dev's side: prod's CMK is no longer usable", not usable)
    grants = stage.sandbox.session(rehearsal.PROD, rehearsal.REGION).client("kms").list_grants(KeyId=cmk)["Grants"]
    t.expect("no grant is left on prod's CMK", grants == [])


def org_share(stage: Stage) -> None:
    """Share with dev's OU (launch permission by OU ARN and a key-policy statement the
    approver sees before and after), then unshare it: the policy is restored."""
    t, world = stage.t, stage.world
    t.note(f"— sharing with the OU {rehearsal.DEV_OU}: a grant cannot name an OU, so the key policy changes —")
    image, cmk = world.encrypted_image, world.cmk_arn
    prod_kms = stage.sandbox.session(rehearsal.PROD, rehearsal.REGION).client("kms")
    original = prod_kms.get_key_policy(KeyId=cmk, PolicyName="default")["Policy"]
    if _ask_and_approve(stage, f"share {image} from prod to {rehearsal.DEV_OU}") is None:
        return
    visible, usable = _dev_access(stage, image, cmk)
    t.expect(f"from dev's side (in {rehearsal.DEV_OU}): the AMI is visible and prod's CMK usable through the key policy", visible and usable)
    statements = json.loads(prod_kms.get_key_policy(KeyId=cmk, PolicyName="default")["Policy"])["Statement"]
    t.expect("the key policy gained exactly two amibot statements (crypto through EC2; CreateGrant only for AWS resources)",
             sum(s.get("Sid", "").startswith("amibot-") for s in statements) == 2)

    t.note(f"— unsharing the OU {rehearsal.DEV_OU} —")
    if _ask_and_approve(stage, f"unshare {image} from prod to {rehearsal.DEV_OU}") is None:
        return
    visible, usable = _dev_access(stage, image, cmk)
    t.expect("from dev's side: the AMI is gone and the key unusable again", not visible and not usable)
    t.expect("the key policy is back to its text before the share, byte for byte",
             prod_kms.get_key_policy(KeyId=cmk, PolicyName="default")["Policy"] == original)
