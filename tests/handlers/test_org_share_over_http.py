"""`/ami share … to org|<ou-id>` end to end over the real HTTP endpoint, against the
sandbox (which evaluates key policies with aws:PrincipalOrgID / aws:PrincipalOrgPaths);
every AWS effect checked from a member account's side."""

from __future__ import annotations

import dataclasses
import json

import pytest
from botocore.exceptions import ClientError

from offline import rehearsal
from bot.verbs.share import plan as share_operation
from bot.requests import FAILED, SUCCEEDED
from offline.scenarios.stage import blocks_text

DEV, PROD = rehearsal.DEV, rehearsal.PROD
OUTSIDER_OU = "333333333333"  # in the organization, in another OU
STRANGER_ACCOUNT = "444444444444"  # not in the organization
CRYPTO_ACTIONS = ["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom"]


def client(harness, account, service):
    return harness.world.sandbox.session(account, rehearsal.REGION).client(service)


def sees_image(harness, account, image_id) -> bool:
    try:
        return bool(client(harness, account, "ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        return False


def can_use_key(harness, account, key_arn) -> bool:
    """EC2 can use the key for the account: a launch from the rehearsal's AMI encrypted
    with it keeps running (the org statements allow the key only through EC2, so a
    direct KMS call is no evidence either way)."""
    assert key_arn == harness.world.cmk_arn
    try:
        return launch_state(harness, account, harness.world.encrypted_image) == "running"
    except ClientError:
        return False


def mints_grant(harness, account, key_arn) -> bool:
    """The member calls CreateGrant itself, for an outside account, with operations
    a launch never needs."""
    try:
        client(harness, account, "kms").create_grant(
            KeyId=key_arn, GranteePrincipal=f"arn:aws:iam::{STRANGER_ACCOUNT}:root", Operations=["Encrypt", "ReEncryptTo", "CreateGrant"]
        )
        return True
    except ClientError:
        return False


def launch_state(harness, account, image_id) -> str:
    """Launch from ``account`` as Auto Scaling would: the sandbox terminates an
    instance whose volumes the account cannot decrypt (Client.InternalError)."""
    instance = client(harness, account, "ec2").run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    return client(harness, account, "ec2").describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]["Name"]


def key_policy(harness, key_arn) -> str:
    return client(harness, PROD, "kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]


def launch_permissions(harness, image_id) -> list[dict]:
    return client(harness, PROD, "ec2").describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]


def ask_and_approve(harness, text):
    assert harness.slash(text).status == 200
    root = harness.root_for(text.split()[1])
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    return root, final


@pytest.fixture
def org(harness):
    """The rehearsal organisation plus an account in another OU and one outside it."""
    sandbox = harness.world.sandbox
    sandbox.configure_organization(members={PROD: "ou-sbx1-platform", DEV: rehearsal.DEV_OU, OUTSIDER_OU: "ou-sbx1-finance"})
    return sandbox


def test_org_share_of_an_encrypted_ami_end_to_end(harness, org):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    policy_before = key_policy(harness, cmk)
    assert not sees_image(harness, DEV, image) and not can_use_key(harness, DEV, cmk)

    assert harness.slash(f"share {image} from prod to org").status == 200
    root = harness.root_for(image)
    plan = harness.exact_changes(root)  # the fake refuses a modal over Block Kit's limits
    assert "OrganizationArn" in plan or f"organization/{rehearsal.ORG_ID}" in plan
    assert "PutKeyPolicy" in plan and "aws:PrincipalOrgID" in plan
    assert "before" in plan and "after" in plan and '"Enable IAM User Permissions"' in plan  # the whole policy is shown
    assert "launch the AMI but not copy it" in plan
    assert all(len(b["text"]["text"]) <= 3000 for b in root["blocks"] if b["type"] == "section" and b.get("text"))
    assert len(blocks_text(root).splitlines()) <= 16  # the card stays compact (header, 6 fields, risk, approvals, buttons, small print)

    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    request = harness.bot.store.get(1)
    assert request.state == SUCCEEDED, final["text"]
    assert launch_permissions(harness, image) == [{"OrganizationArn": f"arn:aws:organizations::123456789012:organization/{rehearsal.ORG_ID}"}]
    # From the members' side: they see the AMI, can use the key and launch.
    for member in (DEV, OUTSIDER_OU):
        assert sees_image(harness, member, image) and can_use_key(harness, member, cmk)
    assert launch_state(harness, DEV, image) == "running"
    # Outside the organisation: nothing.
    assert not sees_image(harness, STRANGER_ACCOUNT, image) and not can_use_key(harness, STRANGER_ACCOUNT, cmk)
    # The statement is exactly what design.md asks for; the rest of the policy is untouched.
    after = json.loads(key_policy(harness, cmk))
    added = [s for s in after["Statement"] if s.get("Sid") == f"amibot-{rehearsal.ORG_ID}"]
    grants = [s for s in after["Statement"] if s.get("Sid") == f"amibot-grant-{rehearsal.ORG_ID}"]
    assert len(added) == 1 and len(grants) == 1
    assert added[0]["Principal"] == {"AWS": "*"} and sorted(added[0]["Action"]) == sorted(CRYPTO_ACTIONS)
    assert added[0]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": rehearsal.ORG_ID, "kms:ViaService": f"ec2.{rehearsal.REGION}.amazonaws.com"}}
    assert grants[0]["Action"] == ["kms:CreateGrant"]
    assert grants[0]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": rehearsal.ORG_ID}, "Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert [s for s in after["Statement"] if s is not added[0] and s is not grants[0]] == json.loads(policy_before)["Statement"]
    # A member can launch, but not mint grants of its own (for anyone, with anything).
    assert not mints_grant(harness, DEV, cmk)
    # No grant can name an organisation, none was made; nothing can be copied.
    assert client(harness, PROD, "kms").list_grants(KeyId=cmk)["Grants"] == []
    snapshot = request.facts["image"]["snapshot_ids"][0]
    assert client(harness, PROD, "ec2").describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")["CreateVolumePermissions"] == []


def test_ou_share_reaches_only_that_ou(harness, org):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    root, final = ask_and_approve(harness, f"share {image} from prod to {rehearsal.DEV_OU}")
    assert "aws:PrincipalOrgPaths" in harness.exact_changes(root)
    assert harness.bot.store.get(1).state == SUCCEEDED, final["text"]
    assert launch_permissions(harness, image) == [{"OrganizationalUnitArn": f"arn:aws:organizations::123456789012:ou/{rehearsal.ORG_ID}/{rehearsal.DEV_OU}"}]
    assert sees_image(harness, DEV, image) and can_use_key(harness, DEV, cmk)
    assert launch_state(harness, DEV, image) == "running"
    # Same organisation, another OU: neither the image nor the key.
    assert not sees_image(harness, OUTSIDER_OU, image) and not can_use_key(harness, OUTSIDER_OU, cmk)
    statement = next(s for s in json.loads(key_policy(harness, cmk))["Statement"] if s.get("Sid", "").startswith("amibot-"))
    assert statement["Condition"]["ForAnyValue:StringLike"] == {"aws:PrincipalOrgPaths": [f"{rehearsal.ORG_ID}/r-*/{rehearsal.DEV_OU}/*"]}


def test_safety_without_the_key_policy_step_members_cannot_use_the_key(harness, org, monkeypatch):
    """The control for the test above: with the key-policy step removed from the plan,
    a member sees the AMI but cannot use its key, and its instances die at launch.
    So the end-to-end test fails if the step goes missing."""
    real = share_operation.prepare_org_share

    def without_key_policy(*args, **kwargs):
        prepared = real(*args, **kwargs)
        prepared.steps = [s for s in prepared.steps if s.action != "kms.add_key_policy_statement"]
        return prepared

    monkeypatch.setattr(share_operation, "prepare_org_share", without_key_policy)
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    ask_and_approve(harness, f"share {image} from prod to org")
    assert harness.bot.store.get(1).state == SUCCEEDED
    assert sees_image(harness, DEV, image)
    assert not can_use_key(harness, DEV, cmk)
    assert launch_state(harness, DEV, image) == "terminated"


def test_org_share_refused_without_organization_config(harness):
    harness.bot.service.config = dataclasses.replace(harness.bot.service.config, organization=None)
    assert harness.slash(f"share {harness.world.encrypted_image} from prod to org").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "[organization]" in answer and "management_account" in answer
    harness.settle()
    assert harness.bot.store.find() == []


def test_allow_copy_is_refused_for_an_organization(harness):
    answer = harness.slash(f"share {harness.world.encrypted_image} from prod to org allow-copy").json()["text"]
    assert "allow-copy" in answer
    harness.settle()
    assert harness.bot.store.find() == []


def test_a_key_policy_changed_after_approval_is_not_overwritten(harness, org):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    assert harness.slash(f"share {image} from prod to org").status == 200
    root = harness.root_for(image)
    # Someone edits the key policy while the request waits for approval.
    edited = json.loads(key_policy(harness, cmk))
    edited["Statement"].append({"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/audit"}, "Action": "kms:DescribeKey", "Resource": "*"})
    client(harness, PROD, "kms").put_key_policy(KeyId=cmk, PolicyName="default", Policy=json.dumps(edited))
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == FAILED
    assert "changed" in final["text"]
    assert json.loads(key_policy(harness, cmk)) == edited  # not overwritten
    assert launch_permissions(harness, image) == []  # the launch permission was undone
    assert not sees_image(harness, DEV, image)


