"""The key-policy actions (organisation / OU shares) and the Auto Scaling grant,
against the sandbox, which evaluates key policies for other accounts with
aws:PrincipalOrgID / aws:PrincipalOrgPaths."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError

from aws.actions import SHARE_GRANT_OPERATIONS, StepContext, account_root, get_action, grant_name
from aws.actions.autoscaling import autoscaling_grant_name, autoscaling_role
from aws.actions.keypolicy import (
    KEY_POLICY_MAX_BYTES,
    ORG_CRYPTO_ACTIONS,
    KeyPolicyChanged,
    KeyPolicyTooLarge,
    grant_statement_sid,
    key_policy_lock,
    org_grant_statement,
    org_statement,
    statement_sid,
    use_key_policy_lock,
)

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
    # An AMI encrypted with the key, launchable by the whole organisation: whether a
    # member can use the key is whether its launch from this AMI keeps running.
    image = sandbox.create_image(PROD, REGION, kms_key_arn=key)
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(
        ImageId=image, LaunchPermission={"Add": [{"OrganizationArn": sandbox.organization_arn()}]}
    )
    IMAGES[key] = image
    return sandbox, key, text


IMAGES: dict[str, str] = {}


def context(sandbox, previous=None, checkpoints=None, grant_wait=2.0):
    return StepContext(
        sessions=_Sessions(sandbox), request_uid="0123456789abcdef", session_tag="R-1-0123456789abcdef",
        previous=previous or {}, checkpoint=(checkpoints.append if checkpoints is not None else (lambda r: None)),
        sleep=lambda s: None, grant_wait_seconds=grant_wait,
    )


def policy_text(sandbox, key):
    return sandbox.client("kms", PROD, REGION).get_key_policy(KeyId=key, PolicyName="default")["Policy"]


def usable_by(sandbox, account, key) -> bool:
    """The account can launch from the org-shared AMI encrypted with ``key``: EC2 uses
    the key for it (kms:ViaService), as it would for the member's people."""
    ec2 = sandbox.client("ec2", account, REGION)
    try:
        instance = ec2.run_instances(ImageId=IMAGES[key], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    except ClientError:
        return False
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    return state == "running"


UID = "0123456789abcdef"


def add_params(key, text, ou=None):
    return {"key_arn": key, "statement": org_statement(statement_sid(UID, ORG, ou), ORG, ou, region=REGION), "expected_policy": text}


def grant_params(key, text, ou=None):
    return {"key_arn": key, "statement": org_grant_statement(grant_statement_sid(UID, ORG, ou), ORG, ou), "expected_policy": text}


def add_both(sandbox, key, text, ou=None) -> list[dict]:
    """The two steps an org share plans per key."""
    action = get_action("kms.add_key_policy_statement")
    return [action.execute(context(sandbox), PROD, REGION, p(key, text, ou)) for p in (add_params, grant_params)]


def mint_grant(sandbox, member, key) -> str:
    """What the old single statement let any org member do: a grant for an outside
    account with operations a launch never needs."""
    try:
        sandbox.client("kms", member, REGION).create_grant(
            KeyId=key, GranteePrincipal=account_root(OUTSIDER, REGION), Operations=["Encrypt", "ReEncryptTo", "CreateGrant", "Decrypt"]
        )
        return "granted"
    except ClientError as error:
        return error.response["Error"]["Code"]


def test_org_members_cannot_mint_grants_for_anyone(world):
    """Reproduces the finding with the statement amibot used to write (CreateGrant
    and the crypto operations with no service condition), then shows that the two
    statements amibot writes now refuse it, while launches still work."""
    sandbox, key, text = world
    old = {"Sid": f"amibot-{UID}-{ORG}", "Effect": "Allow", "Principal": {"AWS": "*"},
           "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom"],
           "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}
    prod_kms = sandbox.client("kms", PROD, REGION)
    with_old = json.loads(text)
    with_old["Statement"].append(old)
    prod_kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(with_old))
    assert mint_grant(sandbox, DEV, key) == "granted"  # the finding, reproduced

    prod_kms.put_key_policy(KeyId=key, PolicyName="default", Policy=text)
    for grant in prod_kms.list_grants(KeyId=key)["Grants"]:
        prod_kms.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    add_both(sandbox, key, text)
    assert mint_grant(sandbox, DEV, key) == "AccessDeniedException"
    blob = prod_kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as raised:  # no direct use: only through EC2
        sandbox.client("kms", DEV, REGION).decrypt(CiphertextBlob=blob, KeyId=key)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert usable_by(sandbox, DEV, key)  # EC2 still uses the key for the member's launch


