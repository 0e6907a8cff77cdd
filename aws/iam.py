"""IAM policies generated from what the actions declare (Cloud Custodian style).

Two policies: the bot's own role (assume the member roles) and the role in each
member account (what the actions and the preflight call there). Nothing is written
by hand, so a new action cannot silently need a permission nobody granted.
"""

from __future__ import annotations

import json

from aws.actions import ACTIONS, PREFLIGHT_PERMISSIONS
from aws.audit import AUDIT_PERMISSIONS


def member_account_actions() -> list[str]:
    """Every IAM action the bot uses inside a member account, sorted."""
    needed = set(PREFLIGHT_PERMISSIONS) | set(AUDIT_PERMISSIONS)  # the audit and drift check read too
    for action in ACTIONS.values():
        needed.update(action.permissions)
    return sorted(needed)


# KMS operations that touch data keys. amibot never calls them itself: EBS does, on
# the role's behalf, when the role launches from or copies an encrypted AMI (the
# source key through its grant, the destination key for the copy's snapshots). So
# they are allowed only through EC2 (kms:ViaService), never for direct calls.
KMS_USED_THROUGH_EC2 = frozenset(
    {"kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKey"}
)


def member_account_policy() -> dict:
    """The policy for the ``amibot`` role in each member account."""
    actions = member_account_actions()
    ec2 = [a for a in actions if a.startswith("ec2:")]
    kms = [a for a in actions if a.startswith("kms:") and a not in KMS_USED_THROUGH_EC2]
    kms_via_ec2 = [a for a in actions if a in KMS_USED_THROUGH_EC2]
    other = [a for a in actions if not a.startswith(("ec2:", "kms:"))]
    statements = [
        {"Sid": "AmiOperations", "Effect": "Allow", "Action": ec2, "Resource": "*"},
        # Key ARNs are only known per request; the key policies decide which keys
        # the role may touch. Grants and metadata only here.
        {"Sid": "KeysOfSharedImages", "Effect": "Allow", "Action": kms, "Resource": "*"},
    ]
    if kms_via_ec2:
        statements.append(
            {
                "Sid": "KeysUsedByEc2ForTheRole",
                "Effect": "Allow",
                "Action": kms_via_ec2,
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}},
            }
        )
    if other:
        statements.append({"Sid": "Other", "Effect": "Allow", "Action": other, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def bot_role_policy(role_arns: list[str]) -> dict:
    """The policy for the bot's own role: assume exactly the configured member roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": sorted(role_arns) or ["arn:aws:iam::*:role/amibot"]}],
    }


def render(role_arns: list[str]) -> str:
    """Both policies as readable JSON, for ``amibot iam-policy``."""
    return (
        "# Bot role (where amibot runs)\n"
        + json.dumps(bot_role_policy(role_arns), indent=2)
        + "\n\n# Member-account role (in every account in the config)\n"
        + json.dumps(member_account_policy(), indent=2)
        + "\n"
    )
