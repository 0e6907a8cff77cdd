"""What a real launch needs, asked of IAM (issue 15 §4): the aggregated answer per
action with ``ResourceSpecificResults``; a decision that depends on a context key
amibot did not supply is "cannot tell", never "allowed"; RunInstances on the launch's
resources, tags on create and PassRole are asked too, each denial named with its
resource in words (IAM API Reference: "SimulatePrincipalPolicy", "EvaluationResult")."""

from __future__ import annotations

from aws.actions.launchroles import image_arn, simulate_launch_roles

B, R1 = "222222222222", "us-east-1"
KEY = f"arn:aws:kms:{R1}:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = "ami-0123456789abcdef0"
PROFILE_ROLE = f"arn:aws:iam::{B}:role/app/web"
KEY_OK = {"Effect": "Allow", "Action": "kms:*", "Resource": KEY}
TAGS_ON_LAUNCH = {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                  "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}}


def role(sandbox, name, *statements):
    return sandbox.attach_role_policy(B, name, {"Version": "2012-10-17", "Statement": list(statements)})


def ask(sandbox, arn, pass_roles=()):
    return simulate_launch_roles(sandbox.client("iam", B), [arn], [KEY], R1, IMAGE, list(pass_roles))[0]


def test_a_role_allowed_everything_a_launch_needs_can_launch(sandbox):
    arn = role(sandbox, "full", KEY_OK, TAGS_ON_LAUNCH, {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"},
               {"Effect": "Allow", "Action": "iam:PassRole", "Resource": PROFILE_ROLE,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}})
    answer = ask(sandbox, arn, [PROFILE_ROLE])
    assert answer.can_launch, answer


def test_run_instances_on_the_image_alone_is_not_a_launch(sandbox):
    arn = role(sandbox, "image-only", KEY_OK, TAGS_ON_LAUNCH,
               {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": image_arn(R1, "*")})
    answer = ask(sandbox, arn, [PROFILE_ROLE])
    assert not answer.can_launch and not answer.unknown
    line = answer.line()
    assert f"ec2:RunInstances on arn:aws:ec2:{R1}:{B}:subnet/* (the subnet)" in line
    assert f"arn:aws:ec2:{R1}:{B}:security-group/* (the security group)" in line
    assert f"iam:PassRole on {PROFILE_ROLE} (the instance role it passes)" in line
    assert "on arn:aws:ec2:" + R1 + "::image/" not in line  # the image itself is allowed


def test_a_decision_that_depends_on_a_key_amibot_did_not_supply_is_cannot_tell(sandbox):
    arn = role(sandbox, "typed", KEY_OK, TAGS_ON_LAUNCH, {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                                                          "Condition": {"StringEquals": {"ec2:InstanceType": "t3.micro"}}})
    raw = sandbox.client("iam", B).simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["ec2:RunInstances"], ResourceArns=[image_arn(R1, IMAGE)])["EvaluationResults"]
    assert len(raw) == 1 and raw[0]["ResourceSpecificResults"][0]["MissingContextValues"] == ["ec2:InstanceType"]
    answer = ask(sandbox, arn)
    assert not answer.can_launch and not answer.denied
    assert "*cannot tell*" in answer.line() and "ec2:InstanceType" in answer.line() and "can launch it" not in answer.line()
