"""IAM policies generated from what the actions declare (Cloud Custodian style).

Two policies: the bot's own role (assume the member roles) and the role in each
member account (what the actions and the preflight call there). Nothing is written
by hand, so a new action cannot silently need a permission nobody granted.
"""

from __future__ import annotations

import json

from aws.actions import ACTIONS, PREFLIGHT_PERMISSIONS, SHARE_GRANT_OPERATIONS
from aws.audit import AUDIT_PERMISSIONS
from aws.doctor import DOCTOR_PERMISSIONS
from aws.actions.keypolicy import ORG_SHARE_TAG  # noqa: F401 (re-exported: part of the policy's contract)


MIGRATE_MODULE = "aws.actions.migrate"
RETIRE_MODULE = "aws.actions.retire"

# The tag amibot puts on everything it creates (at creation, in TagSpecifications);
# what it may delete or terminate must carry it.
REQUEST_TAG = "amibot:request"

# The API calls whose TagSpecifications amibot uses: ec2:CreateTags is allowed only
# inside them (ec2:CreateAction), never on its own.
CREATE_ACTIONS_THAT_TAG = ("CopyImage", "CreateImage", "RunInstances")
# Deleting is allowed only on resources tagged by amibot.
DELETE_ACTIONS = frozenset({"ec2:TerminateInstances", "ec2:DeregisterImage", "ec2:DeleteSnapshot"})
# The tag operation's own actions (aws.actions.tags): their presence adds the statement
# that lets amibot tag outside a create call, without amibot:* keys.
TAG_OPERATION_ACTIONS = frozenset({"ec2:CreateTags", "ec2:DeleteTags"})


def _uses_migrate(action: object) -> bool:
    return type(action).__module__ == MIGRATE_MODULE


def _uses_retire(action: object) -> bool:
    return type(action).__module__ == RETIRE_MODULE


def retire_actions() -> list[str]:
    """What `/ami retire` changes and reads (its own statements, ``retire_statements``)."""
    from aws.actions.retire import RETIRE_READ_PERMISSIONS

    changes = {p for a in ACTIONS.values() if _uses_retire(a) for p in a.permissions}
    return sorted(changes | set(RETIRE_READ_PERMISSIONS))


def retire_statements(tag: tuple[str, str] | None = None) -> list[dict]:
    """Retire's own statements, for an account with ``retire = true``: images and
    their snapshots only (never instances); with ``tag`` (``retire_tag``) only
    those carrying it. Its reads (launch templates, Auto Scaling, instances by
    image, Recycle Bin rules) in a second statement."""
    from aws.actions.retire import RETIRE_READ_PERMISSIONS

    changes = sorted({p for a in ACTIONS.values() if _uses_retire(a) for p in a.permissions} - set(PREFLIGHT_PERMISSIONS))
    statement: dict = {"Sid": "RetireImages", "Effect": "Allow", "Action": changes, "Resource": [
        "arn:*:ec2:*::image/*", "arn:*:ec2:*::snapshot/*"]}
    if tag:
        statement["Condition"] = {"StringEquals": {f"aws:ResourceTag/{tag[0]}": tag[1]}}
    return [statement, {"Sid": "RetireReads", "Effect": "Allow", "Action": sorted(RETIRE_READ_PERMISSIONS), "Resource": "*"}]


def member_account_actions(*, migrate: bool = True, retire: bool = False) -> list[str]:
    """Every IAM action the bot uses inside a member account, sorted (without the
    migrate actions' own when ``migrate`` is False; with retire's only when
    ``retire``)."""
    # The doctor, the audit and the drift check read too.
    needed = set(PREFLIGHT_PERMISSIONS) | set(DOCTOR_PERMISSIONS) | set(AUDIT_PERMISSIONS)
    for action in ACTIONS.values():
        if _uses_retire(action):
            continue
        if migrate or not _uses_migrate(action):
            needed.update(action.permissions)
    if retire:
        needed.update(retire_actions())
    if not migrate:
        needed.discard("iam:PassRole")
    return sorted(needed)


# KMS operations that touch data keys. amibot never calls them itself: EBS does, on
# the role's behalf, when the role launches from or copies an encrypted AMI (the
# source key through its grant, the destination key for the copy's snapshots). So
# they are allowed only through EC2 (kms:ViaService), never for direct calls.
KMS_USED_THROUGH_EC2 = frozenset(
    {"kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKey"}
)


def granted_operations() -> list[str]:
    """The KMS operations amibot ever puts in a grant (to a target account, to Auto
    Scaling's role, the verification's DryRun): CreateGrant may name no others."""
    from aws.actions.autoscaling import AUTOSCALING_GRANT_OPERATIONS

    return sorted(set(SHARE_GRANT_OPERATIONS) | set(AUTOSCALING_GRANT_OPERATIONS))