def test_launch_needs_the_grant_statement_too(world):
    """Without the CreateGrant statement (kms:GrantIsForAWSResource), EC2 cannot
    attach the member's volumes: the crypto statement alone is not enough."""
    sandbox, key, text = world
    get_action("kms.add_key_policy_statement").execute(context(sandbox), PROD, REGION, add_params(key, text))
    assert not usable_by(sandbox, DEV, key)
    get_action("kms.add_key_policy_statement").execute(context(sandbox), PROD, REGION, grant_params(key, text))
    assert usable_by(sandbox, DEV, key)


def test_org_statement_lets_members_use_the_key_and_undo_restores_the_exact_text(world):
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    assert not usable_by(sandbox, DEV, key)
    result = action.execute(context(sandbox), PROD, REGION, add_params(key, text))
    assert result["added"] and result["policy_before"] == text
    grant_result = action.execute(context(sandbox), PROD, REGION, grant_params(key, text))
    assert usable_by(sandbox, DEV, key) and usable_by(sandbox, OTHER_OU, key)
    assert not usable_by(sandbox, OUTSIDER, key)  # outside the organisation
    after = json.loads(policy_text(sandbox, key))
    assert after["Statement"][:2] == json.loads(text)["Statement"] and after["Id"] == "key-consolepolicy-3"
    added, grants = after["Statement"][2], after["Statement"][3]
    assert added["Sid"] == f"amibot-{ORG}" and added["Principal"] == {"AWS": "*"}
    assert added["Action"] == list(ORG_CRYPTO_ACTIONS)
    assert added["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG, "kms:ViaService": f"ec2.{REGION}.amazonaws.com"}}
    assert grants["Sid"] == f"amibot-grant-{ORG}" and grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}, "Bool": {"kms:GrantIsForAWSResource": "true"}}

    action.undo(context(sandbox), PROD, REGION, grant_params(key, text), grant_result)
    said = action.undo(context(sandbox), PROD, REGION, add_params(key, text), result)
    assert f"amibot-{ORG}" in said
    assert policy_text(sandbox, key) == text  # byte for byte
    assert not usable_by(sandbox, DEV, key)
    assert action.undo(context(sandbox), PROD, REGION, add_params(key, text), result) is None  # already gone


def test_ou_statement_reaches_only_that_ou(world):
    sandbox, key, text = world
    add_both(sandbox, key, text, ou=DEV_OU)
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
    ou_grants = {**grant_params(key, policy_text(sandbox, key), ou=DEV_OU)}
    ou_grants["statement"] = {**ou_grants["statement"], "Sid": "amibot-fedcba9876543210-grant-" + DEV_OU}
    add.execute(context(sandbox), PROD, REGION, ou_grants)
    remove = get_action("kms.remove_key_policy_statements")
    assert not remove.undoable  # a half-done unshare never gives access back
    result = remove.execute(context(sandbox), PROD, REGION, {"key_arn": key, "sids": [org_result["sid"], "amibot-not-there"], "restore_texts": [text]})
    assert result["removed"] == [org_result["sid"]]
    assert [s["Sid"] for s in json.loads(policy_text(sandbox, key))["Statement"]][-2] == "amibot-fedcba9876543210-" + DEV_OU
    assert usable_by(sandbox, DEV, key) and not usable_by(sandbox, OTHER_OU, key)  # the OU statements stay
    remove.execute(context(sandbox), PROD, REGION, {"key_arn": key, "sids": ["amibot-fedcba9876543210-" + DEV_OU, "amibot-fedcba9876543210-grant-" + DEV_OU], "restore_texts": [text]})
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


class _SlowReads(_Sessions):
    """Every GetKeyPolicy answers, then waits: two requests' read-modify-writes overlap."""

    def client(self, service, account_id, region, tag="bot"):
        client = super().client(service, account_id, region, tag)
        if service == "kms":
            real = client.get_key_policy

            def slow(**kwargs):
                answer = real(**kwargs)
                time.sleep(0.3)
                return answer

            client.get_key_policy = slow
        return client


