"""Configuration: a TOML file for the shape of the deployment, the environment for secrets.

``load_config`` finds the file (``--config PATH``, else ``$AMIBOT_CONFIG``, else
``./amibot.toml``), ``parse_config`` validates it. Every problem is a
:class:`~bot.errors.ConfigError` naming the exact key (``accounts.prod.id``), what is
wrong and the fix, so the bot refuses to start with a message a person can act on.

Secrets never live in the file: Slack tokens come from ``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET`` and ``SLACK_APP_TOKEN``; AWS credentials from boto3's own chain.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from aws.partitions import partition_for
from bot.errors import ConfigError, UnknownAccountError
from bot.verbs.lexer import (
    ACCOUNT_ID_RE,
    ALIAS_RE,
    KMS_ARN_RE,
    REGION_RE,
    SUBNET_ID_RE,
    is_kms_key,
    is_reserved_word,
)

DEFAULT_CONFIG_PATH = "amibot.toml"
DEFAULT_DB_PATH = "amibot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"

_A = re.ASCII
_ROLE_ARN_RE = re.compile(r"arn:aws[-a-z]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}", _A)
_OWNER_RE = re.compile(r"[UWS][A-Z0-9]{2,}", _A)
_CHANNEL_RE = re.compile(r"[CG][A-Z0-9]+", _A)
_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}", _A)
_ORG_ID_RE = re.compile(r"o-[a-z0-9]{10,32}", _A)
_COMMAND_RE = re.compile(r"/[^\s/]{1,31}")


# --------------------------------------------------------------------------------------
# The configuration


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
        aliases = ", ".join(f"{a} ({c.id})" for a, c in self.accounts.items())
        raise UnknownAccountError(
            detail,
            fix=f"Configured accounts: {aliases}. Use one of these aliases or ids, "
            "or ask an admin to add an [accounts.<alias>] table to the config.",
        )

    def account_by_id(self, account_id: str) -> AccountConfig | None:
        for acct in self.accounts.values():
            if acct.id == account_id:
                return acct
        return None


# --------------------------------------------------------------------------------------
# Loading


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config: ``path`` (``--config``), else ``$AMIBOT_CONFIG``, else ``./amibot.toml``."""
    env = os.environ if env is None else env
    if path:
        key, chosen = "--config", path
    elif env.get("AMIBOT_CONFIG"):
        key, chosen = "AMIBOT_CONFIG", env["AMIBOT_CONFIG"]
    else:
        key, chosen = "--config", DEFAULT_CONFIG_PATH
    file = Path(chosen)
    if not file.exists():
        if key == "--config" and not path:
            raise ConfigError(
                key,
                f"no config found: ./{DEFAULT_CONFIG_PATH} does not exist and neither --config nor AMIBOT_CONFIG was given",
                f"copy amibot.example.toml to ./{DEFAULT_CONFIG_PATH} and edit it, "
                "or pass --config PATH, or set AMIBOT_CONFIG=PATH",
            )
        raise ConfigError(key, f"the file {chosen} does not exist", f"check the path, or copy amibot.example.toml to {chosen}")
    if not file.is_file():
        raise ConfigError(key, f"{chosen} is not a file", "point it at the TOML file itself")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {chosen}: {exc.strerror or exc}", "check the file's permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, f"{chosen} is not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    return parse_config(text, env, source=str(chosen))


