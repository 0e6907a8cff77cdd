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

# The tag amibot puts on everything it creates (at creation, in TagSpecifications):
# provenance, and what the undo of an interrupted step looks for.
REQUEST_TAG = "amibot:request"
# What the role may delete carries this tag (aws.actions.disposable): a test-launch
# instance, a copy not yet delivered, a migration image until the migration is reported.
from aws.actions.disposable import DISPOSABLE_TAG  # noqa: E402 (part of the policy's contract)
# A launch template amibot may change (update-lt) carries this tag, set by its owner.
from aws.actions.launch_template import MARK_TAG as LAUNCH_TEMPLATE_TAG  # noqa: E402
# iam:PassRole's resources when the config names none: roles under this path.
DEFAULT_PASS_ROLE_PATH = "/amibot-launch/"
DEFAULT_PASS_ROLES = "arn:aws:iam::*:role" + DEFAULT_PASS_ROLE_PATH + "*"

# The API calls whose TagSpecifications amibot uses: ec2:CreateTags is allowed only
# inside them (ec2:CreateAction), never on its own.
CREATE_ACTIONS_THAT_TAG = ("CopyImage", "CreateImage", "RunInstances")
# Deleting is allowed only on resources tagged disposable.
DELETE_ACTIONS = frozenset({"ec2:TerminateInstances", "ec2:DeregisterImage", "ec2:DeleteSnapshot"})
# The tag operation's own actions (aws.actions.tags): their presence adds the statement
# that lets amibot tag outside a create call, without amibot:* keys.
TAG_OPERATION_ACTIONS = frozenset({"ec2:CreateTags", "ec2:DeleteTags"})
# update-lt's writes: only on templates their owners tagged LAUNCH_TEMPLATE_TAG.
LAUNCH_TEMPLATE_WRITES = frozenset({"ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplateVersions"})

# Resource ARNs by type ("Actions, resources, and condition keys for Amazon EC2",
# Service Authorization Reference): images and snapshots have no account in their ARN.
IMAGE = "arn:aws:ec2:*::image/*"
SNAPSHOT = "arn:aws:ec2:*::snapshot/*"
INSTANCE = "arn:aws:ec2:*:*:instance/*"
VOLUME = "arn:aws:ec2:*:*:volume/*"
LAUNCH_TEMPLATE = "arn:aws:ec2:*:*:launch-template/*"
KEY = "arn:aws:kms:*:*:key/*"
# RunInstances authorises every resource the launch uses.
RUN_INSTANCES_RESOURCES = [IMAGE, SNAPSHOT, INSTANCE, VOLUME, "arn:aws:ec2:*:*:network-interface/*",
                           "arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*:*:key-pair/*"]
# The resource types of the EC2 actions that have resource-level permissions
# (the rest, Describe* and Get*, take only "*": NO_RESOURCE_LEVEL says why).
EC2_RESOURCES = {
    "ec2:CopyImage": [IMAGE, SNAPSHOT], "ec2:CreateImage": [IMAGE, INSTANCE, SNAPSHOT],
    "ec2:DescribeImageAttribute": [IMAGE], "ec2:ModifyImageAttribute": [IMAGE],
    "ec2:DescribeSnapshotAttribute": [SNAPSHOT], "ec2:ModifySnapshotAttribute": [SNAPSHOT],
    "ec2:DescribeInstanceAttribute": [INSTANCE], "ec2:RunInstances": RUN_INSTANCES_RESOURCES,
}
# Resource "*" remains only for actions with no resource-level permission (the
# Service Authorization Reference lists no resource type for them): reads and lists.
NO_RESOURCE_LEVEL = "Describe*/Get* reads and kms:ListAliases: AWS offers no resource-level permission for them"


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
    statement: dict = {"Sid": "RetireImages", "Effect": "Allow", "Action": changes, "Resource": [IMAGE, SNAPSHOT]}
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
        needed.discard("iam:GetInstanceProfile")
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


