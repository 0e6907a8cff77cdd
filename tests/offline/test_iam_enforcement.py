"""IAM evaluated, not listed: the sandbox holds amibot's role to the policy
``amibot iam-policy`` generates, one test per condition the policy uses. Each test
fails when its condition is taken out of ``aws.iam`` (or the tag is not set at
creation), because the forbidden call then goes through."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from aws.iam import ORG_SHARE_TAG, bot_role_policy, member_account_policy
from offline.sandbox import BOT_ACCOUNT, ROLE_NAME
from offline.sandbox.iam_eval import ALLOW, DENY, condition_holds, decide, statements_of

A = "111111111111"
B = "222222222222"
R1 = "us-east-1"
TAGS = [{"Key": "amibot:request", "Value": "R-1"}]


def code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def amibot(sandbox):
    """The amibot role in A held to the generated member policy; returns a client factory.
    These tests are about IAM: what the role creates is visible at once (eventual
    consistency has tests of its own, tests/aws/test_consistency.py)."""
    sandbox.set_consistency_delay(0)
    sandbox.attach_role_policy(A, ROLE_NAME, member_account_policy())
    session = sandbox.role_session(A)
    return lambda service: session.client(service, region_name=R1)


def admin_instance(sandbox, tags: dict[str, str] | None = None) -> str:
    return sandbox.create_instance(A, tags=tags, key_name=None)


# --------------------------------------------------------------------------- the evaluator


def test_condition_operators_and_set_qualifiers():
    ctx = {"kms:grantoperations": ["Decrypt", "Encrypt"], "aws:resourcetag/amibot:request": "R-1"}
    assert condition_holds("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt"], ctx) is False
    assert condition_holds("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt", "Encrypt"], ctx) is True
    assert condition_holds("ForAnyValue:StringEquals", "kms:GrantOperations", ["Encrypt"], ctx) is True
    assert condition_holds("Null", "aws:ResourceTag/amibot:request", "false", ctx) is True
    assert condition_holds("Null", "aws:ResourceTag/other", "false", ctx) is False
    assert condition_holds("StringLike", "kms:ViaService", "ec2.*.amazonaws.com", {"kms:viaservice": "ec2.eu-west-1.amazonaws.com"})
    assert condition_holds("StringLike", "kms:ViaService", "ec2.*.amazonaws.com", {}) is False
    assert condition_holds("StringLikeIfExists", "kms:ViaService", "x", {}) is True
    assert condition_holds("NumericLessThan", "x", "1", {"x": "0"}) is None  # unknown: the caller fails closed


def test_unknown_operator_fails_closed_for_allow_and_for_deny():
    unknown = {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    allow = [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": unknown}]
    deny = [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}, {"Effect": "Deny", "Action": "ec2:*", "Resource": "*", "Condition": unknown}]
    assert decide(allow, "ec2:RunInstances", "*", {}) is None
    assert decide(deny, "ec2:RunInstances", "*", {}) == DENY


def test_not_action_deny_and_explicit_deny_wins():
    statements = [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": ["kms:Describe*", "kms:List*"], "Resource": "*"},
    ]
    assert decide(statements, "kms:DescribeKey", "k", {}) == ALLOW
    assert decide(statements, "kms:Decrypt", "k", {}) == DENY


# --------------------------------------------------------------------------- one test per condition


def test_terminate_only_instances_tagged_by_amibot(sandbox, amibot):
    """aws:ResourceTag/amibot:request on TerminateInstances."""
    theirs = admin_instance(sandbox, {"Name": "someone-elses"})
    ours = admin_instance(sandbox, {"amibot:request": "R-1"})
    with pytest.raises(ClientError) as excinfo:
        amibot("ec2").terminate_instances(InstanceIds=[theirs])
    assert code(excinfo) == "UnauthorizedOperation"
    amibot("ec2").terminate_instances(InstanceIds=[ours])
    assert sandbox.iam_denials() == [("TerminateInstances", sandbox.iam_denials()[0][1], "ec2:TerminateInstances", f"arn:aws:ec2:{R1}:{A}:instance/{theirs}")]


def test_deregister_and_delete_snapshot_only_when_tagged_by_amibot(sandbox, amibot):
    """aws:ResourceTag/amibot:request on DeregisterImage and DeleteSnapshot."""
    theirs = sandbox.create_image(A, name="team-image")
    ec2 = amibot("ec2")
    snapshot = ec2.describe_images(ImageIds=[theirs])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError) as excinfo:
        ec2.deregister_image(ImageId=theirs)
    assert code(excinfo) == "UnauthorizedOperation"
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_snapshot(SnapshotId=snapshot)
    assert code(excinfo) == "UnauthorizedOperation"
    ours = sandbox.create_image(A, name="amibot-copy", tags={"amibot:request": "R-2"})
    ec2.deregister_image(ImageId=ours)


def test_tags_only_inside_the_create_call(sandbox, amibot):
    """ec2:CreateAction: CreateTags alone is refused; TagSpecifications on RunInstances pass."""
    net = sandbox.network(A)
    theirs = admin_instance(sandbox)
    ec2 = amibot("ec2")
    with pytest.raises(ClientError) as excinfo:
        # Tagging someone's instance as amibot's would make it deletable: refused.
        ec2.create_tags(Resources=[theirs], Tags=TAGS)
    assert code(excinfo) == "UnauthorizedOperation"
    # `/ami tag` may set other keys on an existing resource, never amibot:* ones.
    ec2.create_tags(Resources=[theirs], Tags=[{"Key": "version", "Value": "2026.11"}])
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=[theirs], Tags=[{"Key": "version", "Value": "2"}, {"Key": "amibot:request", "Value": "R-9"}])
    assert code(excinfo) == "UnauthorizedOperation"
    launched = ec2.run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, SubnetId=net["subnets"][f"{R1}a"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": TAGS}],
    )["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[launched])  # tagged at creation: amibot's own


def test_pass_role_only_to_ec2(sandbox, amibot):
    """iam:PassedToService = ec2.amazonaws.com: the role may pass instance roles to EC2
    (RunInstances with a profile), and to no other service."""
    net = sandbox.network(A)
    sandbox.client("iam", A).create_instance_profile(InstanceProfileName="web-role")
    amibot("ec2").run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, SubnetId=net["subnets"][f"{R1}a"],
        IamInstanceProfile={"Name": "web-role"}, TagSpecifications=[{"ResourceType": "instance", "Tags": TAGS}],
    )
    statements = statements_of(member_account_policy())
    role = f"arn:aws:iam::{A}:role/web-role"
    assert decide(statements, "iam:PassRole", role, {"iam:passedtoservice": "ec2.amazonaws.com"}) == ALLOW
    assert decide(statements, "iam:PassRole", role, {"iam:passedtoservice": "lambda.amazonaws.com"}) is None


def test_without_migrate_no_pass_role_at_all(sandbox):
    sandbox.attach_role_policy(A, ROLE_NAME, member_account_policy(migrate=False))
    net = sandbox.network(A)
    sandbox.client("iam", A).create_instance_profile(InstanceProfileName="web-role")
    with pytest.raises(ClientError) as excinfo:
        sandbox.role_session(A).client("ec2").run_instances(
            ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, SubnetId=net["subnets"][f"{R1}a"],
            IamInstanceProfile={"Name": "web-role"}, TagSpecifications=[{"ResourceType": "instance", "Tags": TAGS}],
        )
    assert code(excinfo) == "UnauthorizedOperation"
    assert ("RunInstances", sandbox.iam_denials()[0][1], "iam:PassRole", f"arn:aws:iam::{A}:role/web-role") in sandbox.iam_denials()


def test_grants_only_with_the_operations_amibot_grants(sandbox, amibot):
    """kms:GrantOperations (ForAllValues:StringEquals)."""
    cmk = sandbox.create_key(A)
    kms = amibot("kms")
    with pytest.raises(ClientError) as excinfo:
        kms.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt", "Encrypt"])
    assert code(excinfo) == "AccessDeniedException"
    kms.create_grant(KeyId=cmk, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt", "DescribeKey"])


def test_data_key_operations_only_through_ec2(sandbox, amibot):
    """kms:ViaService: the role cannot decrypt directly; EC2 can for it (a copy of an
    encrypted AMI of its own account)."""
    cmk = sandbox.create_key(A)
    blob = sandbox.client("kms", A).encrypt(KeyId=cmk, Plaintext=b"secret")["CiphertextBlob"]
    with pytest.raises(ClientError) as excinfo:
        amibot("kms").decrypt(CiphertextBlob=blob, KeyId=cmk)
    assert code(excinfo) == "AccessDeniedException"
    image = sandbox.create_image(A, kms_key_arn=cmk)
    ec2 = amibot("ec2")
    copied = ec2.copy_image(
        SourceImageId=image, SourceRegion=R1, Name="through-ec2", Encrypted=True, KmsKeyId=cmk,
        TagSpecifications=[{"ResourceType": "image", "Tags": TAGS}],
    )["ImageId"]
    assert ec2.describe_images(ImageIds=[copied])["Images"][0]["State"] == "available"


def test_ec2_made_grants_need_grant_is_for_aws_resource():
    """kms:GrantIsForAWSResource with kms:ViaService: the role's grants for EBS are
    allowed only when EC2 makes them; a direct grant falls back to the operation limit."""
    statements = statements_of(member_account_policy())
    via_ec2 = {"kms:viaservice": "ec2.us-east-1.amazonaws.com", "kms:grantisforawsresource": "true", "kms:grantoperations": ["Encrypt"]}
    assert decide(statements, "kms:CreateGrant", "k", via_ec2) == ALLOW
    direct = {**via_ec2, "kms:grantisforawsresource": "false"}
    assert decide(statements, "kms:CreateGrant", "k", direct) is None


def test_key_policy_changes_only_on_keys_marked_for_org_sharing(sandbox, amibot):
    """aws:ResourceTag/amibot:org-share = true on PutKeyPolicy."""
    unmarked = sandbox.create_key(A)
    marked = sandbox.create_key(A, tags={ORG_SHARE_TAG: "true"})
    kms = amibot("kms")
    for key, allowed in ((unmarked, False), (marked, True)):
        policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        if allowed:
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
            continue
        with pytest.raises(ClientError) as excinfo:
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
        assert code(excinfo) == "AccessDeniedException"


def test_bot_role_assumes_only_the_configured_roles(sandbox):
    sandbox.attach_bot_policy(bot_role_policy([f"arn:aws:iam::{A}:role/amibot"]))
    sts = sandbox.session(BOT_ACCOUNT).client("sts")
    sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/amibot", RoleSessionName="ok")
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/admin", RoleSessionName="no")
    assert code(excinfo) == "AccessDenied"


def test_a_call_outside_the_policy_fails(sandbox, amibot):
    with pytest.raises(ClientError) as excinfo:
        amibot("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    assert code(excinfo) == "UnauthorizedOperation"


# --------------------------------------------------------------------------- SimulatePrincipalPolicy


def test_simulate_principal_policy_evaluates_the_roles_policies(sandbox):
    key = f"arn:aws:kms:{R1}:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    launcher = sandbox.attach_role_policy(B, "team-launcher", {"Version": "2012-10-17", "Statement": [
        {"Sid": "UseSharedKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:CreateGrant"], "Resource": key,
         "Condition": {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}},
        {"Sid": "NoEncrypt", "Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"},
    ]})
    iam = sandbox.client("iam", B)
    results = iam.simulate_principal_policy(
        PolicySourceArn=launcher, ActionNames=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"], ResourceArns=[key],
        ContextEntries=[{"ContextKeyName": "kms:ViaService", "ContextKeyValues": [f"ec2.{R1}.amazonaws.com"], "ContextKeyType": "string"}],
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {"kms:Decrypt": "allowed", "kms:DescribeKey": "implicitDeny", "kms:Encrypt": "explicitDeny"}
    without_context = iam.simulate_principal_policy(PolicySourceArn=launcher, ActionNames=["kms:Decrypt"], ResourceArns=[key])
    assert without_context["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    with pytest.raises(ClientError) as excinfo:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{B}:role/nobody", ActionNames=["kms:Decrypt"])
    assert code(excinfo) == "NoSuchEntity"


def test_the_generated_policies_are_what_iam_accepts_in_moto(sandbox):
    """moto validates a policy document on PutRolePolicy: the generated one passes."""
    arn = sandbox.attach_role_policy(A, ROLE_NAME, member_account_policy())
    document = sandbox.client("iam", A).get_role_policy(RoleName=ROLE_NAME, PolicyName="policy")["PolicyDocument"]
    assert arn.endswith(":role/amibot") and json.loads(json.dumps(document))["Statement"]


def test_retire_statements_only_where_enabled_and_only_on_tagged_images(sandbox):
    sandbox.set_consistency_delay(0)
    tagged = sandbox.create_image(A, R1, tags={"lifecycle": "retirable"})
    untagged = sandbox.create_image(A, R1)
    sandbox.attach_role_policy(A, ROLE_NAME, member_account_policy())  # retire not enabled
    ec2 = sandbox.role_session(A).client("ec2", region_name=R1)
    with pytest.raises(ClientError) as refused:
        ec2.disable_image(ImageId=tagged)
    assert code(refused) == "UnauthorizedOperation"
    sandbox.attach_role_policy(A, ROLE_NAME, member_account_policy(retire=True, retire_tag=("lifecycle", "retirable")))
    with pytest.raises(ClientError) as refused:
        ec2.enable_image_deprecation(ImageId=untagged, DeprecateAt="2099-01-01T00:00:00Z")
    assert code(refused) == "UnauthorizedOperation"
    ec2.disable_image(ImageId=tagged)
    ec2.deregister_image(ImageId=tagged)
