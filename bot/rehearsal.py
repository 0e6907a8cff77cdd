"""The sandbox rehearsal world: the sandbox AWS accounts, a local Slack, and the
embedded configuration that ``amibot demo`` and ``amibot serve --sandbox`` use.

Accounts (moto-backed, see ``aws.sandbox``):
  prod 111111111111 — owns a CMK ``alias/ami-shared`` and two AMIs: one encrypted
                      with that CMK, one with the AWS-managed ``aws/ebs`` key.
  dev  222222222222 — a member account that receives shares.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from aws.sandbox import Sandbox
from bot.config import Config, parse_config

PROD = "111111111111"
DEV = "222222222222"
REGION = "us-east-1"
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

[accounts.dev]
id = "{DEV}"
role_arn = "arn:aws:iam::{DEV}:role/amibot"
owners = ["{DEV_OWNER}"]
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


def seed(sandbox: Sandbox) -> SandboxWorld:
    """Create the rehearsal's keys and images in the sandbox."""
    cmk = sandbox.create_key(PROD, REGION, alias="alias/ami-shared")
    ebs = sandbox.aws_managed_ebs_key(PROD, REGION)
    return SandboxWorld(
        sandbox=sandbox,
        cmk_arn=cmk,
        encrypted_image=sandbox.create_image(PROD, REGION, name="payments-api-2026.11", kms_key_arn=cmk, tags={"app": "payments", "owner": "platform"}),
        aws_managed_image=sandbox.create_image(PROD, REGION, name="legacy-batch-2024.02", kms_key_arn=ebs),
        plain_image=sandbox.create_image(PROD, REGION, name="base-al2023"),
    )


def sandbox_config(db_path: str, slack_api_url: str | None = None, env: dict[str, str] | None = None) -> Config:
    """The embedded configuration, with Slack settings from ``env`` (or a local Slack)."""
    environment = dict(env if env is not None else os.environ)
    environment["AMIBOT_DB"] = db_path
    if slack_api_url:
        environment["SLACK_API_URL"] = slack_api_url
        environment.setdefault("SLACK_BOT_TOKEN", "xoxb-sandbox")
        environment.setdefault("SLACK_SIGNING_SECRET", secrets.token_hex(16))
    return parse_config(SANDBOX_TOML, environment, source="<embedded sandbox config>")
