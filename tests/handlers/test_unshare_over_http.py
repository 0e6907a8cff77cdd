"""`/ami unshare` end to end over the real HTTP endpoint, against the sandbox; every
effect checked from the target account's side, and the store checked so nothing is
removed twice. Also the Auto Scaling grant a share makes through the target's role."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from botocore.exceptions import ClientError

from aws.actions.autoscaling import autoscaling_role
from offline import rehearsal
from bot.requests import ACTIVE, REVOKED, STEP_DONE, STEP_UNDONE, SUCCEEDED

DEV, PROD = rehearsal.DEV, rehearsal.PROD
SHARE_OPERATIONS = ["DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom"]


def client(harness, account, service):
    return harness.world.sandbox.session(account, rehearsal.REGION).client(service)


def dev_sees_image(harness, image_id) -> bool:
    try:
        return bool(client(harness, DEV, "ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        return False


def dev_can_use_key(harness, key_arn) -> bool:
    try:
        client(harness, DEV, "kms").describe_key(KeyId=key_arn)
        return True
    except ClientError:
        return False


def dev_launch_runs(harness, image_id) -> bool:
    """A launch from ``image_id`` in dev keeps running: EC2 could use its key for dev
    (org-share statements allow the key only through EC2)."""
    ec2 = client(harness, DEV, "ec2")
    try:
        instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    except ClientError:
        return False
    return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def snapshot_of(harness, image_id) -> str:
    return client(harness, PROD, "ec2").describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def dev_sees_snapshot(harness, image_id) -> bool:
    try:
        return bool(client(harness, DEV, "ec2").describe_snapshots(SnapshotIds=[snapshot_of(harness, image_id)])["Snapshots"])
    except ClientError:
        return False


def grants(harness, key_arn) -> list[dict]:
    return client(harness, PROD, "kms").list_grants(KeyId=key_arn)["Grants"]


def launch_permissions(harness, image_id) -> list[dict]:
    return client(harness, PROD, "ec2").describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]


def key_policy(harness, key_arn) -> str:
    return client(harness, PROD, "kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]


def plan_text(message) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and b.get("text"))


def ask_and_approve(harness, text):
    """Ask, wait for the newest root message about it, approve, wait for the end."""
    before = len(harness.fake.messages(harness.channel))
    assert harness.slash(text).status == 200
    root = harness.fake.wait_for(lambda: next((m for m in harness.fake.messages(harness.channel)[before:] if " ".join(text.split()[:2]) in (m.get("text") or "") and not m.get("thread_ts")), None), 15)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    return root, final


@pytest.fixture(autouse=True)
def never_public(monkeypatch):
    """Every ModifyImageAttribute / ModifySnapshotAttribute made in a test (by the bot
    or the test itself), checked at the end: nothing ever named ``Group: all``."""
    from botocore.client import BaseClient

    seen: list[dict] = []
    lock = threading.Lock()
    real = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if operation_name in ("ModifyImageAttribute", "ModifySnapshotAttribute"):
            with lock:
                seen.append(json.loads(json.dumps(api_params, default=str)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield seen
    text = json.dumps(seen)
    assert '"Group"' not in text and '"all"' not in text, text


def test_unshare_removes_exactly_what_the_share_added(harness, never_public):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to dev allow-copy")
    share = harness.bot.store.get(1)
    grant_id = next(s.result["grant_id"] for s in share.steps if s.action == "kms.create_grant")
    assert dev_sees_image(harness, image) and dev_can_use_key(harness, cmk) and dev_sees_snapshot(harness, image)

    root, final = ask_and_approve(harness, f"unshare {image} from prod to dev")
    plan = harness.exact_changes(root)
    assert "remove launch permission" in plan and "added by R-1" in plan
    assert "createVolumePermission" in plan
    assert f"RevokeGrant" in plan and grant_id in plan and "made by R-1" in plan
    assert "not added by amibot" not in plan
    unshare = harness.bot.store.get(2)
    assert unshare.state == SUCCEEDED, final["text"]
    assert unshare.approvals == {"prod": rehearsal.OWNER}
    # From dev's side: nothing is left.
    assert not dev_sees_image(harness, image)
    assert not dev_can_use_key(harness, cmk)
    assert not dev_sees_snapshot(harness, image)
    assert grants(harness, cmk) == []
    assert launch_permissions(harness, image) == []
    # The share knows its changes were removed: nothing would be removed twice.
    assert all(s.state == STEP_UNDONE for s in harness.bot.store.get(1).steps if s.action.startswith(("ec2.add", "kms.create")))
    assert "R-1 now records these changes as removed" in final["text"]
    assert not any(p.get("Group") for p in launch_permissions(harness, image))


def test_unshare_of_an_active_time_boxed_share_ends_it_as_revoked(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to dev for 2h")
    assert harness.bot.store.get(1).state == ACTIVE
    root, final = ask_and_approve(harness, f"unshare {image} from prod to dev")
    assert harness.bot.store.get(2).state == SUCCEEDED, final["text"]
    share = harness.bot.store.get(1)
    assert share.state == REVOKED
    assert "removed by R-2" in harness.bot.store.events(1)[-1]["detail"]
    assert any("removed by R-2" in m["text"] for m in harness.fake.thread(harness.channel, harness.bot.store.get(1).root_ts))
    assert not dev_sees_image(harness, image) and not dev_can_use_key(harness, cmk)
    # The share's expiry comes and goes: nothing is revoked a second time.
    revokes = harness.world.sandbox.calls("RevokeGrant")
    harness.clock.advance(3 * 3600)
    harness.tick()
    assert harness.bot.store.get(1).state == REVOKED
    assert harness.world.sandbox.calls("RevokeGrant") == revokes


@pytest.fixture
def harness_with_qa(sandbox, fake_slack, tmp_path, clock):
    """The usual harness with a third account, ``qa``, in the config."""
    from offline.stack import offline_stack
    from tests.conftest import bot_options

    qa = '\n[accounts.qa]\nid = "333333333333"\nrole_arn = "arn:aws:iam::333333333333:role/amibot"\nowners = ["U0QA"]\n'
    options = bot_options(clock)
    del options["aws_max_attempts"]  # the bot's own budget
    with offline_stack(sandbox=sandbox, fake=fake_slack, db=str(tmp_path / "amibot.db"), toml=rehearsal.SANDBOX_TOML + qa, **options) as stack:
        yield stack


def test_unshare_one_of_two_targets_leaves_the_other_and_the_expiry_removes_only_the_rest(harness_with_qa):
    harness = harness_with_qa
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to dev,333333333333 for 2h")
    ask_and_approve(harness, f"unshare {image} from prod to dev")
    share = harness.bot.store.get(1)
    assert share.state == ACTIVE  # qa still has it
    launch_step = next(s for s in share.steps if s.action == "ec2.add_launch_permission")
    assert launch_step.state == STEP_DONE and launch_step.result["added"] == [{"UserId": "333333333333"}]
    assert launch_permissions(harness, image) == [{"UserId": "333333333333"}]
    assert [g["GranteePrincipal"] for g in grants(harness, cmk)] == ["arn:aws:iam::333333333333:root"]
    # At expiry the share removes only what is left: qa's launch permission and grant.
    harness.clock.advance(3 * 3600)
    harness.tick()
    assert harness.bot.store.get(1).state == REVOKED
    assert launch_permissions(harness, image) == [] and grants(harness, cmk) == []


def test_what_amibot_did_not_record_is_removed_or_kept_and_said(harness):
    """Launch permission added by hand is removed (unshare is explicit) and the plan
    says amibot did not add it; a grant named by amibot but unknown to its database
    (a lost database) is revoked; a grant amibot did not make is kept and listed."""
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    kms = client(harness, PROD, "kms")
    client(harness, PROD, "ec2").modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    lost = kms.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{DEV}:root", Operations=SHARE_OPERATIONS, Name=f"amibot-0123456789abcdef-{DEV}")["GrantId"]
    manual = kms.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{DEV}:root", Operations=["Decrypt"], Name="backup-restore")["GrantId"]
    root, final = ask_and_approve(harness, f"unshare {image} from prod to dev")
    plan = harness.exact_changes(root)
    assert "not added by amibot" in plan
    assert lost in plan and "not in its records" in plan
    assert f"Kept: grant `{manual}`" in plan and "not made by amibot" in plan
    assert harness.bot.store.get(1).state == SUCCEEDED, final["text"]
    assert [g["GrantId"] for g in grants(harness, cmk)] == [manual]
    assert not dev_sees_image(harness, image)


def test_a_grant_serving_another_ami_on_the_same_key_is_kept(harness):
    cmk = harness.world.cmk_arn
    first = harness.world.encrypted_image
    second = harness.world.sandbox.create_image(PROD, rehearsal.REGION, name="payments-worker", kms_key_arn=cmk)
    ask_and_approve(harness, f"share {first} from prod to dev")
    ask_and_approve(harness, f"share {second} from prod to dev")
    root, final = ask_and_approve(harness, f"unshare {first} from prod to dev")
    assert "belongs to R-2" in harness.exact_changes(root)
    assert harness.bot.store.get(3).state == SUCCEEDED, final["text"]
    assert not dev_sees_image(harness, first)
    assert dev_sees_image(harness, second) and dev_can_use_key(harness, cmk)  # the second share still works
    assert len(grants(harness, cmk)) == 1


def test_an_unshare_right_after_the_share_revokes_the_grant_listgrants_does_not_list_yet(harness):
    """ListGrants lags behind CreateGrant (eventual consistency): an unshare inside
    that window still revokes the grant amibot recorded, by its id, and names the
    grant another request made from the store."""
    cmk = harness.world.cmk_arn
    first = harness.world.encrypted_image
    second = harness.world.sandbox.create_image(PROD, rehearsal.REGION, name="payments-worker", kms_key_arn=cmk)
    # The window outlasts the test: the test clock is not moved, so every grant made
    # below stays unlisted to the bot, whatever the machine's speed.
    harness.world.sandbox.set_consistency_delay(24 * 3600)
    ask_and_approve(harness, f"share {first} from prod to dev")
    ask_and_approve(harness, f"share {second} from prod to dev")
    mine, other = (next(s.result["grant_id"] for s in harness.bot.store.get(n).steps if s.action == "kms.create_grant") for n in (1, 2))
    assert all(harness.world.sandbox.hidden(g) for g in (mine, other))
    text = f"unshare {first} from prod to dev"
    assert harness.slash(text).status == 200
    root = harness.fake.wait_for(lambda: next((m for m in harness.fake.messages(harness.channel) if " ".join(text.split()[:2]) in (m.get("text") or "") and not m.get("thread_ts")), None), 15)
    plan = harness.exact_changes(root)
    assert "RevokeGrant" in plan and mine in plan and "made by R-1" in plan
    assert f"Kept: grant `{other}`" in plan and "belongs to R-2" in plan
    assert "already gone" not in plan
    # Inside the window RevokeGrant answers NotFound too (the sandbox says so, and the
    # action asks again: tests/aws/test_consistency.py); here the window ends before
    # the run, so the revoke by id goes through.
    harness.world.sandbox.reveal(mine)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(3).state == SUCCEEDED, final["text"]
    assert [g["GrantId"] for g in grants(harness, cmk)] == [other]
    assert next(s for s in harness.bot.store.get(1).steps if s.action == "kms.create_grant").state == STEP_UNDONE


def test_a_recorded_grant_already_revoked_is_said_gone_by_revokegrant(harness):
    """A grant revoked by hand after the share: the plan still revokes it by id, and
    RevokeGrant's NotFound (not the listing) says it was already gone."""
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to dev")
    grant_id = next(s.result["grant_id"] for s in harness.bot.store.get(1).steps if s.action == "kms.create_grant")
    client(harness, PROD, "kms").revoke_grant(KeyId=cmk, GrantId=grant_id)
    # Past the KMS consistency window (inside it a NotFound is "not visible yet").
    harness.clock.advance(harness.bot.config.bot.consistency_window_seconds + 1)
    root, final = ask_and_approve(harness, f"unshare {image} from prod to dev")
    assert grant_id in harness.exact_changes(root)
    unshare = harness.bot.store.get(2)
    assert unshare.state == SUCCEEDED, final["text"]
    revoke = next(s for s in unshare.steps if s.action == "kms.revoke_grants")
    assert revoke.result["already_gone"] == [grant_id] and revoke.result["revoked"] == []
    assert grants(harness, cmk) == [] and not dev_can_use_key(harness, cmk)


