"""The sandbox rehearsal world: the sandbox AWS accounts, a local Slack, and the
embedded configuration that ``amibot demo`` and ``amibot serve --sandbox`` use.

Accounts (moto-backed, see ``offline.sandbox``), all in one Organization:
  prod 111111111111 — owns a CMK ``alias/ami-shared`` (tagged ``amibot:org-share=true``:
                      amibot may change its key policy for org shares) and three AMIs: one encrypted
                      with that CMK, one with the AWS-managed ``aws/ebs`` key, one
                      unencrypted; and a running instance ``web-1`` in us-east-1a.
  dev  222222222222 — a member account that receives shares and copies; its own CMK
                      ``alias/ami-dev`` in us-east-1 and eu-west-1.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from offline.sandbox import Sandbox
from aws.iam import ORG_SHARE_TAG
from bot.config import Config, parse_config

PROD = "111111111111"
DEV = "222222222222"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ORG_ID = "o-sandbox1234"
DEV_OU = "ou-sbx1-devteams"
OWNER = "U0ALICE"  # an owner of prod
DEV_OWNER = "U0DEVOPS"  # an owner of dev
REQUESTER = "U0BOB"  # a developer asking for the share
STRANGER = "U0MALLORY"  # in the channel, owns nothing
CHANNEL = "C0PLATFORM"

SANDBOX_TOML = f"""
[bot]
command = "/ami"
default_region = "{REGION}"
poll_interval_seconds = 5
approval_ttl_hours = 24

[accounts.prod]
id = "{PROD}"
role_arn = "arn:aws:iam::{PROD}:role/amibot"
owners = ["{OWNER}", "S0PLATFORM"]
kms_keys = {{ "{REGION}" = "alias/ami-shared" }}
retire = true
pass_roles = ["arn:aws:iam::{PROD}:role/web-role"]

[accounts.dev]
id = "{DEV}"
role_arn = "arn:aws:iam::{DEV}:role/amibot"
owners = ["{DEV_OWNER}"]
kms_keys = {{ "{REGION}" = "alias/ami-dev", "{OTHER_REGION}" = "alias/ami-dev" }}
retire = true

[organization]
id = "{ORG_ID}"
management_account = "123456789012"
"""

ONCALL = "U0ONCALL"  # prod's escalation (the demo's policy config)

# The demo's approval policy (README "Approval policy"): rules gated on tags no other
# scenario's AMI carries, and prod escalating to on-call after 4 h. Kept out of
# SANDBOX_TOML so the tests' stack keeps the rule without policies.
POLICY_TOML = SANDBOX_TOML.replace(
    f'owners = ["{OWNER}", "S0PLATFORM"]\n', f'owners = ["{OWNER}", "S0PLATFORM"]\nescalate_to = ["{ONCALL}"]\nescalate_after_hours = 4\n'
).replace(
    # The rehearsal plays a team's day in about a minute of its clock: Bob alone asks
    # for more than the default 20 AWS-calling commands a minute.
    "[bot]\n", "[bot]\naws_commands_per_minute = 600\n", 1
) + """
[[policy]]
name = "golden-to-dev"
from = ["prod"]
to = ["dev"]
operations = ["share"]
approve = "auto"
ami_tags = { golden = "approved" }
max_duration_hours = 168

[[policy]]
name = "critical-two-owners"
ami_tags = { tier = "critical" }
approve = "two-owners"
"""

USERGROUPS = {"S0PLATFORM": [OWNER, "U0CAROL"]}


@dataclass
class SandboxWorld:
    """What was seeded, for the rehearsal to refer to."""

    sandbox: Sandbox
    cmk_arn: str
    encrypted_image: str
    aws_managed_image: str
    plain_image: str
    dev_cmk_arn: str
    dev_cmk_other_region_arn: str
    instance_id: str
    network: dict


def seed(sandbox: Sandbox) -> SandboxWorld:
    """Create the rehearsal's organisation, keys, images and instance in the sandbox."""
    sandbox.configure_organization(ORG_ID, members={PROD: "ou-sbx1-platform", DEV: DEV_OU})
    cmk = sandbox.create_key(PROD, REGION, alias="alias/ami-shared", tags={ORG_SHARE_TAG: "true"})
    ebs = sandbox.aws_managed_ebs_key(PROD, REGION)
    network = sandbox.network(PROD, REGION)
    return SandboxWorld(
        sandbox=sandbox,
        cmk_arn=cmk,
        encrypted_image=sandbox.create_image(PROD, REGION, name="payments-api-2026.11", kms_key_arn=cmk, tags={"app": "payments", "owner": "platform"}),
        aws_managed_image=sandbox.create_image(PROD, REGION, name="legacy-batch-2024.02", kms_key_arn=ebs),
        plain_image=sandbox.create_image(PROD, REGION, name="base-al2023"),
        dev_cmk_arn=sandbox.create_key(DEV, REGION, alias="alias/ami-dev"),
        dev_cmk_other_region_arn=sandbox.create_key(DEV, OTHER_REGION, alias="alias/ami-dev"),
        instance_id=sandbox.create_instance(PROD, REGION, availability_zone=f"{REGION}a", tags={"Name": "web-1", "app": "web"}, instance_profile="web-role", kms_key_arn=cmk),
        network=network,
    )


def enforce_generated_policies(sandbox: Sandbox, config: Config) -> None:
    """Hold amibot to the policies ``amibot iam-policy`` prints: the member policy on
    each configured member role, the bot policy on the bot's own credentials. From
    then on a call outside the policy, or outside one of its conditions, fails."""
    from aws.iam import bot_role_policy

    roles = [a.role_arn for a in config.accounts.values() if a.role_arn]
    for account_config in config.accounts.values():
        if account_config.role_arn:
            attach_member_policy(sandbox, config, account_config.alias)
    sandbox.attach_bot_policy(bot_role_policy(roles))


def attach_member_policy(sandbox: Sandbox, config: Config, alias: str, *, retire: bool | None = None) -> None:
    """Put on ``alias``'s amibot role the policies ``amibot iam-policy`` prints for it
    (amibot-member, and amibot-migrate where ``migrate = true``); ``retire=False``: as for an account without ``retire = true`` (whose operator
    did not let amibot deregister its images)."""
    from aws.iam import configured_pass_roles, member_policy, migrate_policy

    account_config = config.account(alias)
    retiring = account_config.retire if retire is None else retire
    member = member_policy(accounts=[a.id for a in config.accounts.values()], retire=retiring,
                           retire_tag=account_config.retire_tag if retiring else None)
    account, name = account_config.role_arn.split(":")[4], account_config.role_arn.rsplit("/", 1)[-1]
    sandbox.attach_role_policy(account, name, member, policy_name="amibot-member")
    if account_config.migrate:
        migrating = [a for a in config.accounts.values() if a.migrate]
        sandbox.attach_role_policy(account, name, migrate_policy(configured_pass_roles(migrating)), policy_name="amibot-migrate")


def sandbox_config(db_path: str, slack_api_url: str | None = None, env: dict[str, str] | None = None) -> Config:
    """The embedded configuration, with Slack settings from ``env`` (or a local Slack)."""
    environment = dict(env if env is not None else os.environ)
    environment["AMIBOT_DB"] = db_path
    if slack_api_url:
        environment["SLACK_API_URL"] = slack_api_url
        environment.setdefault("SLACK_BOT_TOKEN", "xoxb-sandbox")
        environment.setdefault("SLACK_SIGNING_SECRET", secrets.token_hex(16))
    return parse_config(SANDBOX_TOML, environment, source="<embedded sandbox config>")
