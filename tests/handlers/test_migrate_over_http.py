"""`/ami migrate` end to end over the real HTTP endpoint, signed as Slack signs,
against the sandbox: the plan names the subnet and why, an owner approves, and the
new instance is checked in the account itself."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from offline import rehearsal
from bot.requests import FAILED, PENDING_APPROVAL, RUNNING, SUCCEEDED

PROD, REGION = rehearsal.PROD, rehearsal.REGION
TARGET = f"{REGION}b"


@pytest.fixture
def aws_params(monkeypatch):
    """The parameters of every CreateImage / RunInstances call the bot's worker makes."""
    calls: list[tuple[str, dict]] = []
    real = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if operation_name in ("CreateImage", "RunInstances") and threading.current_thread().name.startswith("amibot-worker"):
            calls.append((operation_name, dict(api_params)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def prod_ec2(harness):
    return harness.world.sandbox.session(PROD, REGION).client("ec2")


def instance(harness, instance_id) -> dict:
    return prod_ec2(harness).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def migrated_instances(harness) -> list[dict]:
    reservations = prod_ec2(harness).describe_instances(Filters=[{"Name": "tag-key", "Values": ["amibot:migrated-from"]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def ask(harness, text):
    result = harness.slash(text)
    assert result.status == 200
    return harness.root_for(harness.world.instance_id)


def test_migrate_happy_path(harness, aws_params):
    source = harness.world.instance_id
    subnet_b = harness.world.network["subnets"][TARGET]
    root = ask(harness, f"migrate {source} from prod to {TARGET}")
    plan = harness.exact_changes(root)
    assert subnet_b in plan and "the only subnet" in plan
    assert "CreateImage" in plan and "RunInstances" in plan and "NoReboot=false" in plan
    assert "instance id and private IP change" in plan and "left running" in plan
    assert "alias/ami-shared" in plan  # the encrypted root volume's key is named
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    assert harness.bot.store.get(1).approver_accounts == ["prod"]

    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    [new] = migrated_instances(harness)
    assert f"<@{rehearsal.REQUESTER}>" in final["text"]
    assert new["InstanceId"] in final["text"] and new["PrivateIpAddress"] in final["text"]
    assert new["Placement"]["AvailabilityZone"] == TARGET and new["SubnetId"] == subnet_b
    assert new["State"]["Name"] == "running"
    # The source is untouched and still running.
    assert instance(harness, source)["State"]["Name"] == "running"
    create = [p for op, p in aws_params if op == "CreateImage"]
    assert len(create) == 1 and create[0]["NoReboot"] is False and create[0]["InstanceId"] == source
    thread = harness.fake.thread(harness.channel, root["ts"])
    assert all("R-1" in m["text"] for m in thread)
    # From outside, as amibot's role under the generated policy: the migrated instance
    # and the reported migration image are no longer amibot's to delete.
    image_id = harness.bot.store.get(1).steps[0].result["image_id"]
    assert "amibot:disposable" not in {t["Key"] for t in new.get("Tags", [])}
    # prod has `retire = true` (its operator lets /ami retire deregister its images): the
    # member policy of an account without it is the one whose deletes are only disposable.
    rehearsal.attach_member_policy(harness.world.sandbox, harness.bot.config, "prod", retire=False)
    role = harness.world.sandbox.role_session(PROD, region=REGION).client("ec2")
    for delete in (lambda: role.terminate_instances(InstanceIds=[new["InstanceId"]]), lambda: role.deregister_image(ImageId=image_id)):
        with pytest.raises(ClientError) as refused:
            delete()
        assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"


def test_no_reboot_passes_noreboot(harness, aws_params):
    root = ask(harness, f"migrate {harness.world.instance_id} from prod to {TARGET} no-reboot")
    assert "NoReboot=true" in harness.exact_changes(root)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    [create] = [p for op, p in aws_params if op == "CreateImage"]
    assert create["NoReboot"] is True
    assert harness.bot.store.get(1).state == SUCCEEDED


def test_plan_picks_the_subnet_with_most_free_addresses(harness):
    ec2 = prod_ec2(harness)
    small = ec2.create_subnet(VpcId=harness.world.network["vpc_id"], CidrBlock="10.20.9.0/28", AvailabilityZone=TARGET)["Subnet"]["SubnetId"]
    root = ask(harness, f"migrate {harness.world.instance_id} from prod to {TARGET}")
    plan = harness.exact_changes(root)
    assert f"RunInstances from that image in {harness.world.network['subnets'][TARGET]}" in plan
    assert "most free addresses" in plan and small in plan


def test_named_subnet_is_used(harness):
    ec2 = prod_ec2(harness)
    small = ec2.create_subnet(VpcId=harness.world.network["vpc_id"], CidrBlock="10.20.9.0/28", AvailabilityZone=TARGET)["Subnet"]["SubnetId"]
    root = ask(harness, f"migrate {harness.world.instance_id} from prod to {TARGET} subnet {small}")
    plan = harness.exact_changes(root)
    assert f"RunInstances from that image in {small}" in plan and "named with `subnet`" in plan


def test_impossible_migrations_are_refused_before_approval_with_the_fix(harness):
    ec2 = prod_ec2(harness)
    source, vpc = harness.world.instance_id, harness.world.network["vpc_id"]
    zone_a_subnet = harness.world.network["subnets"][f"{REGION}a"]
    other_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    other_vpc_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.99.1.0/24", AvailabilityZone=TARGET)["Subnet"]["SubnetId"]
    cases = [
        (f"migrate {source} from prod to {TARGET} subnet subnet-0123456789abcdef0", ["`subnet-0123456789abcdef0` does not exist"]),
        (f"migrate {source} from prod to {TARGET} subnet {zone_a_subnet}", [zone_a_subnet, "is in us-east-1a, not in us-east-1b"]),
        (f"migrate {source} from prod to {TARGET} subnet {other_vpc_subnet}", [other_vpc_subnet, "not in the instance's VPC", vpc]),
        (f"migrate {source} from prod to {REGION}a", ["already in us-east-1a"]),
        (f"migrate {source} from prod to {REGION}c", ["has no subnet in us-east-1c", "aws ec2 create-subnet", vpc, "10.20.0.0/16"]),
        (f"migrate i-0123456789abcdef0 from prod to {TARGET}", ["i-0123456789abcdef0 does not exist"]),
    ]
    for seen, (text, words) in enumerate(cases):
        assert harness.slash(text).status == 200
        answer = harness.ephemeral_for(rehearsal.REQUESTER, after=seen)
        assert all(w in answer for w in words), (text, answer)
    harness.settle()
    assert harness.fake.messages(harness.channel) == []  # nobody was asked
    assert harness.bot.store.find() == []


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _approve_with_image_held(harness):
    sandbox = harness.world.sandbox
    sandbox.hold_pending(True)
    root = ask(harness, f"migrate {harness.world.instance_id} from prod to {TARGET}")
    harness.click(rehearsal.OWNER, root)
    image_id = _wait_for(lambda: harness.bot.store.get(1).steps[1].result.get("image_id"))
    harness.settle()
    request = harness.bot.store.get(1)
    assert request.state == RUNNING and request.wake_at is not None
    assert migrated_instances(harness) == []
    # The scheduler's own tick is off in the harness: move its clock past the wake-up.
    harness.bot.clockwork.clock = lambda: time.time() + 120
    return root, image_id


def test_image_held_pending_is_polled_then_launched(harness):
    root, image_id = _approve_with_image_held(harness)
    harness.bot.clockwork.tick()  # still pending: nothing launched
    harness.settle()
    assert harness.bot.store.get(1).state == RUNNING and migrated_instances(harness) == []
    assert any(image_id in m["text"] for m in harness.fake.thread(harness.channel, root["ts"]))

    harness.world.sandbox.complete(image_id)
    # Found unchanged, the image is looked at again after its poll interval (as a
    # resumed step's wake_at did): move the scheduler's clock past it.
    harness.bot.clockwork.clock = lambda: time.time() + 240
    harness.bot.clockwork.tick()
    final = harness.final_reply(root)
    harness.settle()
    [new] = migrated_instances(harness)
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert new["InstanceId"] in final["text"] and new["ImageId"] == image_id


def test_failed_image_is_deregistered_and_nothing_launched(harness):
    root, image_id = _approve_with_image_held(harness)
    harness.world.sandbox.fail(image_id, reason="Snapshot creation failed.")
    harness.bot.clockwork.tick()
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == FAILED
    assert "deregistered the unfinished image" in final["text"] and image_id in final["text"]
    assert prod_ec2(harness).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["amibot-migrate-*"]}])["Images"] == []
    assert migrated_instances(harness) == []
    assert instance(harness, harness.world.instance_id)["State"]["Name"] == "running"


def test_failed_launch_keeps_the_finished_image_and_says_so(harness):
    root, image_id = _approve_with_image_held(harness)
    # The key is disabled meanwhile: AWS creates the instance and terminates it at once.
    harness.world.sandbox.client("kms", PROD, REGION).disable_key(KeyId=harness.world.cmk_arn)
    harness.world.sandbox.complete(image_id)
    harness.bot.clockwork.tick()
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == FAILED
    assert "terminated at once" in final["text"]
    remains = final["text"].split("Remains:", 1)[1]
    assert image_id in remains and "kept" in remains
    assert prod_ec2(harness).describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    assert instance(harness, harness.world.instance_id)["State"]["Name"] == "running"


def test_migrate_carries_imds_tenancy_protection_credits_and_volume_tags(harness):
    sandbox = harness.world.sandbox
    source = sandbox.create_instance(
        PROD, REGION, availability_zone=f"{REGION}a", tags={"Name": "locked-1"}, instance_type="t3.small",
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
        DisableApiTermination=True, DisableApiStop=True, EbsOptimized=True,
        CreditSpecification={"CpuCredits": "standard"}, Placement={"Tenancy": "dedicated"},
    )
    ec2 = prod_ec2(harness)
    volumes = [m["Ebs"]["VolumeId"] for m in instance(harness, source)["BlockDeviceMappings"]]
    ec2.create_tags(Resources=volumes, Tags=[{"Key": "backup", "Value": "daily"}])

    assert harness.slash(f"migrate {source} from prod to {TARGET}").status == 200
    root = harness.root_for(source)
    plan = json.dumps(root["blocks"]) + next(s for s in harness.bot.store.get(1).steps if s.action == "ec2.launch_migrated_instance").description
    assert "HttpTokens=required" in plan and "tenancy dedicated" in plan and "protection against termination and stop" in plan
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    [new] = [i for i in migrated_instances(harness) if {"Key": "amibot:migrated-from", "Value": source} in i["Tags"]]
    new_id = new["InstanceId"]
    # An IMDSv2-required instance stays required; the rest is the same as the source.
    assert new["MetadataOptions"]["HttpTokens"] == "required" and new["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert new["EbsOptimized"] is True and new["Placement"]["Tenancy"] == "dedicated"
    assert ec2.describe_instance_attribute(InstanceId=new_id, Attribute="disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert ec2.describe_instance_attribute(InstanceId=new_id, Attribute="disableApiStop")["DisableApiStop"]["Value"] is True
    assert ec2.describe_instance_credit_specifications(InstanceIds=[new_id])["InstanceCreditSpecifications"][0]["CpuCredits"] == "standard"
    new_volumes = ec2.describe_volumes(VolumeIds=[m["Ebs"]["VolumeId"] for m in new["BlockDeviceMappings"]])["Volumes"]
    assert new_volumes and all({"Key": "backup", "Value": "daily"} in v.get("Tags", []) for v in new_volumes)


def test_an_instance_whose_role_may_not_be_passed_is_refused_before_approval(harness):
    """iam:PassRole only on the configured pass_roles: an instance running with another
    role is refused in the preflight (the launch would be refused after the image)."""
    iam = harness.world.sandbox.client("iam", PROD)
    iam.create_role(RoleName="admin-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.create_instance_profile(InstanceProfileName="admin-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="admin-profile", RoleName="admin-role")
    source = harness.world.sandbox.create_instance(PROD, REGION, availability_zone=f"{REGION}a", tags={"Name": "admin-1"}, instance_profile="admin-profile")
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    assert harness.slash(f"migrate {source} from prod to {TARGET}").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER, after=before)
    assert f"arn:aws:iam::{PROD}:role/admin-role" in answer and "accounts.prod.pass_roles" in answer
    assert harness.bot.store.find() == []


def test_migrate_carries_the_shutdown_behaviour_and_names_the_source_dest_check(harness, aws_params):
    """Issue 15 §4: what RunInstances can carry is carried; a NAT instance's turned-off
    source/destination check cannot be, and the plan says so with the command."""
    sandbox = harness.world.sandbox
    source = sandbox.create_instance(PROD, REGION, availability_zone=f"{REGION}a", tags={"Name": "nat-1"}, InstanceInitiatedShutdownBehavior="terminate")
    prod_ec2(harness).modify_instance_attribute(InstanceId=source, SourceDestCheck={"Value": False})
    assert harness.slash(f"migrate {source} from prod to {TARGET}").status == 200
    root = harness.root_for(source)
    assert "--no-source-dest-check" in json.dumps(root["blocks"]) + harness.exact_changes(root)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    [run] = [params for name, params in aws_params if name == "RunInstances"]
    assert run["InstanceInitiatedShutdownBehavior"] == "terminate"


def test_an_account_with_migrate_off_is_refused_before_approval(harness):
    """``migrate = false``: the account's role has no amibot-migrate policy (no
    CreateImage, no iam:PassRole), so the preflight refuses, saying how to allow it."""
    import dataclasses

    config = harness.bot.service.config
    prod = dataclasses.replace(config.accounts["prod"], migrate=False)
    harness.bot.service.config = dataclasses.replace(config, accounts={**config.accounts, "prod": prod})
    assert harness.slash(f"migrate {harness.world.instance_id} from prod to {TARGET}").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "Migrating instances is not enabled for `prod`" in answer and "migrate = false" in answer and "amibot-migrate" in answer
    assert harness.bot.store.find() == []