def parse_config(text: str, env: Mapping[str, str], source: str = "<config>") -> Config:
    """Validate a TOML document and the environment into a :class:`Config`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(text, exc, source) from None

    _check_keys(data, "", ("bot", "accounts", "organization"))
    bot = _parse_bot(_table(data, "bot", "bot", required=False))
    accounts = _parse_accounts(data)
    organization = _parse_organization(data)
    if organization is not None:
        # Organizations ARNs are in the partition of the regions the bot works in.
        organization = replace(organization, partition=partition_for(bot.default_region))
    return Config(
        bot=bot,
        accounts=accounts,
        organization=organization,
        slack=_slack_settings(env),
        db_path=_db_target(env.get("AMIBOT_DB") or DEFAULT_DB_PATH),
    )


def _db_target(target: str) -> str:
    """AMIBOT_DB: a SQLite file path, or a PostgreSQL URL."""
    scheme = target.split("://", 1)[0] if "://" in target else None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "AMIBOT_DB",
            f"`{scheme}://` is not a database amibot can use",
            "set a SQLite file path (e.g. /var/lib/amibot/amibot.db) or a PostgreSQL URL "
            "(postgresql://USER:PASSWORD@HOST:5432/DBNAME)",
        )
    return target


def require_slack(config: Config, *, socket_mode: bool) -> None:
    """Refuse to start without the Slack secrets the chosen mode needs."""
    s = config.slack
    needed = [
        ("SLACK_BOT_TOKEN", s.bot_token, "the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page"),
    ]
    if socket_mode:
        needed.append(
            ("SLACK_APP_TOKEN", s.app_token, "an app-level token (xapp-...) with connections:write, from the app's Basic Information page")
        )
    else:
        needed.append(("SLACK_SIGNING_SECRET", s.signing_secret, "the Signing Secret from the app's Basic Information page"))
    for var, value, what in needed:
        if not value:
            mode = "Socket Mode" if socket_mode else "HTTP mode"
            raise ConfigError(var, f"is not set ({mode} needs it)", f"export {var}=<{what}>")
    if s.bot_token and s.bot_token.startswith("xapp-"):
        raise ConfigError(
            "SLACK_BOT_TOKEN", "holds an app-level token (xapp-...)", "set SLACK_BOT_TOKEN to the bot token (xoxb-...) and put the xapp- token in SLACK_APP_TOKEN"
        )
    if socket_mode and s.app_token and s.app_token.startswith(("xoxb-", "xoxp-")):
        raise ConfigError(
            "SLACK_APP_TOKEN", "holds a bot or user token, not an app-level token", "create an app-level token (xapp-...) with connections:write and put it in SLACK_APP_TOKEN"
        )


# --------------------------------------------------------------------------------------
# Validation helpers


def _syntax_error(text: str, exc: tomllib.TOMLDecodeError, source: str) -> ConfigError:
    """A TOML syntax error, named by the key on the offending line where there is one."""
    problem, _, where = str(exc).partition(" (at ")
    where = where.rstrip(")")
    lines = text.splitlines()
    m = re.fullmatch(r"line (\d+), column (\d+)", where)
    if m:
        line_no = int(m.group(1))
        where = f"line {line_no}, column {m.group(2)}"
    elif "end of document" in where and any(line.strip() for line in lines):
        line_no = max(i for i, line in enumerate(lines) if line.strip()) + 1
        where = f"the end of the file (line {line_no})"
    else:
        line_no = 0
        where = where or "an unknown place"
    key = source
    if 0 < line_no <= len(lines):
        header = ""
        for line in lines[: line_no - 1]:
            stripped = line.strip()
            if stripped.startswith("[") and "]" in stripped:
                header = stripped.strip("[]").strip()
        line = lines[line_no - 1].strip()
        if line.startswith("["):
            key = line.strip("[]").strip() or source
        elif "=" in line:
            name = line.split("=", 1)[0].strip()
            key = f"{header}.{name}" if header else name
        elif header:
            key = header
    return ConfigError(
        key,
        f"TOML syntax error in {source} at {where}: {problem}",
        "correct the TOML syntax there (strings need double quotes; each key once per table)",
    )


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _check_keys(table: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key in allowed:
            continue
        full = f"{prefix}.{key}" if prefix else key
        lowered = key.lower()
        if "token" in lowered or "secret" in lowered or lowered == "slack":
            raise ConfigError(
                full,
                "Slack secrets do not belong in the config file",
                "remove it and set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (and SLACK_APP_TOKEN for Socket Mode) in the environment",
            )
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        did_you_mean = f"did you mean `{close[0]}`? " if close else ""
        where = f"[{prefix}]" if prefix else "the top level"
        shown = ", ".join("[accounts.<alias>]" if a == "accounts" else (f"[{a}]" if not prefix else a) for a in allowed)
        raise ConfigError(full, "is not a known key", f"{did_you_mean}allowed in {where}: {shown}")


def _table(data: Mapping[str, Any], key: str, full: str, *, required: bool) -> dict[str, Any]:
    if key not in data:
        if required:
            raise ConfigError(full, "is missing", f"add a [{full}] table")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        raise ConfigError(full, f"must be a table, not {_type_name(value)}", f"write it as a [{full}] section")
    return value


_MISSING = object()


def _get(table: Mapping[str, Any], prefix: str, key: str, kind: type, example: str, default: Any = _MISSING) -> Any:
    full = f"{prefix}.{key}"
    if key not in table:
        if default is _MISSING:
            raise ConfigError(full, "is required", f"add {example} to [{prefix}]")
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(full, f"must be {_type_name(kind())}, not {_type_name(value)}", f"write it as {example}")
    return value


def _check_region(region: str, full: str) -> None:
    if not REGION_RE.fullmatch(region):
        raise ConfigError(full, f"`{region}` is not an AWS region name", "use a region code such as eu-west-1 or us-gov-west-1")


def _int_range(value: int, full: str, low: int, high: int, unit: str) -> int:
    if not low <= value <= high:
        raise ConfigError(full, f"{value} is out of range", f"use a value from {low} to {high} {unit}")
    return value


def _parse_bot(table: dict[str, Any]) -> BotConfig:
    p = "bot"
    _check_keys(table, p, tuple(BotConfig.__dataclass_fields__))
    d = BotConfig()
    command = _get(table, p, "command", str, 'command = "/ami"', d.command)
    if not command.startswith("/"):
        raise ConfigError(f"{p}.command", f"`{command}` does not start with /", f'write the slash command as in the Slack app, e.g. command = "/{command.lstrip()}"')
    if not _COMMAND_RE.fullmatch(command):
        raise ConfigError(f"{p}.command", f"`{command}` is not a slash command name", 'use one word of at most 32 characters after the /, e.g. command = "/ami"')
    region = _get(table, p, "default_region", str, 'default_region = "us-east-1"', d.default_region)
    _check_region(region, f"{p}.default_region")
    poll = _int_range(
        _get(table, p, "poll_interval_seconds", int, "poll_interval_seconds = 30", d.poll_interval_seconds),
        f"{p}.poll_interval_seconds", 5, 3600, "seconds",
    )
    ttl = _int_range(
        _get(table, p, "approval_ttl_hours", int, "approval_ttl_hours = 24", d.approval_ttl_hours),
        f"{p}.approval_ttl_hours", 1, 720, "hours",
    )
    channel = _get(table, p, "notify_channel", str, 'notify_channel = "C0123456789"', None)
    if channel is not None and not _CHANNEL_RE.fullmatch(channel):
        raise ConfigError(
            f"{p}.notify_channel",
            f"`{channel}` is not a channel id",
            "use the channel's id (C... or G..., shown at the bottom of the channel's details), not its name; "
            "or remove the key",
        )
    max_days = _int_range(
        _get(table, p, "max_share_days", int, "max_share_days = 90", d.max_share_days),
        f"{p}.max_share_days", 1, 90, "days (a share lasts at most 90 days)",
    )
    window = _int_range(
        _get(table, p, "consistency_window_seconds", int, "consistency_window_seconds = 300", d.consistency_window_seconds),
        f"{p}.consistency_window_seconds", 10, 3600, "seconds (AWS usually shows a new resource within seconds, rarely minutes)",
    )
    max_request_kib = _int_range(
        _get(table, p, "max_request_kib", int, "max_request_kib = 64", d.max_request_kib),
        f"{p}.max_request_kib", 4, 1024, "KiB (Slack's payloads are a few KiB)",
    )
    lease = _int_range(
        _get(table, p, "lease_seconds", int, "lease_seconds = 30", d.lease_seconds),
        f"{p}.lease_seconds", 2, 600, "seconds (a dead replica's work is taken up after this long)",
    )
    tick = _int_range(
        _get(table, p, "tick_seconds", int, "tick_seconds = 5", d.tick_seconds),
        f"{p}.tick_seconds", 1, 60, "seconds",
    )
    allowed = _channel_list(table, p, "allowed_channels")
    reminders_raw = _get(table, p, "reminder_hours_before_expiry", list, "reminder_hours_before_expiry = [12, 1]", list(d.reminder_hours_before_expiry))
    reminders: list[int] = []
    for hours in reminders_raw:
        if not isinstance(hours, int) or isinstance(hours, bool):
            raise ConfigError(f"{p}.reminder_hours_before_expiry", f"must hold whole numbers of hours, not {_type_name(hours)}", "write it as reminder_hours_before_expiry = [12, 1]")
        reminders.append(_int_range(hours, f"{p}.reminder_hours_before_expiry", 1, ttl, "hours (at most approval_ttl_hours)"))
    return BotConfig(
        command, region, poll, ttl, channel, max_days,
        lease_seconds=lease, tick_seconds=tick, max_request_kib=max_request_kib, consistency_window_seconds=window,
        allowed_channels=allowed,
        require_reason=_get(table, p, "require_reason", bool, "require_reason = true", d.require_reason),
        approval_dm=_get(table, p, "approval_dm", bool, "approval_dm = true", d.approval_dm),
        reminder_hours_before_expiry=tuple(sorted(set(reminders), reverse=True)),
        required_tags=_required_tags(table, p),
        drift_check_hours=_int_range(
            _get(table, p, "drift_check_hours", int, "drift_check_hours = 24", d.drift_check_hours),
            f"{p}.drift_check_hours", 1, 720, "hours (the drift check runs that often; 24 = daily)",
        ),
    )


def _channel_id(value: Any, full: str, example: str) -> str:
    if not isinstance(value, str) or not _CHANNEL_RE.fullmatch(value):
        raise ConfigError(
            full,
            f"`{value}` is not a channel id",
            f"use the channel's id (C... or G..., shown at the bottom of the channel's details), not its name: {example}",
        )
    return value


def _channel_list(table: Mapping[str, Any], prefix: str, key: str) -> tuple[str, ...]:
    example = f'{key} = ["C0123456789"]'
    raw = _get(table, prefix, key, list, example, [])
    return tuple(dict.fromkeys(_channel_id(c, f"{prefix}.{key}", example) for c in raw))


_TAG_KEY_RE = re.compile(r"[^\x00-\x1f]{1,128}")


def _required_tags(table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
    """``required_tags = ["owner", "app", "version"]``: a list of distinct tag keys
    (1-128 characters, not starting with ``aws:``, which AWS reserves)."""
    value = _get(table, prefix, "required_tags", list, 'required_tags = ["owner", "app", "version"]', [])
    full = f"{prefix}.required_tags"
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str) or not _TAG_KEY_RE.fullmatch(key) or key.lower().startswith("aws:"):
            raise ConfigError(full, f"`{key}` is not a tag key amibot can require", 'use tag keys of 1 to 128 characters not starting with "aws:", e.g. required_tags = ["owner", "app", "version"]')
        if key in keys:
            raise ConfigError(full, f"`{key}` is listed twice", "list each tag key once")
        keys.append(key)
    return tuple(keys)


def _parse_accounts(data: Mapping[str, Any]) -> dict[str, AccountConfig]:
    if "accounts" in data and not isinstance(data["accounts"], dict):
        raise ConfigError(
            "accounts",
            f"must be tables, not {_type_name(data['accounts'])}",
            'write one [accounts.<alias>] table per account, with id = "<12-digit id>" under it',
        )
    accounts_table = _table(data, "accounts", "accounts", required=False)
    if not accounts_table:
        raise ConfigError(
            "accounts",
            "no accounts are configured",
            'add at least one [accounts.<alias>] table with id = "<12-digit account id>" (see amibot.example.toml)',
        )
    accounts: dict[str, AccountConfig] = {}
    by_id: dict[str, str] = {}
    for alias, table in accounts_table.items():
        full = f"accounts.{alias}"
        if not isinstance(table, dict):
            raise ConfigError(full, f"must be a table, not {_type_name(table)}", f'write it as [{full}] with id = "..." under it')
        _check_alias(alias, full)
        acct = _parse_account(alias, table)
        if acct.id in by_id:
            raise ConfigError(
                f"{full}.id",
                f"{acct.id} is already the id of accounts.{by_id[acct.id]}",
                "configure each AWS account once (one alias per account)",
            )
        by_id[acct.id] = alias
        accounts[alias] = acct
    return accounts


def _check_alias(alias: str, full: str) -> None:
    problem = None
    if ACCOUNT_ID_RE.fullmatch(alias):
        problem = "an alias cannot be a 12-digit number (it would read as an account id)"
    elif alias.isdigit():
        problem = "an alias cannot be all digits (it would read as a mistyped account id)"
    elif not ALIAS_RE.fullmatch(alias):
        problem = f"`{alias}` is not a valid alias (lowercase letters, digits, - and _, starting with a letter or digit)"
    elif is_reserved_word(alias):
        problem = f"`{alias}` is a word of the command grammar"
    elif alias.startswith("ou-"):
        problem = "an alias cannot start with ou- (it would read as an OU id)"
    if problem:
        cleaned = re.sub(r"[^a-z0-9_-]+", "-", alias.lower()).strip("-_")
        suggestion = next(
            (s for s in (cleaned, f"{cleaned}-account", f"acct-{cleaned}") if _alias_ok(s)), "prod"
        )
        raise ConfigError(full, problem, f"rename the table, e.g. [accounts.{suggestion}]")


def _alias_ok(alias: str) -> bool:
    return bool(
        ALIAS_RE.fullmatch(alias)
        and not alias.isdigit()
        and not is_reserved_word(alias)
        and not alias.startswith("ou-")
    )


def _parse_account(alias: str, table: dict[str, Any]) -> AccountConfig:
    p = f"accounts.{alias}"
    _check_keys(table, p, tuple(f for f in AccountConfig.__dataclass_fields__ if f != "alias"))

    if "id" in table and isinstance(table["id"], int) and not isinstance(table["id"], bool):
        raise ConfigError(f"{p}.id", "must be a string, not an integer", f'quote it: id = "{table["id"]:012d}" (a number loses leading zeros)')
    account_id = _get(table, p, "id", str, 'id = "111111111111"')
    if not ACCOUNT_ID_RE.fullmatch(account_id):
        raise ConfigError(f"{p}.id", f"`{account_id}` is not a 12-digit AWS account id", 'write the id as 12 digits in quotes, e.g. id = "111111111111"')

    role_arn = _get(table, p, "role_arn", str, f'role_arn = "arn:aws:iam::{account_id}:role/amibot"', None)
    if role_arn is not None:
        m = _ROLE_ARN_RE.fullmatch(role_arn)
        if not m:
            raise ConfigError(
                f"{p}.role_arn",
                f"`{role_arn}` is not an IAM role ARN",
                f'use arn:aws:iam::{account_id}:role/<name>, or remove the key to use the bot\'s own credentials',
            )
        if m.group(1) != account_id:
            raise ConfigError(
                f"{p}.role_arn",
                f"the role is in account {m.group(1)}, but {p}.id is {account_id}",
                f"use a role in account {account_id} (arn:aws:iam::{account_id}:role/<name>), or correct the id",
            )

    launch_roles = _parse_launch_roles(table, p, account_id)

    external_id = _get(table, p, "external_id", str, 'external_id = "amibot-prod"', None)
    if external_id is not None:
        if role_arn is None:
            raise ConfigError(f"{p}.external_id", "is set but role_arn is not (it is only sent on AssumeRole)", "add role_arn or remove external_id")
        if not _EXTERNAL_ID_RE.fullmatch(external_id):
            raise ConfigError(
                f"{p}.external_id", "is not a valid external id", "use 2 to 1224 characters: letters, digits and + = , . @ : / - _"
            )

    owners_raw = _get(table, p, "owners", list, 'owners = ["U0123ABCD", "S0456EFGH"]', [])
    owners: list[str] = []
    for owner in owners_raw:
        if not isinstance(owner, str):
            raise ConfigError(f"{p}.owners", f"must hold strings, not {_type_name(owner)}", 'write owners = ["U0123ABCD", "S0456EFGH"]')
        if not _OWNER_RE.fullmatch(owner):
            raise ConfigError(
                f"{p}.owners",
                f"`{owner}` is not a Slack user id (U... or W...) or user-group id (S...)",
                "use member ids, not names: a profile's ⋮ menu → Copy member ID; a user group's id is in its details",
            )
        if owner not in owners:
            owners.append(owner)

    kms_keys = _region_map(table, p, "kms_keys", 'kms_keys = { "eu-west-1" = "alias/ami-shared" }')
    for region, key in kms_keys.items():
        full = f"{p}.kms_keys.{region}"
        if not is_kms_key(key):
            raise ConfigError(full, f"`{key}` is not a KMS key", "use alias/<name>, a key id, mrk-<id> or an arn:aws:kms:... ARN")
        m = KMS_ARN_RE.fullmatch(key)
        if m and m.group(1).lower() != region:
            raise ConfigError(full, f"the key is in {m.group(1)}, not {region}", f"use a key in {region} (a copy is encrypted in its destination region)")
        if m and m.group(2) != account_id:
            raise ConfigError(full, f"the key belongs to account {m.group(2)}, not {account_id}", f"use a key owned by {account_id}: a copy must not depend on another account's key")

    subnets = _region_map(table, p, "verify_subnets", 'verify_subnets = { "eu-west-1" = "subnet-0123456789abcdef0" }')
    for region, subnet in subnets.items():
        if not SUBNET_ID_RE.fullmatch(subnet):
            raise ConfigError(f"{p}.verify_subnets.{region}", f"`{subnet}` is not a subnet id", "use subnet- followed by 8 or 17 hex digits")

    return AccountConfig(
        alias=alias,
        id=account_id,
        role_arn=role_arn,
        external_id=external_id,
        owners=tuple(owners),
        kms_keys=kms_keys,
        verify_subnets=subnets,
        allow_self_approval=_get(table, p, "allow_self_approval", bool, "allow_self_approval = false", False),
        accept_shares=_get(table, p, "accept_shares", bool, "accept_shares = true", True),
        autoscaling_grant=_get(table, p, "autoscaling_grant", bool, "autoscaling_grant = false", False),
        approval_channel=_optional_channel(table, p, "approval_channel"),
        approval_dm=_get(table, p, "approval_dm", bool, "approval_dm = false", None),
        launch_roles=launch_roles,
    )


def _optional_channel(table: Mapping[str, Any], prefix: str, key: str) -> str | None:
    if key not in table:
        return None
    return _channel_id(table[key], f"{prefix}.{key}", f'{key} = "C0123456789"')


def _parse_launch_roles(table: Mapping[str, Any], p: str, account_id: str) -> tuple[str, ...]:
    """``launch_roles``: IAM role ARNs of this account (the roles that launch
    instances from what is shared or copied here)."""
    example = f'launch_roles = ["arn:aws:iam::{account_id}:role/app-deployer"]'
    roles = _get(table, p, "launch_roles", list, example, [])
    found: list[str] = []
    for role in roles:
        if not isinstance(role, str):
            raise ConfigError(f"{p}.launch_roles", f"must hold strings, not {_type_name(role)}", f"write it as {example}")
        m = _ROLE_ARN_RE.fullmatch(role)
        if not m:
            raise ConfigError(f"{p}.launch_roles", f"`{role}` is not an IAM role ARN", f"use arn:aws:iam::{account_id}:role/<name>, e.g. {example}")
        if m.group(1) != account_id:
            raise ConfigError(
                f"{p}.launch_roles",
                f"`{role}` is in account {m.group(1)}, but {p}.id is {account_id}",
                f"list only roles of account {account_id}: amibot asks that account's IAM about them",
            )
        if role not in found:
            found.append(role)
    return tuple(found)


def _region_map(table: Mapping[str, Any], prefix: str, key: str, example: str) -> dict[str, str]:
    raw = _get(table, prefix, key, dict, example, {})
    result: dict[str, str] = {}
    for region, value in raw.items():
        full = f"{prefix}.{key}.{region}"
        _check_region(region, full)
        if not isinstance(value, str):
            raise ConfigError(full, f"must be a string, not {_type_name(value)}", f"write it as {example}")
        result[region] = value
    return result


def _parse_organization(data: Mapping[str, Any]) -> OrganizationConfig | None:
    if "organization" not in data:
        return None
    table = _table(data, "organization", "organization", required=True)
    p = "organization"
    _check_keys(table, p, ("id", "management_account"))
    org_id = _get(table, p, "id", str, 'id = "o-a1b2c3d4e5"')
    if not _ORG_ID_RE.fullmatch(org_id):
        raise ConfigError(f"{p}.id", f"`{org_id}` is not an organization id", "use the id shown in AWS Organizations, o- followed by 10 to 32 lowercase letters or digits")
    if isinstance(table.get("management_account"), int) and not isinstance(table.get("management_account"), bool):
        raise ConfigError(f"{p}.management_account", "must be a string, not an integer", f'quote it: management_account = "{table["management_account"]:012d}"')
    mgmt = _get(table, p, "management_account", str, 'management_account = "999999999999"')
    if not ACCOUNT_ID_RE.fullmatch(mgmt):
        raise ConfigError(f"{p}.management_account", f"`{mgmt}` is not a 12-digit AWS account id", 'write it as 12 digits in quotes, e.g. management_account = "999999999999"')
    return OrganizationConfig(org_id, mgmt)


def _slack_settings(env: Mapping[str, str]) -> SlackSettings:
    api_url = env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not re.match(r"https?://[^/\s]+", api_url, re.IGNORECASE):
        raise ConfigError("SLACK_API_URL", f"`{api_url}` is not an http:// or https:// URL", f"set it to the Web API's base URL, e.g. {DEFAULT_SLACK_API_URL}, or unset it")
    if not api_url.endswith("/"):
        api_url += "/"
    return SlackSettings(
        bot_token=env.get("SLACK_BOT_TOKEN") or None,
        signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        app_token=env.get("SLACK_APP_TOKEN") or None,
        api_url=api_url,
    )


__all__ = [
    "AccountConfig",
    "BotConfig",
    "Config",
    "OrganizationConfig",
    "SlackSettings",
    "load_config",
    "parse_config",
    "require_slack",
]
