"""The key-policy actions (organisation / OU shares) and the Auto Scaling grant,
against the sandbox, which evaluates key policies for other accounts with
aws:PrincipalOrgID / aws:PrincipalOrgPaths."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from aws.actions import SHARE_GRANT_OPERATIONS, StepContext, account_root, get_action, grant_name
from aws.actions.autoscaling import autoscaling_grant_name, autoscaling_role
from aws.actions.keypolicy import ORG_KEY_POLICY_ACTIONS, KeyPolicyChanged, org_statement, statement_sid

PROD, DEV, OTHER_OU, OUTSIDER = "111111111111", "222222222222", "333333333333", "444444444444"
REGION = "us-east-1"
ORG = "o-sandbox1234"
DEV_OU = "ou-sbx1-devteams"


class _Sessions:
    """Clients acting as an account, the way aws.sessions.AwsSessions hands them out."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def client(self, service, account_id, region, tag="bot"):
        return self.sandbox.session(account_id, region).client(service)


@pytest.fixture
def world(sandbox):
    sandbox.configure_organization(ORG, members={PROD: "ou-sbx1-platform", DEV: DEV_OU, OTHER_OU: "ou-sbx1-finance"})
    policy = {
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Key administrators", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/kms-admin"}, "Action": ["kms:Create*", "kms:Describe*", "kms:Put*"], "Resource": "*"},
        ],
    }
    # Written compactly, as the console never would: restoring must give back these exact bytes.
    text = json.dumps(policy, separators=(",", ":"))
    key = sandbox.create_key(PROD, REGION, alias="alias/ami-shared", policy=text)
    return sandbox, key, text


def context(sandbox, previous=None, checkpoints=None, grant_wait=2.0):
    return StepContext(
        sessions=_Sessions(sandbox), request_uid="0123456789abcdef", session_tag="R-1-0123456789abcdef",
        previous=previous or {}, checkpoint=(checkpoints.append if checkpoints is not None else (lambda r: None)),
        sleep=lambda s: None, grant_wait_seconds=grant_wait,
    )


def policy_text(sandbox, key):
    return sandbox.client("kms", PROD, REGION).get_key_policy(KeyId=key, PolicyName="default")["Policy"]


def usable_by(sandbox, account, key) -> bool:
    try:
        sandbox.client("kms", account, REGION).describe_key(KeyId=key)
        sandbox.client("kms", account, REGION).create_grant(KeyId=key, GranteePrincipal=account_root(account, "us-east-1"), Operations=["Decrypt"], DryRun=True)
    except ClientError as error:
        return error.response["Error"]["Code"] == "DryRunOperationException"
    return True


def add_params(key, text, ou=None):
    return {"key_arn": key, "statement": org_statement(statement_sid("0123456789abcdef", ORG, ou), ORG, ou), "expected_policy": text}


def test_org_statement_lets_members_use_the_key_and_undo_restores_the_exact_text(world):
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    assert not usable_by(sandbox, DEV, key)
    result = action.execute(context(sandbox), PROD, REGION, add_params(key, text))
    assert result["added"] and result["policy_before"] == text
    assert usable_by(sandbox, DEV, key) and usable_by(sandbox, OTHER_OU, key)
    assert not usable_by(sandbox, OUTSIDER, key)  # outside the organisation
    after = json.loads(policy_text(sandbox, key))
    assert after["Statement"][:2] == json.loads(text)["Statement"] and after["Id"] == "key-consolepolicy-3"
    added = after["Statement"][2]
    assert added["Sid"] == f"amibot-0123456789abcdef-{ORG}" and added["Principal"] == {"AWS": "*"}
    assert added["Action"] == list(ORG_KEY_POLICY_ACTIONS)
    assert added["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}

    said = action.undo(context(sandbox), PROD, REGION, add_params(key, text), result)
    assert "amibot-0123456789abcdef" in said
    assert policy_text(sandbox, key) == text  # byte for byte
    assert not usable_by(sandbox, DEV, key)
    assert action.undo(context(sandbox), PROD, REGION, add_params(key, text), result) is None  # already gone


def test_ou_statement_reaches_only_that_ou(world):
    sandbox, key, text = world
    get_action("kms.add_key_policy_statement").execute(context(sandbox), PROD, REGION, add_params(key, text, ou=DEV_OU))
    assert usable_by(sandbox, DEV, key)
    assert not usable_by(sandbox, OTHER_OU, key) and not usable_by(sandbox, OUTSIDER, key)


def test_add_is_idempotent_and_a_retry_after_a_crash_keeps_the_original_before(world):
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    checkpoints: list[dict] = []
    first = action.execute(context(sandbox, checkpoints=checkpoints), PROD, REGION, add_params(key, text))
    assert checkpoints == [{"sid": first["sid"], "policy_before": text}]  # recorded before PutKeyPolicy
    # The process died after PutKeyPolicy, before the step was recorded done: run again.
    again = action.execute(context(sandbox, previous=checkpoints[-1]), PROD, REGION, add_params(key, text))
    assert again == {"sid": first["sid"], "policy_before": text, "added": False, "created": True}
    assert [s["Sid"] for s in json.loads(policy_text(sandbox, key))["Statement"]].count(first["sid"]) == 1
    action.undo(context(sandbox), PROD, REGION, add_params(key, text), again)
    assert policy_text(sandbox, key) == text


def test_a_policy_changed_since_approval_is_not_written(world):
    sandbox, key, text = world
    changed = json.loads(text)
    changed["Statement"].pop(1)  # someone removed the administrators meanwhile
    sandbox.client("kms", PROD, REGION).put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(changed))
    with pytest.raises(KeyPolicyChanged):
        get_action("kms.add_key_policy_statement").execute(context(sandbox), PROD, REGION, add_params(key, text))
    assert json.loads(policy_text(sandbox, key)) == changed
    assert not usable_by(sandbox, DEV, key)