def pass_role_resources(pass_roles: list[str] | None = None) -> list[str]:
    """The roles migrate may pass to EC2: the ones the config names
    (``accounts.<a>.pass_roles``), else every role under DEFAULT_PASS_ROLE_PATH."""
    return sorted(set(pass_roles or [])) or [DEFAULT_PASS_ROLES]


def _statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


# Auto Scaling's service-linked role, the grantee of `autoscaling_grant` (aws.actions.autoscaling).
AUTOSCALING_ROLE = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def grantee_principals(account_ids: list[str] | None = None) -> list[str]:
    """Who amibot's grants may name (kms:GranteePrincipal): the configured accounts
    (any principal of theirs: the account's root, Auto Scaling's role), else any
    account's root and Auto Scaling role (no config given)."""
    if account_ids:
        return ["arn:aws:iam::" + a + ":*" for a in sorted(set(account_ids))]
    return ["arn:aws:iam::*:root", "arn:aws:iam::*:" + AUTOSCALING_ROLE]


def _typed_statements(prefix: str, typed: list[str]) -> list[dict]:
    """The EC2 actions with resource-level permissions, one statement per resource set."""
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for action in typed:
        by_resources.setdefault(tuple(EC2_RESOURCES[action]), []).append(action)
    return [_statement(f"{prefix}{n + 1}", group, list(resources))
            for n, (resources, group) in enumerate(sorted(by_resources.items(), key=lambda kv: kv[1]))]


def migrate_actions() -> list[str]:
    """What only migrate needs (its own policy, ``migrate_policy``): creating an image
    of an instance, reading the instance, and passing its role to the new one."""
    return sorted(set(member_account_actions(migrate=True)) - set(member_account_actions(migrate=False)))


