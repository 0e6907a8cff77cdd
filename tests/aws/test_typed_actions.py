"""Typed actions: every action's params are a dataclass that loads the params dicts
stored in plans today, the action plans its own step, ``image_of`` answers which
image a step makes or uses, and the registry has no import cycle."""

from __future__ import annotations

import ast
import pathlib
from dataclasses import FrozenInstanceError, fields

import pytest

from aws.actions import ACTIONS, ActionParams, PlannedStep, get_action, image_of
from aws.actions.grants import CreateKmsGrant
from aws.actions.share import AddLaunchPermission
from aws.actions.verify import VerifyByTestLaunch

# One params dict per action, with every key the plans of today store (what a
# restart resumes from the database).
STORED = {
    "ec2.add_launch_permission": {"image_id": "ami-1", "account_ids": ["111111111111"], "organization_arn": None, "ou_arn": None},
    "ec2.remove_launch_permission": {"image_id": "ami-1", "account_ids": ["111111111111"], "organization_arn": "arn:org", "ou_arn": "arn:ou"},
    "ec2.add_snapshot_permission": {"snapshot_ids": ["snap-1"], "account_ids": ["111111111111"]},
    "ec2.remove_snapshot_permission": {"snapshot_ids": ["snap-1"], "account_ids": ["111111111111"]},
    "kms.create_grant": {"key_arn": "arn:key", "grantee_principal": "arn:root", "operations": ["Decrypt"], "grant_name": "amibot-u-1"},
    "kms.revoke_grants": {"key_arn": "arn:key", "grant_ids": ["g-1"]},
    "verify.target_access": {"image_id": "ami-1", "key_arns": ["arn:key"], "unit": "dev:eu-west-1"},
    "kms.create_autoscaling_grant": {
        "image_id": "ami-1", "key_arn": "arn:key", "key_owner_account": "222222222222", "grantee_principal": "arn:role",
        "operations": ["Decrypt"], "grant_name": "amibot-u-1-autoscaling",
    },
    "kms.add_key_policy_statement": {
        "image_id": "ami-1", "key_arn": "arn:key", "statement": {"Sid": "amibot-u-o-1"}, "expected_policy": "{}",
        "organization_id": "o-1", "ou_id": None,
    },
    "kms.remove_key_policy_statements": {"key_arn": "arn:key", "sids": ["amibot-u-o-1"], "restore_texts": []},
    "verify.launch_roles": {"image_id": "ami-1", "key_arns": ["arn:key"], "roles": ["app"], "pass_roles": []},
    "verify.test_launch": {"image_from_step": 4, "subnet_id": None, "key_arns": ["arn:key"], "poll_seconds": 30, "unit": "dev:eu-west-1"},
    "ec2.copy_image": {
        "source_image_id": "ami-1", "source_region": "eu-west-1", "source_account_id": "222222222222", "source_name": "web",
        "source_tags": {"app": "web"}, "kms_key_arn": "arn:key", "name": None, "region_tag": "eu-central-1",
        "client_token": "amibot-copy-u-dev", "unit": "dev:eu-central-1",
    },
    "ec2.deliver_image": {"image_from_step": 1},
    "ec2.wait_image_available": {"image_from_step": 1, "poll_seconds": 30, "source_key_arns": []},
    "verify.copy": {"image_from_step": 1, "kms_key_arn": "arn:key", "source_image_id": "ami-1"},
    "plan.remove_temporary": {"steps": [1, 2, 3]},
    "ec2.create_image_from_instance": {"instance_id": "i-1", "image_name": "amibot-i-1", "description": "d", "no_reboot": False, "tags": {}},
    "ec2.launch_migrated_instance": {
        "image_from_step": 1, "subnet_id": "subnet-1", "availability_zone": "eu-west-1b", "vpc_id": "vpc-1", "instance_type": "t3.micro",
        "security_group_ids": ["sg-1"], "key_name": None, "iam_instance_profile_arn": None, "tags": {"Name": "web"},
        "source_instance_id": "i-1", "client_token": "amibot-migrate-u", "poll_seconds": 30, "settings": {},
    },
    "ec2.tag_image": {"image_id": "ami-1", "snapshot_ids": ["snap-1"], "tags": {"owner": "web"}},
    "ec2.deprecate_image": {"image_id": "ami-1", "deprecate_at": "2030-01-31T00:00:00Z"},
    "ec2.disable_image": {"image_id": "ami-1"},
    "ec2.deregister_image": {"image_id": "ami-1", "delete_snapshots": True},
    "ec2.share_copy": {"image_from_step": 4, "account_ids": ["333333333333"], "kms_key_arn": None, "key_is_customer_managed": False},
    "ec2.launch_template_version": {"image_id": "ami-2", "template_id": "lt-1", "make_default": True},
}


