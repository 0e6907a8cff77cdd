"""IAM policies generated from what the actions declare (Cloud Custodian style).

Two policies: the bot's own role (assume the member roles) and the role in each
member account (what the actions and the preflight call there). Nothing is written
by hand, so a new action cannot silently need a permission nobody granted.
"""

from __future__ import annotations

import json

from aws.actions import ACTIONS, PREFLIGHT_PERMISSIONS


def member_account_actions() -> list[str]:
    """Every IAM action the bot uses inside a member account, sorted."""
    needed = set(PREFLIGHT_PERMISSIONS)
    for action in ACTIONS.values():
        needed.update(action.permissions)
    return sorted(needed)


def member_account_policy() -> dict:
    """The policy for the ``amibot`` role in each member account."""
    ec2 = [a for a in member_account_actions() if a.startswith("ec2:")]
    kms = [a for a in member_account_actions() if a.startswith("kms:")]
    other = [a for a in member_account_actions() if not a.startswith(("ec2:", "kms:"))]
    statements = [
        {"Sid": "AmiOperations", "Effect": "Allow", "Action": ec2, "Resource": "*"},
        # Key ARNs are only known per request; the key policies decide which keys
        # the role may touch. No Encrypt/Decrypt of data: grants and metadata only.
        {"Sid": "KeysOfSharedImages", "Effect": "Allow", "Action": kms, "Resource": "*"},
    ]
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