def migrate_policy(pass_roles: list[str] | None = None) -> dict:
    """The migrate add-on: a second policy on the member role, only in accounts with
    ``migrate = true`` (the default). It is where iam:PassRole lives, so the member
    policy itself gives no way to launch with a role (no escalation path); with it the
    role may pass only the named roles (``pass_role_resources``), and only to EC2."""
    actions = migrate_actions()
    statements = _typed_statements("MigrateInstances", [a for a in actions if a in EC2_RESOURCES])
    reads = [a for a in actions if a.startswith("ec2:") and a not in EC2_RESOURCES]
    if reads:
        statements.append(_statement("MigrateReadsWithoutResourceLevelPermissions", reads, "*"))
    if "iam:GetInstanceProfile" in actions:
        # The migrate preflight reads which roles the instance's profile would pass.
        statements.append(_statement("ReadInstanceProfiles", ["iam:GetInstanceProfile"], ["arn:aws:iam::*:instance-profile/*"]))
    if "iam:PassRole" in actions:
        statements.append(_statement("PassNamedInstanceRolesToEc2Only", ["iam:PassRole"], pass_role_resources(pass_roles),
                                     {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
    return {"Version": "2012-10-17", "Statement": statements}


def member_account_policy(*, migrate: bool = True, pass_roles: list[str] | None = None, accounts: list[str] | None = None,
                          retire: bool = False, retire_tag: tuple[str, str] | None = None) -> dict:
    """Everything the ``amibot`` role in a member account may do, as one document:
    the member policy (``member_policy``) plus, with ``migrate``, the migrate add-on
    (``migrate_policy``) — what the role holds when both are attached."""
    policy = member_policy(accounts=accounts, retire=retire, retire_tag=retire_tag)
    if migrate:
        policy["Statement"] += migrate_policy(pass_roles)["Statement"]
    return policy


def member_policy(*, accounts: list[str] | None = None, retire: bool = False, retire_tag: tuple[str, str] | None = None) -> dict:
    """The policy for the ``amibot`` role in each member account, migrate's own
    actions aside (``migrate_policy``): least privilege, with every condition evaluated
    by the sandbox (docs/least-privilege.md). ``accounts``: the configured account ids,
    the only grantees (grantee_principals); ``retire``: the account has
    ``retire = true`` (Retire's own statements)."""
    actions = member_account_actions(migrate=False)
    special = DELETE_ACTIONS | TAG_OPERATION_ACTIONS | LAUNCH_TEMPLATE_WRITES | {"kms:CreateGrant", "kms:PutKeyPolicy", "kms:ListAliases"}
    reads = [a for a in actions if a.startswith("ec2:") and a not in special and a not in EC2_RESOURCES]
    typed = [a for a in actions if a in EC2_RESOURCES]
    kms = [a for a in actions if a.startswith("kms:") and a not in KMS_USED_THROUGH_EC2 and a not in special]
    kms_via_ec2 = [a for a in actions if a in KMS_USED_THROUGH_EC2]
    other = [a for a in actions if not a.startswith(("ec2:", "kms:")) and a not in special]
    statements: list[dict] = [_statement("ReadsWithoutResourceLevelPermissions", reads + ["kms:ListAliases"], "*")]
    statements += _typed_statements("AmiOperations", typed)
    if "ec2:CreateTags" in actions:
        # Tags at creation only: on images and snapshots in CopyImage/CreateImage, on
        # instances and volumes in RunInstances ("Grant permission to tag Amazon EC2
        # resources during creation", EC2 User Guide).
        statements.append(_statement("TagImagesWhenCreating", ["ec2:CreateTags"], [IMAGE, SNAPSHOT],
                                     {"StringEquals": {"ec2:CreateAction": [a for a in CREATE_ACTIONS_THAT_TAG if a != "RunInstances"]}}))
        statements.append(_statement("TagInstancesWhenLaunching", ["ec2:CreateTags"], [INSTANCE, VOLUME],
                                     {"StringEquals": {"ec2:CreateAction": "RunInstances"}}))
    if TAG_OPERATION_ACTIONS <= set(actions):
        # `/ami tag` (an approved operation) tags an existing AMI and its snapshots, and
        # its undo removes what it added: never amibot's own keys. Null: a DeleteTags
        # without keys removes every tag, and ForAllValues holds on an absent key.
        statements.append(_statement("TagImagesWithoutAmibotKeys", sorted(TAG_OPERATION_ACTIONS), [IMAGE, SNAPSHOT],
                                     {"ForAllValues:StringNotLike": {"aws:TagKeys": ["amibot:*"]}, "Null": {"aws:TagKeys": "false"}}))
        statements.append(_statement("DeliverRemovesOnlyDisposable", ["ec2:DeleteTags"], [IMAGE, SNAPSHOT],
                                     {"ForAllValues:StringEquals": {"aws:TagKeys": [DISPOSABLE_TAG]}, "Null": {"aws:TagKeys": "false"}}))
    deletes = sorted(DELETE_ACTIONS & set(actions))
    if deletes:
        statements.append(_statement("DeleteOnlyDisposable", deletes, [IMAGE, SNAPSHOT, INSTANCE],
                                     {"StringEquals": {f"aws:ResourceTag/{DISPOSABLE_TAG}": "true"}}))
    lt_writes = sorted(LAUNCH_TEMPLATE_WRITES & set(actions))
    if lt_writes:
        statements.append(_statement("OnlyLaunchTemplatesMarkedForAmibot", lt_writes, [LAUNCH_TEMPLATE],
                                     {"StringEquals": {f"aws:ResourceTag/{LAUNCH_TEMPLATE_TAG}": "true"}}))
    # Key ARNs are only known per request; the key policies decide which keys the
    # role may touch. Metadata and grant bookkeeping only here.
    statements.append(_statement("KeysOfSharedImages", kms, [KEY]))
    if "kms:CreateGrant" in actions:
        # To the configured accounts only, and with the launch operations only
        # ("Controlling access to grants": kms:GranteePrincipal, kms:GrantOperations).
        statements.append(_statement("GrantOnlyLaunchOperationsToConfiguredAccounts", ["kms:CreateGrant"], [KEY],
                                     {"ForAllValues:StringEquals": {"kms:GrantOperations": granted_operations()},
                                      "StringLike": {"kms:GranteePrincipal": grantee_principals(accounts)}}))
    if kms_via_ec2:
        statements.append(_statement("KeysUsedByEc2ForTheRole", kms_via_ec2, [KEY], {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}))
        # EBS creates grants for the volumes it makes from encrypted snapshots.
        statements.append(_statement("GrantsEc2MakesForTheRole", ["kms:CreateGrant"], [KEY],
                                     {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}, "Bool": {"kms:GrantIsForAWSResource": "true"}}))
    if "kms:PutKeyPolicy" in actions:
        statements.append(_statement("KeyPoliciesOfKeysMarkedForOrgSharing", ["kms:PutKeyPolicy"], [KEY],
                                     {"StringEquals": {f"aws:ResourceTag/{ORG_SHARE_TAG}": "true"}}))
    if other:
        # iam:SimulatePrincipalPolicy: the launch_roles check, on roles only.
        statements.append(_statement("SimulateLaunchRoles", other, ["arn:aws:iam::*:role/*"]))
    if retire:
        statements += retire_statements(retire_tag)
    return {"Version": "2012-10-17", "Statement": statements}


# IAM's quota for a managed policy: "6,144 characters", whitespace not counted
# (IAM and AWS STS quotas, IAM User Guide).
MANAGED_POLICY_LIMIT = 6144


def policy_size(policy: dict) -> int:
    """The characters IAM counts against its size quota (JSON without whitespace)."""
    return len(json.dumps(policy, separators=(",", ":")))


def configured_pass_roles(accounts: object) -> list[str]:
    """Every account's ``pass_roles`` (an iterable of AccountConfig-like objects)."""
    return sorted({r for a in accounts for r in getattr(a, "pass_roles", ())})


def bot_role_policy(role_arns: list[str]) -> dict:
    """The policy for the bot's own role: assume exactly the configured member roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": sorted(role_arns) or ["arn:aws:iam::*:role/amibot"]}],
    }


def render(role_arns: list[str], *, migrate: bool | list[str] = True, pass_roles: list[str] | None = None, accounts: list[str] | None = None,
           retire: dict[str, tuple[str, str] | None] | None = None) -> str:
    """The policies as readable JSON, for ``amibot iam-policy``, each with its size
    against IAM's managed-policy quota: the bot's role, the member policy, the migrate
    add-on (``migrate``: False to leave it out, or the aliases with ``migrate = true``),
    and per account with ``retire = true`` (alias -> ``retire_tag``) its member policy
    with Retire's statements."""
    bot, member = bot_role_policy(role_arns), member_policy(accounts=accounts)

    def size(policy: dict) -> str:
        over = " — OVER THE QUOTA: IAM will refuse it" if policy_size(policy) > MANAGED_POLICY_LIMIT else ""
        return f" — {policy_size(policy)} of {MANAGED_POLICY_LIMIT} characters (IAM's managed-policy quota, whitespace not counted){over}\n"

    text = (
        "# Bot role (where amibot runs)" + size(bot) + json.dumps(bot, indent=2)
        + "\n\n# Member-account role, policy amibot-member (in every account in the config" + (" without retire = true" if retire else "") + ")"
        + size(member) + json.dumps(member, indent=2) + "\n"
    )
    if migrate:
        where = ("in " + ", ".join(f"`{a}`" for a in migrate)) if isinstance(migrate, list) else "in every account where instances may be migrated"
        add_on = migrate_policy(pass_roles)
        text += (f"\n# Member-account role, policy amibot-migrate ({where}: migrate = true; its only iam:PassRole)"
                 + size(add_on) + json.dumps(add_on, indent=2) + "\n")
    for alias, tag in sorted((retire or {}).items()):
        policy = member_policy(accounts=accounts, retire=True, retire_tag=tag)
        text += (f"\n# Member-account role in `{alias}`, policy amibot-member (retire = true" + (f", retire_tag {tag[0]}={tag[1]}" if tag else "") + ")"
                 + size(policy) + json.dumps(policy, indent=2) + "\n")
    return text
