"""`/ami retire` over the wire: the refusals before anyone is asked, the plan's
listing (who loses launch permission, snapshots kept, the Recycle Bin), each mode,
and with-copies as groups of one request where one failing does not stop the others."""

from __future__ import annotations

from offline import rehearsal
from offline.sandbox.ec2_retire import add_recycle_bin_rule
from offline.sandbox.state import _ec2_backends
from bot.requests import ACTIVE, PARTIAL, REVOKED, STEP_UNDONE, SUCCEEDED

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, OTHER = rehearsal.REGION, rehearsal.OTHER_REGION


def ec2(harness, account, region=SRC):
    return harness.sandbox.client("ec2", account, region)


def refusal(harness, text, after):
    harness.slash(text)
    return harness.ephemeral_for(rehearsal.REQUESTER, after=after)


def approve(harness, needle, owners=(rehearsal.OWNER,)):
    root = harness.root_for(needle)
    for owner in owners:
        harness.click(owner, root)
    final = harness.final_reply(root)["text"]
    harness.settle()
    return root, final


def test_refused_before_anyone_is_asked_with_the_fix(harness):
    image = harness.world.plain_image
    prod = ec2(harness, PROD)
    prod.enable_image_deregistration_protection(ImageId=image, WithCooldown=True)
    said = refusal(harness, f"retire {image} from prod deregister", 0)
    assert "deregistration protection" in said and "disable-image-deregistration-protection" in said
    prod.disable_image_deregistration_protection(ImageId=image)
    said = refusal(harness, f"retire {image} from prod deregister", 1)
    assert "24-hour cooldown" in said
    harness.clock.advance(24 * 3600 + 5)

    template = prod.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": image})["LaunchTemplate"]["LaunchTemplateId"]
    said = refusal(harness, f"retire {image} from prod disable", 2)
    assert template in said and "default version" in said
    prod.delete_launch_template(LaunchTemplateId=template)

    lc_image = harness.world.encrypted_image
    autoscaling = harness.sandbox.client("autoscaling", PROD, SRC)
    autoscaling.create_launch_configuration(LaunchConfigurationName="old-lc", ImageId=lc_image, InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchConfigurationName="old-lc", MinSize=0, MaxSize=1,
                                          AvailabilityZones=[f"{SRC}a"])
    said = refusal(harness, f"retire {lc_image} from prod deregister", 3)
    assert "web-asg" in said and "old-lc" in said

    prod.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})  # dev sees it, does not own it
    said = refusal(harness, f"retire {image} from dev deprecate", 4)
    assert "not by `dev`" in said
    assert harness.bot.store.find() == []  # nothing stored, nobody asked


def test_disable_lists_who_loses_launch_permission_and_warns_of_instances(harness):
    image = harness.world.plain_image
    prod = ec2(harness, PROD)
    harness.slash(f"share {image} from prod to dev for 2h")  # a time-boxed share amibot records
    approve(harness, f"share {image}", owners=(rehearsal.OWNER, rehearsal.DEV_OWNER))
    assert harness.bot.store.get(1).state == ACTIVE
    prod.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    harness.slash(f"retire {image} from prod disable")
    root = harness.root_for(f"retire {image}")
    changes = harness.exact_changes(root)
    assert "launch permission removed for: `dev`" in changes
    root, final = approve(harness, f"retire {image}")
    assert harness.bot.store.get(2).state == SUCCEEDED, final
    assert "R-1 (time-boxed share) ended: the image is disabled." in final
    share = harness.bot.store.get(1)
    assert share.state == REVOKED  # its expiry has nothing left to remove
    assert [s.state for s in share.steps if s.action == "ec2.add_launch_permission"] == [STEP_UNDONE]
    assert prod.describe_images(ImageIds=[image])["Images"][0]["State"] == "disabled"
    assert not ec2(harness, DEV).describe_images(Owners=[PROD])["Images"]


def test_deregister_names_snapshots_kept_and_the_recycle_bin(harness):
    image = harness.world.plain_image
    prod = ec2(harness, PROD)
    snap = prod.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    twin = harness.sandbox.create_image(PROD, SRC, name="twin")
    backend = _ec2_backends()[PROD][SRC]
    backend.amis[twin].__dict__["_sbx_bdm"] = [("/dev/xvda", backend.snapshots[snap])]
    add_recycle_bin_rule(PROD, SRC, 7)
    harness.slash(f"retire {image} from prod deregister")
    root = harness.root_for(f"retire {image}")
    changes = harness.exact_changes(root)
    assert f"{snap} ({twin})" in changes and "Recycle Bin" in changes and "7 days" in changes
    approve(harness, f"retire {image}")
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert image not in {i["ImageId"] for i in prod.describe_images(Owners=["self"])["Images"]}
    assert snap in {s["SnapshotId"] for s in prod.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_with_copies_each_a_group_one_failing_does_not_stop_the_others(harness):
    image = harness.world.plain_image
    copies = {}
    for region in (SRC, OTHER):
        copy = harness.sandbox.create_image(DEV, region, name=f"copy-{region}", tags={"amibot:source-ami": image})
        copies[region] = copy
    harness.slash(f"retire {image} from prod deprecate with-copies")
    root = harness.root_for(f"retire {image}")
    # One of dev's two copies fails when the step runs (AWS says it is gone by then).
    harness.sandbox.inject_fault("EnableImageDeprecation", code="InvalidAMIID.Unavailable", status=400, message="gone", account=DEV, times=1)
    harness.click(rehearsal.OWNER, root)
    harness.click(rehearsal.DEV_OWNER, root)
    final = harness.final_reply(root)["text"]
    harness.settle()
    request = harness.bot.store.get(1)
    assert request.state == PARTIAL, final
    done = [r for r in (SRC, OTHER) if "DeprecationTime" in ec2(harness, DEV, r).describe_images(ImageIds=[copies[r]])["Images"][0]]
    assert len(done) == 1  # one copy failed, the other finished
    assert "DeprecationTime" in ec2(harness, PROD).describe_images(ImageIds=[image])["Images"][0]
    for unit in (f"prod:{SRC}", f"dev:{SRC}", f"dev:{OTHER}"):
        assert unit in final
