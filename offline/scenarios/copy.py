"""Demo scenario: copy prod's CMK-encrypted AMI into dev in another region."""

from __future__ import annotations

from offline import rehearsal
from offline.scenarios.stage import Stage, blocks_text, request_id, wait


def play(stage: Stage) -> None:
    """Copy prod's encrypted AMI into dev:eu-west-1; both owners approve; the copy is
    checked from dev's side (owned by dev, encrypted with dev's key, tags carried) and
    the temporary share from prod's side (gone)."""
    t, fake, world, channel, sandbox = stage.t, stage.fake, stage.world, stage.channel, stage.sandbox
    region = rehearsal.OTHER_REGION
    image = world.encrypted_image
    t.note(f"— copying prod's CMK-encrypted AMI into dev in {region} (dev will own it) —")
    prod_ec2 = sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2")
    launch_before = prod_ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    text = f"copy {image} from prod to dev:{region}"
    stage.ask(text)
    root = stage.root_for(f"copy {image}")
    if not t.expect("the approval message with the plan was posted in the channel", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    plan = stage.exact_changes(root)
    t.expect("the plan shows the copy's real name", f"-copy-{request_id(root)}`" in plan and "this request's number" not in plan)
    t.expect("the plan names CopyImage in dev's region with dev's own key", "CopyImage as `dev` in eu-west-1" in plan and world.dev_cmk_other_region_arn in plan)
    t.expect("the plan adds launch/snapshot permission and a grant only for the copy, and removes them", "temporary" in plan and "Remove what steps" in plan)

    # Copies take minutes in AWS: let this one take a few seconds, to show progress.
    sandbox.set_copy_duration(3)
    try:
        t.say("@alice", "clicks [ Approve ] (an owner of prod)")
        stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
        waiting = wait(lambda: any("still waiting" in (m.get("text") or "") for m in fake.thread(channel, root["ts"])))
        t.expect("one owner is not enough: the copy waits for dev's owner too", bool(waiting))
        t.say("@devops", "clicks [ Approve ] (an owner of dev)")
        stage.slack.click(rehearsal.DEV_OWNER, channel, root["ts"], "amibot_approve", request_id(root))
        final = stage.final_reply(root, timeout=60)
    finally:
        sandbox.set_copy_duration(None)
    stage.show_thread(root)
    progress = [m for m in fake.thread(channel, root["ts"]) if (m.get("text") or "").startswith(":gear:")]
    t.expect("the copy's progress was shown in one thread message, edited in place", len(progress) == 1 and bool(progress[0].get("edited")))
    t.expect("the last reply mentions the requester and names the new AMI", bool(final) and f"<@{rehearsal.REQUESTER}>" in final.get("text", "") and "The copy is <https://eu-west-1.console.aws.amazon.com/" in final.get("text", ""))
    if not final:
        return

    dev_ec2 = sandbox.session(rehearsal.DEV, region).client("ec2")
    copies = [i for i in dev_ec2.describe_images(Owners=["self"])["Images"] if any(tg["Key"] == "amibot:source-ami" and tg["Value"] == image for tg in i.get("Tags", []))]
    t.expect("from dev's side: one copy, owned by dev, available", len(copies) == 1 and copies[0]["OwnerId"] == rehearsal.DEV and copies[0]["State"] == "available")
    if not copies:
        return
    copy = copies[0]
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in copy["BlockDeviceMappings"] if "Ebs" in m]
    snaps = dev_ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    t.expect("from dev's side: its snapshots are encrypted with dev's own key (alias/ami-dev)", bool(snaps) and all(s["KmsKeyId"] == world.dev_cmk_other_region_arn for s in snaps))
    tags = {tg["Key"]: tg["Value"] for tg in copy.get("Tags", [])}
    t.expect(
        "from dev's side: prod's tags and the provenance tags were carried",
        tags.get("app") == "payments" and tags.get("amibot:source-account") == rehearsal.PROD and rehearsal.OWNER in tags.get("amibot:approvers", ""),
    )
    launch_after = prod_ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    snapshot_perms = [
        p for s in prod_ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"] if "Ebs" in s
        for p in prod_ec2.describe_snapshot_attribute(SnapshotId=s["Ebs"]["SnapshotId"], Attribute="createVolumePermission")["CreateVolumePermissions"]
    ]
    uid = stage.bot.store.get(int(request_id(root).split("-")[1])).uid
    grants = sandbox.session(rehearsal.PROD, rehearsal.REGION).client("kms").list_grants(KeyId=world.cmk_arn)["Grants"]
    t.expect(
        "from prod's side: the temporary snapshot permission and grant are gone, launch permission as before",
        launch_after == launch_before and not snapshot_perms and not any(uid in (g.get("Name") or "") for g in grants),
    )


def play_same_region(stage: Stage) -> None:
    """Copy prod's unencrypted AMI into dev in the same region: dev owns the copy,
    encrypted with dev's own key even though the source was not encrypted."""
    t, world, channel, sandbox = stage.t, stage.world, stage.channel, stage.sandbox
    image = world.plain_image
    t.note("— copying prod's unencrypted AMI into dev, same region (ownership transfer) —")
    text = f"copy {image} from prod to dev name base-al2023-dev"
    stage.ask(text)
    root = stage.root_for(f"copy {image}")
    if not t.expect("the approval message was posted", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    for who, user in (("@alice", rehearsal.OWNER), ("@devops", rehearsal.DEV_OWNER)):
        t.say(who, "clicks [ Approve ]")
        stage.slack.click(user, channel, root["ts"], "amibot_approve", request_id(root))
    final = stage.final_reply(root, timeout=60)
    stage.show_thread(root)
    t.expect("the last reply mentions the requester and names the new AMI", bool(final) and f"<@{rehearsal.REQUESTER}>" in final.get("text", "") and "ami-" in final.get("text", ""))
    dev_ec2 = sandbox.session(rehearsal.DEV, rehearsal.REGION).client("ec2")
    copies = dev_ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["base-al2023-dev"]}])["Images"]
    t.expect("from dev's side: one copy named base-al2023-dev, owned by dev", len(copies) == 1 and copies[0]["OwnerId"] == rehearsal.DEV)
    if copies:
        snapshot_ids = [m["Ebs"]["SnapshotId"] for m in copies[0]["BlockDeviceMappings"] if "Ebs" in m]
        snaps = dev_ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
        t.expect("from dev's side: encrypted with dev's own key (alias/ami-dev)", bool(snaps) and all(s.get("KmsKeyId") == world.dev_cmk_arn for s in snaps))
