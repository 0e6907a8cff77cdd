"""The target side of an encrypted share: the target's own roles need IAM allowing the
source key too. amibot asks IAM (SimulatePrincipalPolicy) about the configured
``launch_roles`` before approval and in verification, and the final message carries
the policy to paste. The sandbox evaluates the roles' IAM when EC2 uses the key for
them, so the pasted policy is proven to be the missing half."""

from __future__ import annotations

import dataclasses
import json
import re

from offline import rehearsal
from bot.requests import SUCCEEDED

DEV, PROD, REGION = rehearsal.DEV, rehearsal.PROD, rehearsal.REGION
READY = f"arn:aws:iam::{DEV}:role/app-deployer"
LEGACY = f"arn:aws:iam::{DEV}:role/legacy-deployer"
RUN = {"Sid": "Run", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateTags", "ec2:DescribeInstances"], "Resource": "*"}


def with_launch_roles(harness, roles):
    config = harness.bot.service.config
    dev = dataclasses.replace(config.accounts["dev"], launch_roles=tuple(roles))
    harness.bot.service.config = dataclasses.replace(config, accounts={**config.accounts, "dev": dev})


def launch_as(harness, role_name, image_id) -> str:
    ec2 = harness.world.sandbox.role_session(DEV, role_name).client("ec2")
    instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    harness.world.sandbox.reveal(instance)  # about IAM, not eventual consistency (tests/aws/test_consistency.py)
    return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]


def pasted_policy(text: str) -> dict:
    block = re.search(r"```(.*?)```", text, re.S).group(1)
    return json.loads(block.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def statement_modal(harness, final: dict, user: str = rehearsal.REQUESTER) -> str:
    """Click *View IAM statement* on the final reply (results first: the statement is
    behind it, not in the text) and return the modal's text."""
    assert "Attach this policy" not in final["text"] and any(
        e.get("action_id") == "amibot_view_statement" for b in final.get("blocks") or [] if b["type"] == "actions" for e in b["elements"])
    seen = set(harness.fake.views)
    harness.slack.click(user, harness.channel, final["ts"], "amibot_view_statement", final["text"].split(" is done")[0].split()[-1])
    view = harness.fake.wait_for(lambda: next((v for k, v in harness.fake.views.items() if k not in seen and v.get("callback_id") == "amibot_iam_statement"), None))
    return "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")


def test_launch_roles_are_asked_of_iam_and_the_final_message_says_what_they_need(harness):
    from aws.actions.launchroles import required_statement

    sandbox, cmk, image = harness.world.sandbox, harness.world.cmk_arn, harness.world.encrypted_image
    ready_policy = required_statement([cmk], REGION)
    ready_policy["Statement"].append(RUN)
    sandbox.attach_role_policy(DEV, "app-deployer", ready_policy)
    sandbox.attach_role_policy(DEV, "legacy-deployer", {"Version": "2012-10-17", "Statement": [RUN]})
    with_launch_roles(harness, [READY, LEGACY])

    assert harness.slash(f"share {image} from prod to dev").status == 200
    root = harness.root_for(image)
    plan = harness.exact_changes(root)
    assert f"`{READY}`: can launch it" in plan
    assert f"`{LEGACY}`: *cannot launch it yet*" in plan and f"kms:Decrypt on {cmk}" in plan
    assert "verify.launch_roles" not in plan and "SimulatePrincipalPolicy" in plan

    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED, final["text"]
    text = final["text"]
    assert f"`{READY}`: can launch it" in text and "`/ami status R-1`" in text
    assert f"`{LEGACY}`: *cannot launch it yet*" in text
    text += statement_modal(harness, final)
    policy = pasted_policy(text)
    assert policy == required_statement([cmk], REGION)
    assert all(cmk in s["Resource"] for s in policy["Statement"])

    # The sandbox agrees with IAM's answers: the grant to dev alone does not let the
    # legacy role launch (its instance dies at once), and the pasted policy is the fix.
    assert launch_as(harness, "app-deployer", image) == "running"
    assert launch_as(harness, "legacy-deployer", image) == "terminated"
    pasted = pasted_policy(text)
    pasted["Statement"].append(RUN)
    sandbox.attach_role_policy(DEV, "legacy-deployer", pasted)
    assert launch_as(harness, "legacy-deployer", image) == "running"


def test_without_launch_roles_the_final_message_still_has_the_statement(harness):
    cmk, image = harness.world.cmk_arn, harness.world.encrypted_image
    assert harness.slash(f"share {image} from prod to dev").status == 200
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    harness.settle()
    assert cmk in pasted_policy(statement_modal(harness, final))["Statement"][0]["Resource"]
    # Authorised like every click: someone who may not read the request gets no statement.
    views = len(harness.fake.views)
    harness.slack.click(rehearsal.STRANGER, harness.channel, final["ts"], "amibot_view_statement", "R-1")
    assert "details are shown only" in harness.ephemeral_for(rehearsal.STRANGER) and len(harness.fake.views) == views
    status = harness.slash("status R-1").json()["text"]  # and it stays in /ami status
    assert cmk in pasted_policy(status)["Statement"][0]["Resource"]
    assert not any(s.action == "verify.launch_roles" for s in harness.bot.store.get(1).steps)


def test_an_unencrypted_share_needs_no_statement(harness):
    image = harness.world.plain_image
    assert harness.slash(f"share {image} from prod to dev").status == 200
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    final = harness.final_reply(root)
    assert "Attach this policy" not in final["text"] and "View IAM statement" not in str(final.get("blocks"))
