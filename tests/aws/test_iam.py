"""``amibot iam-policy``: valid IAM policies for the bot's role and the member-account
role, generated from what the actions declare."""

from __future__ import annotations

import json
import re

import pytest

from aws.actions import ACTIONS, PREFLIGHT_PERMISSIONS, SHARE_GRANT_OPERATIONS
from aws.iam import KMS_USED_THROUGH_EC2, member_account_actions
from offline import rehearsal
from bot.cli import main

IAM_ACTION = re.compile(r"^(ec2|kms|sts|iam):[A-Z][A-Za-z]+$")


def printed_policies(capsys, argv: list[str]) -> dict[str, dict]:
    """Run the CLI and split its output into {heading: policy}."""
    assert main(argv) == 0
    out = capsys.readouterr().out
    policies: dict[str, dict] = {}
    heading, lines = None, []
    for line in out.splitlines() + ["# end"]:
        if line.startswith("# "):
            if heading is not None:
                policies[heading] = json.loads("\n".join(lines))
            heading, lines = line[2:], []
        else:
            lines.append(line)
    return policies


def member_role(policies: dict[str, dict]) -> dict:
    """What the member role holds in an account without retire: amibot-member plus,
    when printed, amibot-migrate (statements of both, as IAM evaluates them)."""
    statements = [s for h, p in policies.items() if h.startswith("Member-account role, policy") for s in p["Statement"]]
    return {"Version": "2012-10-17", "Statement": statements}


def check_policy_document(policy: dict) -> None:
    """The shape IAM accepts: version, statements with unique alphanumeric Sids,
    Allow only, explicit actions (no wildcards), resources."""
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and all(IAM_ACTION.match(a) for a in statement["Action"]), statement["Action"]
        assert statement["Resource"]
    assert len(json.dumps(policy, separators=(",", ":"))) <= 6144, "the managed-policy size limit"


def test_iam_policy_prints_both_policies_as_valid_json(capsys):
    policies = printed_policies(capsys, ["iam-policy"])

    assert [h.split(" — ")[0] for h in policies] == [
        "Bot role (where amibot runs)", "Member-account role, policy amibot-member (in every account in the config)",
        "Member-account role, policy amibot-migrate (in every account where instances may be migrated: migrate = true; its only iam:PassRole)"]
    bot = next(p for h, p in policies.items() if h.startswith("Bot role"))
    for policy in policies.values():
        check_policy_document(policy)
    check_policy_document(member_role(policies))
    assert [a for s in bot["Statement"] for a in s["Action"]] == ["sts:AssumeRole"]


def test_member_policy_covers_every_declared_permission(capsys):
    policies = printed_policies(capsys, ["iam-policy"])
    member = member_role(policies)
    allowed = {a for s in member["Statement"] for a in s["Action"]}

    for name, action in ACTIONS.items():
        if type(action).__module__ == "aws.actions.retire":
            continue  # Retire's own statements: only for accounts with retire = true (test_actions_permissions)
        missing = set(action.permissions) - allowed
        assert not missing, f"{name} needs {sorted(missing)}"
    assert set(PREFLIGHT_PERMISSIONS) <= allowed
    assert allowed == set(member_account_actions())