def test_undo_keeps_what_others_changed_meanwhile(world):
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    result = action.execute(context(sandbox), PROD, REGION, add_params(key, text))
    policy = json.loads(policy_text(sandbox, key))
    auditors = {"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/audit"}, "Action": "kms:DescribeKey", "Resource": "*"}
    policy["Statement"].append(auditors)
    sandbox.client("kms", PROD, REGION).put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    action.undo(context(sandbox), PROD, REGION, add_params(key, text), result)
    after = json.loads(policy_text(sandbox, key))
    assert after["Statement"] == json.loads(text)["Statement"] + [auditors]


def test_remove_statements_removes_only_the_named_sids_and_restores_the_recorded_text(world):
    sandbox, key, text = world
    add = get_action("kms.add_key_policy_statement")
    org_result = add.execute(context(sandbox), PROD, REGION, add_params(key, text))
    ou_params = {**add_params(key, policy_text(sandbox, key), ou=DEV_OU)}
    ou_params["statement"] = {**ou_params["statement"], "Sid": "amibot-fedcba9876543210-" + DEV_OU}
    add.execute(context(sandbox), PROD, REGION, ou_params)
    remove = get_action("kms.remove_key_policy_statements")
    assert not remove.undoable  # a half-done unshare never gives access back
    result = remove.execute(context(sandbox), PROD, REGION, {"key_arn": key, "sids": [org_result["sid"], "amibot-not-there"], "restore_texts": [text]})
    assert result["removed"] == [org_result["sid"]]
    assert [s["Sid"] for s in json.loads(policy_text(sandbox, key))["Statement"]][-1] == "amibot-fedcba9876543210-" + DEV_OU
    assert usable_by(sandbox, DEV, key) and not usable_by(sandbox, OTHER_OU, key)  # the OU statement stays
    remove.execute(context(sandbox), PROD, REGION, {"key_arn": key, "sids": ["amibot-fedcba9876543210-" + DEV_OU], "restore_texts": [text]})
    assert policy_text(sandbox, key) == text  # what remains says the same as the recorded text: those bytes
    assert remove.execute(context(sandbox), PROD, REGION, {"key_arn": key, "sids": [org_result["sid"]]})["removed"] == []


def test_autoscaling_grant_retries_while_the_share_grant_spreads_and_undo_revokes_it(world):
    sandbox, key, _ = world
    prod_kms = sandbox.client("kms", PROD, REGION)
    prod_kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=list(SHARE_GRANT_OPERATIONS), Name=grant_name("0123456789abcdef", DEV))
    sandbox.set_grant_delay(0.2)
    action = get_action("kms.create_autoscaling_grant")
    params = {
        "key_arn": key, "key_owner_account": PROD, "grantee_principal": autoscaling_role(DEV, "us-east-1"),
        "operations": list(SHARE_GRANT_OPERATIONS), "grant_name": autoscaling_grant_name("0123456789abcdef", DEV),
    }
    calls = sandbox.calls("CreateGrant", DEV)
    result = action.execute(context(sandbox), DEV, REGION, params)
    assert sandbox.calls("CreateGrant", DEV) - calls > 1  # refused at first, retried
    grant = next(g for g in prod_kms.list_grants(KeyId=key)["Grants"] if g["GrantId"] == result["grant_id"])
    assert grant["GranteePrincipal"] == autoscaling_role(DEV, "us-east-1") and sorted(grant["Operations"]) == sorted(SHARE_GRANT_OPERATIONS)
    # Idempotent by name: a retry after a crash gets the same grant back.
    assert action.execute(context(sandbox), DEV, REGION, params)["grant_id"] == result["grant_id"]
    assert "revoked" in action.undo(context(sandbox), DEV, REGION, params, result)
    assert [g["GranteePrincipal"] for g in prod_kms.list_grants(KeyId=key)["Grants"]] == [account_root(DEV, "us-east-1")]


def test_autoscaling_grant_gives_up_when_the_target_has_no_grant(world):
    sandbox, key, _ = world
    params = {
        "key_arn": key, "key_owner_account": PROD, "grantee_principal": autoscaling_role(DEV, "us-east-1"),
        "operations": list(SHARE_GRANT_OPERATIONS), "grant_name": autoscaling_grant_name("0123456789abcdef", DEV),
    }
    with pytest.raises(ClientError) as raised:
        get_action("kms.create_autoscaling_grant").execute(context(sandbox, grant_wait=0.2), DEV, REGION, params)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