def test_unshare_of_what_is_not_shared_is_refused_before_anyone_is_asked(harness):
    assert harness.slash(f"unshare {harness.world.encrypted_image} from prod to dev").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "is not shared with" in answer
    harness.settle()
    assert harness.bot.store.find() == []
    assert harness.fake.messages(harness.channel) == []


def test_unshare_org_removes_the_statement_and_restores_the_policy(harness, bot_aws_calls):
    from aws.iam import member_account_actions

    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    original = key_policy(harness, cmk)
    ask_and_approve(harness, f"share {image} from prod to org")
    assert dev_sees_image(harness, image) and dev_launch_runs(harness, image)
    root, final = ask_and_approve(harness, f"unshare {image} from prod to org")
    plan = harness.exact_changes(root)
    assert "PutKeyPolicy" in plan and "remove statement" in plan and "added by R-1" in plan
    assert "now (before)" in plan and "after" in plan
    assert harness.bot.store.get(2).state == SUCCEEDED, final["text"]
    assert not dev_sees_image(harness, image) and not dev_launch_runs(harness, image)
    assert launch_permissions(harness, image) == []
    # Semantically, and here even byte for byte: the policy is what it was.
    assert json.loads(key_policy(harness, cmk)) == json.loads(original)
    assert key_policy(harness, cmk) == original
    assert harness.bot.store.get(1).steps[1].state == STEP_UNDONE
    assert harness.bot.store.get(1).steps[2].state == STEP_UNDONE  # the CreateGrant statement
    made = {f"{service}:{operation}" for service, operation in bot_aws_calls}
    assert {"kms:GetKeyPolicy", "kms:PutKeyPolicy"} <= made
    assert made <= set(member_account_actions()) | {"sts:AssumeRole"}, sorted(made - set(member_account_actions()))


