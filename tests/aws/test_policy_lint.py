"""An outside linter on the generated member policy: parliament (Duo Labs' IAM linter,
with its community auditors) and its copy of AWS's Service Authorization Reference.

What parliament still reports, and why it is accepted:
* PERMISSIONS_MANAGEMENT_ACTIONS: sharing an AMI *is* changing who may use it
  (ModifySnapshotAttribute, CreateGrant, RevokeGrant, PutKeyPolicy), each under the
  conditions tests/offline/test_iam_enforcement.py evaluates.

The member policy (amibot-member) has no escalation path: iam:PassRole lives only in
the migrate add-on (amibot-migrate), attached only in accounts with ``migrate = true``.
A role holding both is what parliament flags as ``CreateEC2WithExistingIP``
(iam:PassRole with ec2:RunInstances) — by action name, whatever the resources — and
there the PassRole statement names only the roles the config lists (or the
``/amibot-launch/`` path), and only for EC2.
"""

from __future__ import annotations

import json

import parliament
import pytest

from aws.iam import DEFAULT_PASS_ROLES, MANAGED_POLICY_LIMIT, member_account_policy, member_policy, migrate_policy, policy_size



ACCEPTED = {"PERMISSIONS_MANAGEMENT_ACTIONS"}


def findings(policy: dict) -> list:
    return parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True).findings


def resource_types(action: str) -> list[str]:
    """The resource types AWS lists for an action (parliament's iam_definition)."""
    prefix, name = action.split(":")
    service = next(s for s in parliament.iam_definition if s["prefix"] == prefix)
    privilege = next(p for p in service["privileges"] if p["privilege"] == name)
    return [r["resource_type"] for r in privilege["resource_types"] if r["resource_type"]]


@pytest.mark.parametrize("policy", [member_policy(), member_policy(retire=True), member_policy(retire=True, retire_tag=("lifecycle", "retirable")), migrate_policy()],
                         ids=["member", "member-retire", "member-retire-tagged", "migrate"])
def test_parliament_finds_no_malformed_policy_no_star_resource_and_no_escalation_path(policy):
    found = findings(policy)
    assert {f.issue for f in found} <= ACCEPTED, [(f.issue, f.detail, f.location) for f in found]


def test_a_role_holding_the_migrate_add_on_may_pass_only_the_named_roles_and_only_to_ec2():
    found = findings(member_account_policy(migrate=True))
    escalations = [f.location for f in found if f.issue == "PRIVILEGE_ESCALATION"]
    assert [(e["type"], sorted(e["actions"])) for e in escalations] == [("CreateEC2WithExistingIP", ["ec2:runinstances", "iam:passrole"])]
    [pass_role] = [s for s in migrate_policy()["Statement"] if "iam:PassRole" in s["Action"]]
    assert pass_role["Resource"] == [DEFAULT_PASS_ROLES]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    named = migrate_policy(pass_roles=["arn:aws:iam::111111111111:role/web-role"])
    assert next(s for s in named["Statement"] if "iam:PassRole" in s["Action"])["Resource"] == ["arn:aws:iam::111111111111:role/web-role"]


def test_resource_star_only_on_actions_without_resource_level_permissions():
    policy = member_account_policy(retire=True)
    starred = [a for s in policy["Statement"] if s["Resource"] == "*" for a in s["Action"]]
    assert starred and all(resource_types(a) == [] for a in starred), {a: resource_types(a) for a in starred}
    assert [s["Sid"] for s in policy["Statement"] if s["Resource"] == "*"] == [
        "ReadsWithoutResourceLevelPermissions", "RetireReads", "MigrateReadsWithoutResourceLevelPermissions"]


def test_the_member_policy_fits_a_managed_policy():
    """IAM quotas: a managed policy holds 6,144 characters, whitespace not counted."""
    assert policy_size(member_policy(retire=True, retire_tag=("lifecycle", "retirable"))) < MANAGED_POLICY_LIMIT
    assert policy_size(migrate_policy()) < MANAGED_POLICY_LIMIT