def test_a_long_key_policy_is_summarised_within_slack_limits(harness, org):
    cmk = harness.world.cmk_arn
    policy = json.loads(key_policy(harness, cmk))
    for n in range(40):
        policy["Statement"].append({"Sid": f"Team{n}", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/team-{n}-deployer"}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
    client(harness, PROD, "kms").put_key_policy(KeyId=cmk, PolicyName="default", Policy=json.dumps(policy))
    assert harness.slash(f"share {harness.world.encrypted_image} from prod to org").status == 200
    root = harness.root_for(harness.world.encrypted_image)
    sections = [b["text"]["text"] for b in root["blocks"] if b["type"] == "section" and b.get("text")]
    assert all(len(s) <= 3000 for s in sections) and len(root["blocks"]) <= 50
    plan = harness.exact_changes(root)  # opened only if within Block Kit's limits (the fake checks)
    assert "too long for a Slack section" in plan and "sha256" in plan
    assert "`Team0`" in plan  # the statements are listed
    assert "aws:PrincipalOrgID" in plan and "plus these statements" in plan  # the added statements in full
    assert "kms:GrantIsForAWSResource" in plan and "kms:ViaService" in plan
    # The full texts are kept with the request.
    assert json.loads(harness.bot.store.get(1).facts["key_policies"][cmk]["before"]) == policy


def test_a_key_not_marked_for_org_sharing_is_refused_before_approval(harness, org):
    """amibot's role may PutKeyPolicy only on keys tagged amibot:org-share=true: the
    preflight says so (and how to tag it) instead of failing after approval."""
    cmk = harness.world.cmk_arn
    client(harness, PROD, "kms").untag_resource(KeyId=cmk, TagKeys=["amibot:org-share"])
    before = key_policy(harness, cmk)
    assert harness.slash(f"share {harness.world.encrypted_image} from prod to org").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "not marked for organisation sharing" in answer and "aws kms tag-resource" in answer and "amibot:org-share" in answer
    harness.settle()
    assert harness.bot.store.find() == [] and key_policy(harness, cmk) == before


def test_a_key_policy_that_would_exceed_32_kib_is_refused_before_approval(harness, org):
    cmk = harness.world.cmk_arn
    policy = json.loads(key_policy(harness, cmk))
    policy["Statement"].append({"Sid": "Padding", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"},
                                "Action": "kms:DescribeKey", "Resource": "*",
                                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x" * 31500}}})
    client(harness, PROD, "kms").put_key_policy(KeyId=cmk, PolicyName="default", Policy=json.dumps(policy))
    assert harness.slash(f"share {harness.world.encrypted_image} from prod to org").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "32,768 bytes" in answer and "Remove statements" in answer
    harness.settle()
    assert harness.bot.store.find() == []