def member_account_policy(*, migrate: bool = True, retire: bool = False, retire_tag: tuple[str, str] | None = None) -> dict:
    """The policy for the ``amibot`` role in each member account: least privilege,
    with every condition evaluated by the sandbox (docs/least-privilege.md).
    ``retire``: the account has ``retire = true`` (Retire's own statements)."""
    actions = member_account_actions(migrate=migrate)
    special = DELETE_ACTIONS | {"ec2:CreateTags", "iam:PassRole", "kms:CreateGrant", "kms:PutKeyPolicy"}
    ec2 = [a for a in actions if a.startswith("ec2:") and a not in special]
    kms = [a for a in actions if a.startswith("kms:") and a not in KMS_USED_THROUGH_EC2 and a not in special]
    kms_via_ec2 = [a for a in actions if a in KMS_USED_THROUGH_EC2]
    other = [a for a in actions if not a.startswith(("ec2:", "kms:")) and a not in special]
    statements: list[dict] = [{"Sid": "AmiOperations", "Effect": "Allow", "Action": ec2, "Resource": "*"}]
    if "ec2:CreateTags" in actions:
        statements.append({
            "Sid": "TagOnlyWhenCreating", "Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": "*",
            "Condition": {"StringEquals": {"ec2:CreateAction": list(CREATE_ACTIONS_THAT_TAG)}},
        })
    if "ec2:CreateTags" in actions and TAG_OPERATION_ACTIONS <= set(actions):
        # `/ami tag` (an approved operation) tags an existing AMI and its snapshots,
        # but never with amibot's own keys: amibot:request is what allows deleting.
        statements.append({
            "Sid": "TagWithoutAmibotKeys", "Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": "*",
            "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": ["amibot:*"]}},
        })
    deletes = sorted(DELETE_ACTIONS & set(actions))
    if deletes:
        statements.append({
            "Sid": "DeleteOnlyWhatAmibotMade", "Effect": "Allow", "Action": deletes, "Resource": "*",
            "Condition": {"Null": {f"aws:ResourceTag/{REQUEST_TAG}": "false"}},
        })
    if "iam:PassRole" in actions:
        statements.append({
            "Sid": "PassInstanceRolesToEc2Only", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        })
    # Key ARNs are only known per request; the key policies decide which keys the
    # role may touch. Metadata and grant bookkeeping only here.
    statements.append({"Sid": "KeysOfSharedImages", "Effect": "Allow", "Action": kms, "Resource": "*"})
    if "kms:CreateGrant" in actions:
        statements.append({
            "Sid": "GrantOnlyLaunchOperations", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"kms:GrantOperations": granted_operations()}},
        })
    if kms_via_ec2:
        statements.append({
            "Sid": "KeysUsedByEc2ForTheRole", "Effect": "Allow", "Action": kms_via_ec2, "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}},
        })
        # EBS creates grants for the volumes it makes from encrypted snapshots.
        statements.append({
            "Sid": "GrantsEc2MakesForTheRole", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        })
    if "kms:PutKeyPolicy" in actions:
        statements.append({
            "Sid": "KeyPoliciesOfKeysMarkedForOrgSharing", "Effect": "Allow", "Action": ["kms:PutKeyPolicy"], "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{ORG_SHARE_TAG}": "true"}},
        })
    if other:
        statements.append({"Sid": "Other", "Effect": "Allow", "Action": other, "Resource": "*"})
    if retire:
        statements += retire_statements(retire_tag)
    return {"Version": "2012-10-17", "Statement": statements}


def bot_role_policy(role_arns: list[str]) -> dict:
    """The policy for the bot's own role: assume exactly the configured member roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": sorted(role_arns) or ["arn:aws:iam::*:role/amibot"]}],
    }


def render(role_arns: list[str], *, migrate: bool = True, retire: dict[str, tuple[str, str] | None] | None = None) -> str:
    """Both policies as readable JSON, for ``amibot iam-policy``. ``retire``: the
    accounts with ``retire = true`` (alias -> ``retire_tag``), each with its own
    member policy (Retire's statements added)."""
    text = (
        "# Bot role (where amibot runs)\n"
        + json.dumps(bot_role_policy(role_arns), indent=2)
        + "\n\n# Member-account role (in every account in the config" + (" without retire = true" if retire else "") + ")\n"
        + json.dumps(member_account_policy(migrate=migrate), indent=2)
        + "\n"
    )
    for alias, tag in sorted((retire or {}).items()):
        text += (f"\n# Member-account role in `{alias}` (retire = true" + (f", retire_tag {tag[0]}={tag[1]}" if tag else "") + ")\n"
                 + json.dumps(member_account_policy(migrate=migrate, retire=True, retire_tag=tag), indent=2) + "\n")
    return text