def test_test_launch_permissions_are_in_the_member_policy(capsys):
    policies = printed_policies(capsys, ["iam-policy"])
    member = member_role(policies)
    allowed = {a for s in member["Statement"] for a in s["Action"]}
    assert {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeInstanceStatus", "ec2:CreateTags"} <= allowed


def test_kms_data_key_operations_only_through_ec2(capsys):
    """The role never needs to decrypt anything itself: EBS does, on its behalf, when
    it launches from or copies an encrypted AMI."""
    policies = printed_policies(capsys, ["iam-policy"])
    member = member_role(policies)
    for statement in member["Statement"]:
        used_through_ec2 = set(statement["Action"]) & KMS_USED_THROUGH_EC2
        if used_through_ec2:
            assert set(statement["Action"]) <= KMS_USED_THROUGH_EC2
            assert statement["Condition"] == {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}
    assert "kms:Decrypt" in {a for s in member["Statement"] for a in s["Action"]}, "launching/copying encrypted AMIs needs it"
    assert not any(a == "kms:Encrypt" or a.endswith("*") for s in member["Statement"] for a in s["Action"])


def test_bot_role_policy_names_the_configured_roles(capsys, tmp_path, monkeypatch):
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "amibot.toml"
    config.write_text(rehearsal.SANDBOX_TOML)

    policies = printed_policies(capsys, ["iam-policy", "--config", str(config)])

    bot = next(p for h, p in policies.items() if h.startswith("Bot role"))
    assert bot["Statement"][0]["Resource"] == sorted(
        [f"arn:aws:iam::{rehearsal.PROD}:role/amibot", f"arn:aws:iam::{rehearsal.DEV}:role/amibot"]
    )


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_declared_permission_is_an_iam_action_name(action):
    for permission in ACTIONS[action].permissions:
        assert IAM_ACTION.match(permission), f"{action}: {permission}"


def _statements_with(policy: dict, action: str) -> list[dict]:
    return [s for s in policy["Statement"] if action in s["Action"]]


def test_every_risky_action_is_allowed_only_under_its_condition(capsys):
    """Least privilege that holds when evaluated (tests/offline/test_iam_enforcement.py
    shows the sandbox refusing each call outside its condition)."""
    member = member_role(printed_policies(capsys, ["iam-policy"]))
    expected = {
        "ec2:TerminateInstances": {"StringEquals": {"aws:ResourceTag/amibot:disposable": "true"}},
        "ec2:DeregisterImage": {"StringEquals": {"aws:ResourceTag/amibot:disposable": "true"}},
        "ec2:DeleteSnapshot": {"StringEquals": {"aws:ResourceTag/amibot:disposable": "true"}},
        "ec2:ModifyLaunchTemplate": {"StringEquals": {"aws:ResourceTag/amibot:update-lt": "true"}},
        "iam:PassRole": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        "kms:PutKeyPolicy": {"StringEquals": {"aws:ResourceTag/amibot:org-share": "true"}},
    }
    for action, condition in expected.items():
        found = _statements_with(member, action)
        assert [s["Condition"] for s in found] == [condition], action
    # Tags: inside the create calls, or (`/ami tag`) never with amibot's own keys.
    assert [(s["Resource"], s["Condition"]) for s in _statements_with(member, "ec2:CreateTags")] == [
        (["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"], {"StringEquals": {"ec2:CreateAction": ["CopyImage", "CreateImage"]}}),
        (["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"], {"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
        (["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"], {"ForAllValues:StringNotLike": {"aws:TagKeys": ["amibot:*"]}, "Null": {"aws:TagKeys": "false"}}),
    ]
    assert [s["Condition"] for s in _statements_with(member, "ec2:DeleteTags")] == [
        {"ForAllValues:StringNotLike": {"aws:TagKeys": ["amibot:*"]}, "Null": {"aws:TagKeys": "false"}},
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["amibot:disposable"]}, "Null": {"aws:TagKeys": "false"}},
    ]
    grants = _statements_with(member, "kms:CreateGrant")
    assert all(s.get("Condition") for s in grants) and len(grants) == 2
    direct = next(s for s in grants if "ForAllValues:StringEquals" in s["Condition"])
    assert set(direct["Condition"]["ForAllValues:StringEquals"]["kms:GrantOperations"]) == set(SHARE_GRANT_OPERATIONS)


def test_without_migrate_the_policy_has_no_pass_role_and_no_create_image(capsys):
    policies = printed_policies(capsys, ["iam-policy", "--without-migrate"])
    assert len(policies) == 2
    member = member_role(policies)
    allowed = {a for s in member["Statement"] for a in s["Action"]}
    assert "iam:PassRole" not in allowed and "ec2:CreateImage" not in allowed
    assert {"ec2:CopyImage", "ec2:RunInstances", "iam:SimulatePrincipalPolicy"} <= allowed
    check_policy_document(member)
