"""Every action declares its IAM permissions, and the generated policy covers them."""

import pytest

from aws.actions import ACTIONS, Action, register
from aws.iam import member_account_actions, member_account_policy


def test_every_action_declares_permissions():
    assert ACTIONS, "no actions registered"
    for name, action in ACTIONS.items():
        assert action.permissions, f"{name} declares no permissions"
        for permission in action.permissions:
            service, _, operation = permission.partition(":")
            assert service in ("ec2", "kms", "sts", "iam") and operation[:1].isupper(), permission


def test_an_action_without_permissions_cannot_be_registered():
    class Careless(Action):
        name = "careless"
        permissions = ()

    with pytest.raises(TypeError):
        register(Careless)


def test_member_policy_contains_every_declared_permission_and_nothing_public():
    # With retire = true (the account's policy then has Retire's own statements).
    policy_actions = {a for s in member_account_policy(retire=True)["Statement"] for a in s["Action"]}
    for action in ACTIONS.values():
        assert set(action.permissions) <= policy_actions
    assert set(member_account_actions(retire=True)) == policy_actions
    assert not any(a.endswith("*") for a in policy_actions)
    assert "kms:Encrypt" not in policy_actions
    # PutKeyPolicy can lock people out of a key: only the organisation-share
    # key-policy actions (which touch nothing but their own Sid) may use it.
    assert {n for n, a in ACTIONS.items() if "kms:PutKeyPolicy" in a.permissions} == {"kms.add_key_policy_statement", "kms.remove_key_policy_statements"}


def test_retire_statements_only_for_accounts_that_enable_it():
    plain = member_account_policy()
    assert not {"ec2:DisableImage", "ec2:EnableImageDeprecation", "rbin:ListRules"} & {a for s in plain["Statement"] for a in s["Action"]}
    tagged = member_account_policy(retire=True, retire_tag=("lifecycle", "retirable"))
    retire = next(s for s in tagged["Statement"] if s["Sid"] == "RetireImages")
    assert retire["Condition"] == {"StringEquals": {"aws:ResourceTag/lifecycle": "retirable"}}
    assert all(":image/" in r or ":snapshot/" in r for r in retire["Resource"])  # never instances
    assert not any(a.startswith("ec2:Terminate") for a in retire["Action"])