def test_unshare_org_keeps_changes_made_to_the_policy_meanwhile(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to {rehearsal.DEV_OU}")
    policy = json.loads(key_policy(harness, cmk))
    auditors = {"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/audit"}, "Action": "kms:DescribeKey", "Resource": "*"}
    policy["Statement"].append(auditors)
    client(harness, PROD, "kms").put_key_policy(KeyId=cmk, PolicyName="default", Policy=json.dumps(policy))
    ask_and_approve(harness, f"unshare {image} from prod to {rehearsal.DEV_OU}")
    after = json.loads(key_policy(harness, cmk))
    assert auditors in after["Statement"]
    assert not any(s.get("Sid", "").startswith("amibot-") for s in after["Statement"])
    assert not dev_can_use_key(harness, cmk)


@pytest.fixture
def dev_autoscaling(harness):
    """dev configured with ``autoscaling_grant = true``."""
    config = harness.bot.service.config
    dev = dataclasses.replace(config.accounts["dev"], autoscaling_grant=True)
    harness.bot.service.config = dataclasses.replace(config, accounts={**config.accounts, "dev": dev})
    return harness


def test_autoscaling_grant_is_made_by_the_target_and_unshare_revokes_it(dev_autoscaling, bot_aws_calls):
    from aws.iam import member_account_actions

    harness = dev_autoscaling
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    # Grants take a moment to spread: the target's CreateGrant must retry, not fail.
    harness.world.sandbox.set_grant_delay(0.3)
    root, final = ask_and_approve(harness, f"share {image} from prod to dev")
    assert "Auto Scaling" in harness.exact_changes(root) and autoscaling_role(DEV, "us-east-1") in harness.exact_changes(root)
    share = harness.bot.store.get(1)
    assert share.state == SUCCEEDED, final["text"]
    by_grantee = {g["GranteePrincipal"]: g for g in grants(harness, cmk)}
    asg = by_grantee[autoscaling_role(DEV, "us-east-1")]
    assert sorted(asg["Operations"]) == sorted(SHARE_OPERATIONS)
    assert asg["Name"] == f"amibot-{share.uid}-{DEV}-autoscaling"
    step = next(s for s in share.steps if s.action == "kms.create_autoscaling_grant")
    assert step.account_id == DEV  # made through the target's role
    assert step.seq > next(s.seq for s in share.steps if s.action == "kms.create_grant")
    harness.world.sandbox.set_grant_delay(0)

    root, final = ask_and_approve(harness, f"unshare {image} from prod to dev")
    assert "Auto Scaling role" in harness.exact_changes(root)
    assert harness.bot.store.get(2).state == SUCCEEDED, final["text"]
    assert grants(harness, cmk) == []  # both the share's grant and Auto Scaling's
    assert not dev_can_use_key(harness, cmk)
    # Every call made, in the source and through the target's role, is in the generated policy.
    made = {f"{service}:{operation}" for service, operation in bot_aws_calls}
    assert {"kms:CreateGrant", "kms:RevokeGrant", "kms:ListGrants"} <= made
    assert made <= set(member_account_actions()) | {"sts:AssumeRole"}, sorted(made - set(member_account_actions()))


def test_org_shares_of_two_amis_on_one_key_share_one_statement_pair_and_unshare_keeps_it_for_the_other(harness):
    """One key-policy statement per organisation (aws.actions.keypolicy): the second
    share adds none, and unsharing the first keeps the pair the second relies on."""
    cmk = harness.world.cmk_arn
    first = harness.world.encrypted_image
    second = harness.world.sandbox.create_image(PROD, rehearsal.REGION, name="payments-worker", kms_key_arn=cmk)
    ask_and_approve(harness, f"share {first} from prod to org")
    after_first = json.loads(key_policy(harness, cmk))["Statement"]
    ask_and_approve(harness, f"share {second} from prod to org")
    assert json.loads(key_policy(harness, cmk))["Statement"] == after_first  # nothing added
    root, final = ask_and_approve(harness, f"unshare {first} from prod to org")
    assert "also serves R-2" in harness.exact_changes(root)
    assert harness.bot.store.get(3).state == SUCCEEDED, final["text"]
    assert not dev_sees_image(harness, first)
    assert dev_launch_runs(harness, second)  # the second share still works
    assert json.loads(key_policy(harness, cmk))["Statement"] == after_first
