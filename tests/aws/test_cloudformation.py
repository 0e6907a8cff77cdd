"""The CloudFormation set-up: generated from the actions' permissions, committed
unchanged, valid for cfn-lint, and deployable (the member role's trust is checked
by the sandbox: only the bot's role, only with the external id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from aws.cloudformation import TEMPLATES, key_policy_statements, render_all, shared_key_use_actions
from aws.iam import member_policy, migrate_policy
from bot.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation"
CFN_TEMPLATES = [name for name in TEMPLATES if name != "key-policy-statement.json"]
BOT_ACCOUNT, MEMBER = "123456789012", "222222222222"


def test_committed_files_are_what_the_generator_writes(tmp_path):
    assert main(["iam-policy", "--format", "cloudformation", "--out", str(tmp_path)]) == 0
    for name in TEMPLATES:
        generated = (tmp_path / name).read_text()
        committed = DEPLOY / name
        assert committed.exists(), f"{committed} missing: run `amibot iam-policy --format cloudformation`"
        assert committed.read_text() == generated, f"{name} drifted from the actions' permissions: run `amibot iam-policy --format cloudformation`"


@pytest.mark.parametrize("name", CFN_TEMPLATES)
def test_cfn_lint_finds_nothing(name):
    from cfnlint.api import lint_all

    # Errors and warnings fail; informational notes (I…) do not.
    matches = [m for m in lint_all(render_all()[name]) if m.rule.id[0] in "EW"]
    assert not matches, "\n".join(str(m) for m in matches)


def test_member_role_carries_the_generated_policy():
    template = json.loads(render_all()["member-account-role.json"])
    role = template["Resources"]["MemberRole"]["Properties"]
    assert role["Policies"][0]["PolicyDocument"] == member_policy()
    # iam:PassRole only in the migrate add-on, attached only where migrations are allowed.
    migrate = template["Resources"]["MigratePolicy"]
    assert migrate["Condition"] == "MigrateAllowed" and migrate["Properties"]["PolicyDocument"] == migrate_policy()
    assert not any("iam:PassRole" in s["Action"] for s in member_policy()["Statement"])
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "BotRoleArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}


def test_key_snippets_follow_the_grants():
    statements = {s["Sid"]: s for s in key_policy_statements()["Statement"]}
    member = {s["Sid"]: s for s in member_policy()["Statement"]}
    # The key policy carries the member policy's conditions: naming the role there
    # allows on its own, so without them the IAM conditions would not apply.
    grants = statements["AmibotGrantOnlyLaunchOperationsToConfiguredAccounts"]
    assert grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"] == member["GrantOnlyLaunchOperationsToConfiguredAccounts"]["Condition"]
    assert set(grants["Condition"]) == {"ForAllValues:StringEquals", "StringLike"}
    edits = statements["AmibotKeyPoliciesOfKeysMarkedForOrgSharing"]
    assert edits["Action"] == ["kms:PutKeyPolicy"] and edits["Condition"] == {"StringEquals": {"aws:ResourceTag/amibot:org-share": "true"}}
    assert not any(s.get("Condition") is None and set(s["Action"]) & {"kms:CreateGrant", "kms:PutKeyPolicy"} for s in statements.values())
    assert shared_key_use_actions() == ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom"]


def test_deployed_member_role_trusts_only_the_bot_role_with_the_external_id(sandbox):
    bot_cfn = sandbox.client("cloudformation", BOT_ACCOUNT)
    member_role = f"arn:aws:iam::{MEMBER}:role/amibot"
    bot_cfn.create_stack(StackName="amibot-bot", TemplateBody=render_all()["bot-role.json"], Capabilities=["CAPABILITY_NAMED_IAM"],
                         Parameters=[{"ParameterKey": "MemberRoleArns", "ParameterValue": member_role}])
    bot_role = bot_cfn.describe_stacks(StackName="amibot-bot")["Stacks"][0]["Outputs"][0]["OutputValue"]
    sandbox.client("cloudformation", MEMBER).create_stack(
        StackName="amibot-member", TemplateBody=render_all()["member-account-role.json"], Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "BotRoleArn", "ParameterValue": bot_role}, {"ParameterKey": "ExternalId", "ParameterValue": "ext-1234"}],
    )
    # The bot role trusts the service amibot runs on (ECS by default), which the sandbox
    # cannot be: let the bot account itself stand in for the service.
    stand_in = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": BOT_ACCOUNT}, "Action": "sts:AssumeRole"}]}
    sandbox.client("iam", BOT_ACCOUNT).update_assume_role_policy(RoleName="amibot-bot", PolicyDocument=json.dumps(stand_in))
    sts = sandbox.client("sts", BOT_ACCOUNT)
    creds = sts.assume_role(RoleArn=bot_role, RoleSessionName="amibot-bot")["Credentials"]
    import boto3

    as_bot = boto3.client("sts", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                          aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    assumed = as_bot.assume_role(RoleArn=member_role, RoleSessionName="amibot-R-1", ExternalId="ext-1234")
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/amibot/")
    for caller, kwargs in ((as_bot, {"ExternalId": "wrong"}), (as_bot, {}), (sts, {"ExternalId": "ext-1234"})):
        with pytest.raises(ClientError, match="AccessDenied"):
            caller.assume_role(RoleArn=member_role, RoleSessionName="amibot-R-1", **kwargs)


@pytest.mark.parametrize("allow, policies", [(None, ["amibot-member", "amibot-migrate"]), ("false", ["amibot-member"])])
def test_the_migrate_policy_is_deployed_only_where_migrations_are_allowed(sandbox, allow, policies):
    parameters = [{"ParameterKey": "BotRoleArn", "ParameterValue": f"arn:aws:iam::{BOT_ACCOUNT}:role/amibot-bot"},
                  {"ParameterKey": "ExternalId", "ParameterValue": "ext-1234"}, {"ParameterKey": "RoleName", "ParameterValue": f"amibot-{allow}"}]
    if allow:
        parameters.append({"ParameterKey": "AllowMigrate", "ParameterValue": allow})
    sandbox.client("cloudformation", MEMBER).create_stack(StackName=f"amibot-member-{allow}", TemplateBody=render_all()["member-account-role.json"],
                                                          Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=parameters)
    assert sorted(sandbox.client("iam", MEMBER).list_role_policies(RoleName=f"amibot-{allow}")["PolicyNames"]) == policies
