"""`/ami share` end to end over the real HTTP endpoint, signed as Slack signs,
against the sandbox; every AWS effect checked from the target account's side."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from offline import rehearsal
from tests.conftest import has_decision_buttons
from bot.requests import APPROVED, DENIED, PENDING_APPROVAL, SUCCEEDED

DEV, PROD = rehearsal.DEV, rehearsal.PROD


def dev_client(harness, service):
    return harness.world.sandbox.session(DEV, rehearsal.REGION).client(service)


def dev_sees_image(harness, image_id) -> bool:
    try:
        return bool(dev_client(harness, "ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError:
        return False


def dev_can_use_key(harness, key_arn) -> bool:
    try:
        dev_client(harness, "kms").describe_key(KeyId=key_arn)
        return True
    except ClientError:
        return False


def dev_sees_snapshot(harness, image_id) -> bool:
    prod_ec2 = harness.world.sandbox.session(PROD, rehearsal.REGION).client("ec2")
    snapshot = prod_ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    try:
        return bool(dev_client(harness, "ec2").describe_snapshots(SnapshotIds=[snapshot])["Snapshots"])
    except ClientError:
        return False


def share_and_approve(harness, text, approver=rehearsal.OWNER):
    result = harness.slash(text)
    assert result.status == 200
    root = harness.root_for(text.split()[1])
    harness.click(approver, root)
    final = harness.final_reply(root)
    harness.settle()
    return root, final


def test_share_encrypted_ami_happy_path(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    assert not dev_sees_image(harness, image) and not dev_can_use_key(harness, cmk)

    result = harness.slash(f"share {image} from prod to dev")
    assert result.status == 200
    assert "Checking" in result.json()["text"]
    root = harness.root_for(image)
    plan = harness.exact_changes(root)
    assert "ModifyImageAttribute" in plan and "CreateGrant" in plan
    assert f"arn:aws:iam::{DEV}:root" in plan
    for operation in ("DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom"):
        assert operation in plan
    assert "ModifySnapshotAttribute" not in plan  # no allow-copy: no snapshot permission
    assert has_decision_buttons(root)
    assert harness.bot.store.get(1).state == PENDING_APPROVAL

    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert f"<@{rehearsal.REQUESTER}>" in final["text"]
    request = harness.bot.store.get(1)
    assert request.state == SUCCEEDED
    assert request.approvals == {"prod": rehearsal.OWNER}
    thread = harness.fake.thread(harness.channel, root["ts"])
    # A quiet thread: the approval, one progress message edited in place, the final message.
    assert len(thread) == 3, [m["text"] for m in thread]
    assert all("R-1" in m["text"] for m in thread)
    progress = thread[1]
    assert progress["edited"] and not progress["reply_broadcast"]
    assert progress["text"].count(":white_check_mark:") == len(request.steps) == 3
    assert "1. [prod] ModifyImageAttribute" in progress["text"] and "grant id `" in progress["text"]
    # The root message is current and has lost its buttons.
    updated = harness.fake.message(harness.channel, root["ts"])
    assert not has_decision_buttons(updated)
    assert "done" in updated["text"]
    # From dev's side: it can see the AMI and use the key, but cannot copy the data out.
    assert dev_sees_image(harness, image)
    assert dev_can_use_key(harness, cmk)
    assert not dev_sees_snapshot(harness, image)
    # The grant is exactly what design.md lists, under the deterministic name.
    grants = harness.world.sandbox.session(PROD, rehearsal.REGION).client("kms").list_grants(KeyId=cmk)["Grants"]
    assert len(grants) == 1
    assert grants[0]["GranteePrincipal"] == f"arn:aws:iam::{DEV}:root"
    assert sorted(grants[0]["Operations"]) == sorted(["DescribeKey", "CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom"])
    assert grants[0]["Name"] == f"amibot-{request.uid}-{DEV}"


def test_role_sessions_are_named_after_the_request(harness):
    names = []
    real_assume = harness.bot.sessions.session

    def spy(account_id, tag="bot"):
        names.append(tag)
        return real_assume(account_id, tag)

    harness.bot.sessions.session = spy
    share_and_approve(harness, f"share {harness.world.plain_image} from prod to dev")
    request = harness.bot.store.get(1)
    assert f"R-1-{request.uid}" in names


def test_allow_copy_adds_snapshot_permission(harness):
    image = harness.world.encrypted_image
    root, final = share_and_approve(harness, f"share {image} from prod to dev allow-copy")
    assert "ModifySnapshotAttribute" in harness.exact_changes(root)
    assert dev_sees_snapshot(harness, image)


def test_unencrypted_share_needs_no_grant(harness):
    image = harness.world.plain_image
    root, final = share_and_approve(harness, f"share {image} from prod to dev")
    assert "CreateGrant" not in harness.exact_changes(root)
    assert dev_sees_image(harness, image)


def test_aws_managed_key_is_refused_before_anyone_is_asked(harness):
    image = harness.world.aws_managed_image
    result = harness.slash(f"share {image} from prod to dev")
    assert result.status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "aws/ebs" in answer and "/ami copy" in answer and "kms" in answer
    harness.settle()
    assert harness.fake.messages(harness.channel) == []  # nobody was asked
    assert harness.bot.store.find() == []
    assert not dev_sees_image(harness, image)


def test_a_source_key_without_the_root_statement_is_refused_before_anyone_is_asked(harness):
    """Every key obeys its own policy: a key whose policy names only its
    administrators (no statement for the account's root, so IAM cannot delegate)
    refuses amibot's own role too. A CreateGrant DryRun before approval says so,
    instead of a share that fails after the owners approved it."""
    prod = harness.world.sandbox
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "KeyAdministrators", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/kms-admin"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "ReadForEveryone", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}, "Action": ["kms:Describe*", "kms:List*", "kms:Get*"], "Resource": "*"},
    ]}
    cmk = prod.create_key(PROD, rehearsal.REGION, policy=json.dumps(policy))
    image = prod.create_image(PROD, rehearsal.REGION, name="locked-key", kms_key_arn=cmk)
    assert harness.slash(f"share {image} from prod to dev").status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER)
    assert "may not create grants" in answer and "AccessDeniedException" in answer and f"arn:aws:iam::{PROD}:root" in answer
    harness.settle()
    assert harness.fake.messages(harness.channel) == [] and harness.bot.store.find() == []


@pytest.mark.parametrize(
    "body_change, header_change",
    [
        (lambda body: body, lambda headers: {**headers, "X-Slack-Signature": "v0=" + "0" * 64}),
        (lambda body: body.replace(b"prod", b"dev"), lambda headers: headers),  # tampered body
        (lambda body: body, None),  # stale timestamp
    ],
)
def test_bad_signatures_get_401_and_change_nothing(harness, body_change, header_change):
    body = urllib.parse.urlencode({
        "command": "/ami", "text": f"share {harness.world.plain_image} from prod to dev", "user_id": rehearsal.REQUESTER,
        "channel_id": harness.channel, "team_id": "T0SANDBOX", "response_url": harness.fake.new_response_url(),
    }).encode()
    if header_change is None:
        headers = harness.slack.sign(body, timestamp=int(time.time()) - 6 * 60)
    else:
        headers = header_change(harness.slack.sign(body))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    result = harness.slack.post_raw(body_change(body), headers)
    assert result.status == 401
    harness.settle()
    assert harness.bot.store.find() == []
    assert harness.fake.calls_to("chat.postMessage") == []


def test_click_by_non_owner_changes_nothing(harness):
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.click(rehearsal.STRANGER, root)
    note = harness.ephemeral_for(rehearsal.STRANGER)
    assert "Only an owner of `prod`" in note and "Nothing was changed" in note
    harness.settle()
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    assert not dev_sees_image(harness, image)
    # The dev owner is not an owner of the source account either.
    harness.click(rehearsal.DEV_OWNER, root)
    assert "Only an owner of `prod`" in harness.ephemeral_for(rehearsal.DEV_OWNER)
    assert harness.bot.store.get(1).state == PENDING_APPROVAL


def test_requester_cannot_approve_own_request(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev", user=rehearsal.OWNER)  # Alice owns prod
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    assert "you cannot approve it" in harness.ephemeral_for(rehearsal.OWNER)
    harness.settle()
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    harness.click("U0CAROL", root)  # Carol owns prod through the S0PLATFORM group
    harness.final_reply(root)
    assert harness.bot.store.get(1).approvals == {"prod": "U0CAROL"}


def test_request_nobody_could_approve_is_refused_at_once(harness):
    # dev's only owner asks to share from dev: nobody else could approve.
    result = harness.slash(f"share {harness.world.plain_image} from dev to prod", user=rehearsal.DEV_OWNER)
    assert result.status == 200
    answer = harness.ephemeral_for(rehearsal.DEV_OWNER)
    assert "Nobody but you could approve" in answer and "allow_self_approval" in answer
    harness.settle()
    assert harness.bot.store.find() == []


def test_double_click_executes_once(harness):
    image, cmk = harness.world.encrypted_image, harness.world.cmk_arn
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    barrier = threading.Barrier(8)

    def click(user):
        barrier.wait()
        harness.click(user, root)

    threads = [threading.Thread(target=click, args=(u,)) for u in [rehearsal.OWNER] * 4 + ["U0CAROL"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    harness.final_reply(root)
    harness.settle()
    request = harness.bot.store.get(1)
    assert request.state == SUCCEEDED
    assert len([a for a in harness.bot.store.events(1) if a["to_state"] == APPROVED]) == 1
    grants = harness.world.sandbox.session(PROD, rehearsal.REGION).client("kms").list_grants(KeyId=cmk)["Grants"]
    assert len(grants) == 1
    finals = [m for m in harness.fake.thread(harness.channel, root["ts"]) if m.get("reply_broadcast")]
    assert len(finals) == 1
    late_notes = [e for e in harness.fake.ephemerals() if "already" in e.get("text", "")]
    assert late_notes, "late clickers are told who decided"


def test_deny_changes_nothing_in_aws(harness):
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root, action="amibot_deny")
    form = harness.fake.wait_for(lambda: harness.fake.calls_to("views.open"))[0].params["view"]
    assert form["private_metadata"] == "R-1" and form["callback_id"] == "amibot_deny_reason"
    assert harness.bot.store.get(1).state == PENDING_APPROVAL  # nothing decided until the form is sent
    result = harness.slack.submit_view(rehearsal.OWNER, "amibot_deny_reason", {"reason": {"reason": "Not before the <security> review"}})
    assert result.status == 200
    final = harness.final_reply(root)
    assert "denied" in final["text"] and f"<@{rehearsal.REQUESTER}>" in final["text"]
    assert "Reason: Not before the &lt;security&gt; review" in final["text"]
    harness.settle()
    assert harness.bot.store.get(1).state == DENIED
    assert not dev_sees_image(harness, image)
    assert not has_decision_buttons(harness.fake.message(harness.channel, root["ts"]))
    harness.click("U0CAROL", root)  # a late approve
    assert "already denied" in harness.ephemeral_for("U0CAROL")
    assert not dev_sees_image(harness, image)


def test_status_list_help_and_usage(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    harness.root_for(image)
    assert "R-1" in harness.slash("status R-1").json()["text"]
    assert "R-1" in harness.slash("list pending").json()["text"]
    assert "share" in harness.slash("help").json()["text"]
    bad = harness.slash("share ami-12 from prod to dev").json()["text"]
    assert "ami-12" in bad and "Usage" in bad
    unknown = harness.slash("status R-99").json()["text"]
    assert "R-99" in unknown


def test_private_channel_the_bot_is_not_in(harness):
    result = harness.slash(f"share {harness.world.plain_image} from prod to dev", channel="G0PRIVATE")
    assert result.status == 200
    answer = harness.ephemeral_for(rehearsal.REQUESTER, after=0)
    harness.fake.wait_for(lambda: any("/invite" in e.get("text", "") for e in harness.fake.ephemerals(rehearsal.REQUESTER)))


def test_healthz(harness):
    import urllib.request

    with urllib.request.urlopen(harness.url + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read())["ok"] is True


def test_every_aws_call_of_a_share_is_covered_by_the_generated_policy(harness, bot_aws_calls):
    from aws.iam import member_account_actions

    share_and_approve(harness, f"share {harness.world.encrypted_image} from prod to dev allow-copy")
    allowed = set(member_account_actions()) | {"sts:AssumeRole"}
    made = {f"{service}:{operation}" for service, operation in bot_aws_calls}
    assert made, "no AWS calls were recorded"
    assert made <= allowed, f"calls not in the generated policy: {sorted(made - allowed)}"


def test_deny_by_a_non_owner_opens_no_form(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.click(rehearsal.STRANGER, root, action="amibot_deny")
    assert "Only an owner of `prod`" in harness.ephemeral_for(rehearsal.STRANGER)
    assert harness.fake.calls_to("views.open") == []
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