def test_org_shares_of_one_key_share_one_statement_per_organisation_or_ou(world):
    """One statement per principal set, whatever the number of requests: the key no
    longer fills up (~1.2 KB per request before: 32 KiB after about 25 shares)."""
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    for uid in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"):
        for ou in (None, DEV_OU):
            statement = org_statement(statement_sid(uid, ORG, ou), ORG, ou, region=REGION)
            ctx = context(sandbox)
            ctx.request_uid = uid
            action.execute(ctx, PROD, REGION, {"key_arn": key, "statement": statement, "expected_policy": None})
    amibot = [s["Sid"] for s in json.loads(policy_text(sandbox, key))["Statement"] if s["Sid"].startswith("amibot-")]
    assert amibot == [f"amibot-{ORG}", f"amibot-{DEV_OU}"]


def test_concurrent_org_shares_of_one_key_both_keep_their_statements(world):
    """PutKeyPolicy replaces the whole policy: without the per-key lock the second
    writer drops the first one's statement."""
    sandbox, key, text = world
    action = get_action("kms.add_key_policy_statement")
    sids = [f"amibot-{uid}-{ORG}" for uid in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb")]

    def share(sid):
        ctx = context(sandbox)
        ctx.sessions = _SlowReads(sandbox)
        action.execute(ctx, PROD, REGION, {"key_arn": key, "statement": org_statement(sid, ORG, region=REGION), "expected_policy": text})

    threads = [threading.Thread(target=share, args=(sid,)) for sid in sids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    present = [s["Sid"] for s in json.loads(policy_text(sandbox, key))["Statement"]]
    assert set(sids) <= set(present), present


def test_the_lock_is_replaceable_and_held_around_the_write(world):
    sandbox, key, text = world
    held: list[str] = []

    class Recording:
        @contextmanager
        def hold(self, key_arn):
            held.append(key_arn)
            yield

    original = key_policy_lock()
    use_key_policy_lock(Recording())
    try:
        add_both(sandbox, key, text)
    finally:
        use_key_policy_lock(original)
    assert held == [key, key]


def test_a_policy_over_32_kib_is_refused_before_put_key_policy(world):
    sandbox, key, text = world
    big = json.loads(text)
    filler = {"Sid": "Padding", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"},
              "Action": "kms:DescribeKey", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x" * 31800}}}
    big["Statement"].append(filler)
    big_text = json.dumps(big, separators=(",", ":"))
    assert len(big_text) < KEY_POLICY_MAX_BYTES
    sandbox.client("kms", PROD, REGION).put_key_policy(KeyId=key, PolicyName="default", Policy=big_text)
    with pytest.raises(KeyPolicyTooLarge):
        add_both(sandbox, key, big_text)
    assert policy_text(sandbox, key) == big_text  # nothing written
    with pytest.raises(ClientError) as raised:  # and KMS itself (the sandbox) refuses it
        sandbox.client("kms", PROD, REGION).put_key_policy(KeyId=key, PolicyName="default", Policy=big_text + " " * KEY_POLICY_MAX_BYTES)
    assert raised.value.response["Error"]["Code"] == "LimitExceededException"


def test_an_own_key_without_the_root_statement_refuses_its_own_account(sandbox):
    """Every key obeys its key policy: a policy naming only one role of the account
    does not let the account's other principals use the key (no implicit owner access)."""
    only_admin = {"Version": "2012-10-17", "Statement": [
        {"Sid": "KeyAdminOnly", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:role/kms-admin"}, "Action": "kms:*", "Resource": "*"}]}
    key = sandbox.create_key(PROD, REGION, policy=json.dumps(only_admin))
    with pytest.raises(ClientError) as raised:
        sandbox.client("kms", PROD, REGION).create_grant(
            KeyId=key, GranteePrincipal=account_root(DEV, REGION), Operations=["Decrypt"], DryRun=True)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_deny_with_not_principal_is_honoured(sandbox):
    """Fail closed: a Deny for everyone but one role applies to every other principal."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "OnlyBreakGlass", "Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{PROD}:role/break-glass"},
         "NotAction": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:PutKeyPolicy"], "Resource": "*"}]}
    key = sandbox.create_key(PROD, REGION, policy=json.dumps(policy))
    kms = sandbox.client("kms", PROD, REGION)
    kms.describe_key(KeyId=key)  # not in the Deny's NotAction scope
    with pytest.raises(ClientError) as raised:
        kms.create_grant(KeyId=key, GranteePrincipal=account_root(DEV, REGION), Operations=["Decrypt"], DryRun=True)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