def test_every_registered_action_has_its_own_params_and_a_stored_example():
    assert set(STORED) == set(ACTIONS)
    for name, action in ACTIONS.items():
        assert action.Params is not ActionParams, name
        assert issubclass(action.Params, ActionParams), name


@pytest.mark.parametrize("name", sorted(STORED))
def test_stored_params_load_and_keep_their_shape(name):
    stored = STORED[name]
    params = get_action(name).Params.from_dict(stored)
    kept = {k: v for k, v in stored.items() if v is not None and k != "unit"}
    assert params.to_dict() == kept
    # Frozen: a plan's params do not change under the action.
    with pytest.raises(FrozenInstanceError):
        setattr(params, fields(params)[0].name, "changed")


def test_a_key_no_plan_stores_is_refused():
    with pytest.raises(TypeError, match="no parameter imageid"):
        AddLaunchPermission.Params.from_dict({"image_id": "ami-1", "imageid": "ami-1"})


def test_image_of_names_the_image_a_step_makes_or_uses():
    results = {1: {"image_id": "ami-copy"}}
    assert image_of({"image_id": "ami-1"}, results) == "ami-1"
    assert image_of({"image_from_step": 1}, results) == "ami-copy"
    assert image_of({"image_from_step": "1"}, results) == "ami-copy"
    assert image_of({"image_from_step": 2}, results) is None  # that step has not said yet
    assert image_of(VerifyByTestLaunch.Params(image_from_step=1), results) == "ami-copy"
    assert image_of({"steps": [1]}, results) is None


class _Account:
    def __init__(self, alias: str, id: str):
        self.alias, self.id = alias, id


def test_an_action_plans_its_own_step():
    source, dev = _Account("prod", "222222222222"), _Account("dev", "111111111111")
    step = AddLaunchPermission.plan(source, "eu-west-1", AddLaunchPermission.Params(image_id="ami-1", account_ids=[dev.id]), grantees=[dev])
    assert step == PlannedStep(
        action="ec2.add_launch_permission", account_alias="prod", account_id="222222222222", region="eu-west-1",
        params={"image_id": "ami-1", "account_ids": ["111111111111"]},
        description="ModifyImageAttribute on ami-1: add launch permission for `dev` (111111111111)",
    )
    with pytest.raises(TypeError):
        CreateKmsGrant.plan(source, "eu-west-1", AddLaunchPermission.Params(image_id="ami-1"), key_label="k")


def test_the_domain_plans_with_the_actions_planned_step():
    from bot.requests import PlannedStep as DomainPlannedStep

    assert DomainPlannedStep is PlannedStep


def test_action_modules_import_the_base_not_the_package():
    """No action module imports ``aws.actions`` itself, and every import is at the top:
    the registry imports the action modules, never the other way round."""
    folder = pathlib.Path(__file__).resolve().parents[2] / "aws" / "actions"
    for path in folder.glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "aws.actions":
                assert path.name == "registry.py", f"{path.name} imports the aws.actions package"
        body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        first_code = next((i for i, n in enumerate(body) if not isinstance(n, (ast.Import, ast.ImportFrom))), len(body))
        late = [n.lineno for n in body[first_code:] if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not late, f"{path.name} imports at lines {late}, below its code"
