"""The configuration's shape: frozen dataclasses, one per TOML table (and the Slack
settings from the environment), and the account lookups by alias or id."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config.policy import Escalation, PolicyRule
from bot.errors import UnknownAccountError
from bot.verbs.lexer import ACCOUNT_ID_RE

DEFAULT_CONFIG_PATH = "amibot.toml"
DEFAULT_DB_PATH = "amibot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class AccountConfig:
    alias: str  # the table name, e.g. "prod"
    id: str  # 12 digits
    role_arn: str | None = None  # IAM role assumed for this account; None: the bot's own credentials
    external_id: str | None = None  # sent on AssumeRole
    owners: tuple[str, ...] = ()  # Slack user ids (U/W...) or user-group ids (S...); empty: nobody can approve
    kms_keys: dict[str, str] = field(default_factory=dict)  # region -> CMK for copies into this account
    verify_subnets: dict[str, str] = field(default_factory=dict)  # region -> subnet for test launches
    allow_self_approval: bool = False
    accept_shares: bool = True  # may this account be a target of share/copy
    autoscaling_grant: bool = False  # grant Auto Scaling's service-linked role use of shared CMKs here
    approval_channel: str | None = None  # approvals for this account are also posted there, with the buttons
    approval_dm: bool | None = None  # DM each eligible owner the approval; None: bot.approval_dm
    launch_roles: tuple[str, ...] = ()  # role ARNs here whose use of shared keys amibot checks (SimulatePrincipalPolicy)
    # `/ami retire` may deprecate, disable and deregister images here (its own IAM
    # statement); with ``retire_tag`` only images (and snapshots) carrying that tag.
    retire: bool = False
    retire_tag: tuple[str, str] | None = None  # ("key", "value")
    # `/ami migrate` may move instances here (the amibot-migrate policy, the only one
    # with iam:PassRole, is attached in this account); false: migrations are refused.
    migrate: bool = True
    pass_roles: tuple[str, ...] = ()  # instance roles (ARNs, * for a path) a migration here may pass to EC2 (iam:PassRole)
    # Who may request with this account as the source (user or group ids); None: everyone
    # in an allowed channel. Targets are not restricted by it (issue 17).
    requesters: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OrganizationConfig:
    id: str  # o-xxxxxxxxxx
    management_account: str  # 12 digits
    partition: str = "aws"  # of bot.default_region: aws, aws-cn, aws-us-gov

    def arn(self) -> str:
        return f"arn:{self.partition}:organizations::{self.management_account}:organization/{self.id}"

    def ou_arn(self, ou_id: str) -> str:
        return f"arn:{self.partition}:organizations::{self.management_account}:ou/{self.id}/{ou_id}"


@dataclass(frozen=True)
class BotConfig:
    command: str = "/ami"
    default_region: str = "us-east-1"
    poll_interval_seconds: int = 30
    approval_ttl_hours: int = 24
    notify_channel: str | None = None
    max_share_days: int = 90
    # Replicas (see docs/deployment.md): how long a process's claim on a piece of work
    # lasts without renewal, and how often every process's scheduler ticks.
    lease_seconds: int = 30
    tick_seconds: int = 5
    allowed_channels: tuple[str, ...] = ()  # empty: requests may be made in any channel
    require_reason: bool = False  # every request must carry reason "…"
    approval_dm: bool = True  # DM each eligible owner the approval (accounts.<a>.approval_dm overrides)
    reminder_hours_before_expiry: tuple[int, ...] = (12, 1)  # DM reminders to owners, hours before expiry
    max_request_kib: int = 64  # larger HTTP bodies are refused (413) before they are read
    # How long "not found" on something amibot just created means "not visible yet"
    # (AWS is eventually consistent right after a create).
    consistency_window_seconds: int = 300
    # Tags an AMI must carry before it is shared, copied or distributed (docs/best-practices.md).
    required_tags: tuple[str, ...] = ()
    # How often the drift check compares amibot's record with AWS (hours).
    drift_check_hours: int = 24
    # AWS calls one drift run may make; AMIs past it wait for the next run (findings kept).
    drift_call_budget: int = 2000
    # Per user: commands that call AWS (audit, requests, the form's AMI lookups) per
    # minute, counted in the store across replicas (issue 17).
    aws_commands_per_minute: int = 20
    # The Slack app's id (A…): payloads with another api_app_id are refused; unset: the
    # app_id auth.test reports. slack_org_wide: an Enterprise Grid org-wide install
    # (payloads from every workspace of the token's enterprise) (issue 17).
    slack_app_id: str | None = None
    slack_org_wide: bool = False


@dataclass(frozen=True)
class SlackSettings:
    """From the environment only: secrets never live in the TOML file."""

    bot_token: str | None = None
    signing_secret: str | None = None
    app_token: str | None = None
    api_url: str = DEFAULT_SLACK_API_URL


@dataclass(frozen=True)
class Config:
    bot: BotConfig
    accounts: dict[str, AccountConfig]  # alias -> account, in file order
    organization: OrganizationConfig | None = None
    slack: SlackSettings = field(default_factory=SlackSettings)
    db_path: str = DEFAULT_DB_PATH
    policies: tuple[PolicyRule, ...] = ()  # [[policy]], in file order: first match wins
    escalations: dict[str, Escalation] = field(default_factory=dict)  # alias -> accounts.<a>.escalate_*

    def account(self, ref: str) -> AccountConfig:
        """The account named by an alias or a 12-digit id."""
        key = (ref or "").strip().lower()
        if key in self.accounts:
            return self.accounts[key]
        if ACCOUNT_ID_RE.fullmatch(key):
            found = self.account_by_id(key)
            if found is not None:
                return found
            detail = f"Account {key} is not configured."
        else:
            detail = f"There is no account called `{ref}`."
        # Never the list of every account and its id: who may see which is decided by
        # bot.access (issue 17), which re-raises this with the asker's own accounts.
        raise UnknownAccountError(
            detail,
            fix="Use an account alias from the config (the request form lists those you may request from), "
            "or ask an admin to add an [accounts.<alias>] table to the config.",
        )

    def account_by_id(self, account_id: str) -> AccountConfig | None:
        for acct in self.accounts.values():
            if acct.id == account_id:
                return acct
        return None
