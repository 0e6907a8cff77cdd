"""Configuration: a valid file parses; every validation error names its key; the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import (
    AccountConfig,
    BotConfig,
    Config,
    OrganizationConfig,
    SlackSettings,
    load_config,
    parse_config,
    require_slack,
)
from bot.errors import ConfigError, UnknownAccountError

REPO = Path(__file__).resolve().parents[2]

VALID = """
[bot]
command = "/ami-test"
default_region = "eu-west-1"
poll_interval_seconds = 10
approval_ttl_hours = 48
notify_channel = "C0NOTIFY"
max_share_days = 30

[accounts.prod]
id = "111111111111"
role_arn = "arn:aws:iam::111111111111:role/amibot"
external_id = "amibot-prod"
owners = ["U0ALICE", "S0PLATFORM", "U0ALICE"]
kms_keys = { "eu-west-1" = "alias/ami-shared", "us-east-2" = "arn:aws:kms:us-east-2:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
verify_subnets = { "eu-west-1" = "subnet-0abc1234" }
allow_self_approval = false

[accounts.dev]
id = "022222222222"
owners = ["W0BOB"]
allow_self_approval = true
accept_shares = true
autoscaling_grant = true

[accounts.audit_ro]
id = "333333333333"
accept_shares = false

[organization]
id = "o-a1b2c3d4e5"
management_account = "999999999999"
"""

MINIMAL = """
[accounts.prod]
id = "111111111111"
"""


def test_valid_file_parses():
    config = parse_config(VALID, {})
    assert config.bot == BotConfig("/ami-test", "eu-west-1", 10, 48, "C0NOTIFY", 30)
    assert list(config.accounts) == ["prod", "dev", "audit_ro"]
    prod = config.accounts["prod"]
    assert prod == AccountConfig(
        alias="prod",
        id="111111111111",
        role_arn="arn:aws:iam::111111111111:role/amibot",
        external_id="amibot-prod",
        owners=("U0ALICE", "S0PLATFORM"),  # duplicates dropped, order kept
        kms_keys={
            "eu-west-1": "alias/ami-shared",
            "us-east-2": "arn:aws:kms:us-east-2:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        verify_subnets={"eu-west-1": "subnet-0abc1234"},
    )
    dev = config.accounts["dev"]
    assert (dev.id, dev.role_arn, dev.external_id, dev.owners) == ("022222222222", None, None, ("W0BOB",))
    assert (dev.allow_self_approval, dev.accept_shares, dev.autoscaling_grant) == (True, True, True)
    assert config.accounts["audit_ro"].accept_shares is False
    assert config.accounts["audit_ro"].owners == ()
    assert config.organization == OrganizationConfig("o-a1b2c3d4e5", "999999999999")
    assert config.organization.arn() == "arn:aws:organizations::999999999999:organization/o-a1b2c3d4e5"
    assert config.organization.ou_arn("ou-ab12-cd345678") == (
        "arn:aws:organizations::999999999999:ou/o-a1b2c3d4e5/ou-ab12-cd345678"
    )
    assert config.slack == SlackSettings(None, None, None, "https://slack.com/api/")
    assert config.db_path == "amibot.db"


def test_launch_roles_parse_in_order_without_duplicates():
    roles = ["arn:aws:iam::111111111111:role/app", "arn:aws:iam::111111111111:role/team/batch", "arn:aws:iam::111111111111:role/app"]
    config = parse_config(_account(f"launch_roles = {roles!r}".replace("'", '"')), {}, source="amibot.toml")
    assert config.accounts["prod"].launch_roles == (roles[0], roles[1])


def test_defaults():
    config = parse_config(MINIMAL, {})
    assert config.bot == BotConfig()
    assert config.bot == BotConfig("/ami", "us-east-1", 30, 24, None, 90)
    assert config.organization is None
    assert config.accounts["prod"] == AccountConfig("prod", "111111111111", None, None, (), {}, {}, False, True, False)


def test_example_file_parses_with_prod_and_dev():
    config = load_config(str(REPO / "amibot.example.toml"), {})
    assert {"prod", "dev"} <= set(config.accounts)
    assert config.bot.command == "/ami"
    assert all(a.owners for a in config.accounts.values())


def test_account_lookup_by_alias_or_id():
    config = parse_config(VALID, {})
    assert config.account("prod").id == "111111111111"
    assert config.account(" PROD ").alias == "prod"
    assert config.account("022222222222").alias == "dev"
    assert config.account_by_id("333333333333").alias == "audit_ro"
    assert config.account_by_id("444444444444") is None
    with pytest.raises(UnknownAccountError) as info:
        config.account("staging")
    # Never every account and its id (issue 17: bot.access lists the asker's own).
    assert "staging" in str(info.value) and "prod" not in str(info.value) and "333333333333" not in str(info.value)
    with pytest.raises(UnknownAccountError, match="444444444444"):
        config.account("444444444444")


def _account(extra: str = "", alias: str = "prod", account_id: str = '"111111111111"') -> str:
    return f"[accounts.{alias}]\nid = {account_id}\n{extra}\n"


# (TOML text, key the error must name, a word the message must contain)
ERRORS = [
    # syntax, with the line
    ('[bot]\ncommand = ami\n' + MINIMAL, "bot.command", "line 2"),
    ('[bot]\ncommand = "/ami\n', "bot.command", "line 2"),
    ("[accounts.prod\n", "accounts.prod", "line 1"),
    # unknown keys (typo protection) name what is allowed
    ("[bot]\npoll_interval = 30\n" + MINIMAL, "bot.poll_interval", "poll_interval_seconds"),
    (_account("owner = ['U0ALICE']"), "accounts.prod.owner", "owners"),
    ("[organisation]\nid = 'o-a1b2c3d4e5'\n" + MINIMAL, "organisation", "[organization]"),
    ("[slack]\nbot_token = 'xoxb-1'\n" + MINIMAL, "slack", "SLACK_BOT_TOKEN"),
    ("[bot]\nsigning_secret = 'x'\n" + MINIMAL, "bot.signing_secret", "SLACK_SIGNING_SECRET"),
    ("[organization]\nid = 'o-a1b2c3d4e5'\nmanagement_account = '999999999999'\nroot = 'r-1'\n" + MINIMAL, "organization.root", "management_account"),
    # wrong types
    ("bot = 1\n" + MINIMAL, "bot", "table"),
    ("[bot]\npoll_interval_seconds = '30'\n" + MINIMAL, "bot.poll_interval_seconds", "integer"),
    ("[bot]\npoll_interval_seconds = 30.0\n" + MINIMAL, "bot.poll_interval_seconds", "integer"),
    ("[bot]\napproval_ttl_hours = true\n" + MINIMAL, "bot.approval_ttl_hours", "integer"),
    ("[bot]\ncommand = 1\n" + MINIMAL, "bot.command", "string"),
    (_account(account_id="111111111111"), "accounts.prod.id", 'id = "111111111111"'),
    (_account(account_id="11111111111"), "accounts.prod.id", 'id = "011111111111"'),
    (_account("owners = 'U0ALICE'"), "accounts.prod.owners", "array"),
    (_account("owners = [1]"), "accounts.prod.owners", "string"),
    (_account("allow_self_approval = 'yes'"), "accounts.prod.allow_self_approval", "true/false"),
    (_account("accept_shares = 1"), "accounts.prod.accept_shares", "true/false"),
    (_account("autoscaling_grant = 'no'"), "accounts.prod.autoscaling_grant", "true/false"),
    (_account("kms_keys = 'alias/x'"), "accounts.prod.kms_keys", "table"),
    (_account("launch_roles = 'arn:aws:iam::111111111111:role/app'"), "accounts.prod.launch_roles", "array"),
    (_account("launch_roles = [1]"), "accounts.prod.launch_roles", "string"),
    (_account("launch_roles = ['app-deployer']"), "accounts.prod.launch_roles", "not an IAM role ARN"),
    (_account("launch_roles = ['arn:aws:iam::111111111111:user/alice']"), "accounts.prod.launch_roles", "arn:aws:iam::111111111111:role/"),
    (_account("launch_roles = ['arn:aws:iam::222222222222:role/app']"), "accounts.prod.launch_roles", "account 222222222222"),
    (_account("kms_keys = { 'eu-west-1' = 1 }"), "accounts.prod.kms_keys.eu-west-1", "string"),
    ("accounts = ['prod']\n", "accounts", "[accounts.<alias>]"),
    ("[accounts]\nprod = '111111111111'\n", "accounts.prod", "table"),
    # accounts
    ("[bot]\n", "accounts", "no accounts"),
    ("", "accounts", "no accounts"),
    (_account(account_id='"11111111111"'), "accounts.prod.id", "12-digit"),
    (_account(account_id='"1111-1111-1111"'), "accounts.prod.id", "12-digit"),
    ("[accounts.prod]\nowners = []\n", "accounts.prod.id", "required"),
    (_account() + _account(alias="dev"), "accounts.dev.id", "accounts.prod"),
    (_account(alias="111111111111"), "accounts.111111111111", "12-digit"),
    (_account(alias="123"), "accounts.123", "all digits"),
    (_account(alias="Prod"), "accounts.Prod", "accounts.prod"),
    (_account(alias='"my prod"'), "accounts.my prod", "accounts.my-prod"),
    (_account(alias="_prod"), "accounts._prod", "not a valid alias"),
    (_account(alias="org"), "accounts.org", "grammar"),
    (_account(alias="to"), "accounts.to", "grammar"),
    (_account(alias="all"), "accounts.all", "grammar"),
    (_account(alias="ou-team"), "accounts.ou-team", "OU id"),
    (_account("owners = ['alice']"), "accounts.prod.owners", "`alice`"),
    (_account("owners = ['@alice']"), "accounts.prod.owners", "`@alice`"),
    (_account("owners = ['U0']"), "accounts.prod.owners", "`U0`"),
    (_account("owners = ['C0CHANNEL']"), "accounts.prod.owners", "`C0CHANNEL`"),
    (_account("role_arn = 'arn:aws:iam::222222222222:role/amibot'"), "accounts.prod.role_arn", "222222222222"),
    (_account("role_arn = 'arn:aws:iam::111111111111:user/amibot'"), "accounts.prod.role_arn", "not an IAM role ARN"),
    (_account("role_arn = 'amibot'"), "accounts.prod.role_arn", "not an IAM role ARN"),
    (_account("external_id = 'x1'"), "accounts.prod.external_id", "role_arn"),
    (_account("role_arn = 'arn:aws:iam::111111111111:role/a'\nexternal_id = 'x'"), "accounts.prod.external_id", "2 to 1224"),
    (_account("kms_keys = { 'eu-west-1' = 'ami-shared' }"), "accounts.prod.kms_keys.eu-west-1", "`ami-shared`"),
    (_account("kms_keys = { 'europe' = 'alias/k' }"), "accounts.prod.kms_keys.europe", "region"),
    (_account("kms_keys = { 'eu-west-1' = 'arn:aws:kms:us-east-1:111111111111:alias/k' }"), "accounts.prod.kms_keys.eu-west-1", "us-east-1"),
    (_account("kms_keys = { 'eu-west-1' = 'arn:aws:kms:eu-west-1:222222222222:alias/k' }"), "accounts.prod.kms_keys.eu-west-1", "222222222222"),
    (_account("verify_subnets = { 'eu-west-1' = 'subnet-xyz' }"), "accounts.prod.verify_subnets.eu-west-1", "`subnet-xyz`"),
    (_account("verify_subnets = { 'EU-WEST-1' = 'subnet-0abc1234' }"), "accounts.prod.verify_subnets.EU-WEST-1", "region"),
    # bot
    ("[bot]\ncommand = 'ami'\n" + MINIMAL, "bot.command", "/ami"),
    ("[bot]\ncommand = '/a b'\n" + MINIMAL, "bot.command", "not a slash command"),
    ("[bot]\ndefault_region = 'europe'\n" + MINIMAL, "bot.default_region", "`europe`"),
    ("[bot]\ndefault_region = 'eu-west'\n" + MINIMAL, "bot.default_region", "`eu-west`"),
    ("[bot]\npoll_interval_seconds = 4\n" + MINIMAL, "bot.poll_interval_seconds", "5 to 3600"),
    ("[bot]\npoll_interval_seconds = 3601\n" + MINIMAL, "bot.poll_interval_seconds", "5 to 3600"),
    ("[bot]\napproval_ttl_hours = 0\n" + MINIMAL, "bot.approval_ttl_hours", "1 to 720"),
    ("[bot]\napproval_ttl_hours = 721\n" + MINIMAL, "bot.approval_ttl_hours", "1 to 720"),
    ("[bot]\nmax_share_days = 0\n" + MINIMAL, "bot.max_share_days", "1 to 90"),
    ("[bot]\nmax_share_days = 365\n" + MINIMAL, "bot.max_share_days", "1 to 90"),
    ("[bot]\nnotify_channel = '#ops'\n" + MINIMAL, "bot.notify_channel", "`#ops`"),
    ("[bot]\nnotify_channel = 'U0ALICE'\n" + MINIMAL, "bot.notify_channel", "channel id"),
    # organization
    ("[organization]\nmanagement_account = '999999999999'\n" + MINIMAL, "organization.id", "required"),
    ("[organization]\nid = 'o-a1b2c3d4e5'\n" + MINIMAL, "organization.management_account", "required"),
    ("[organization]\nid = 'org-1'\nmanagement_account = '999999999999'\n" + MINIMAL, "organization.id", "`org-1`"),
    ("[organization]\nid = 'o-a1b2c3d4e5'\nmanagement_account = '9999'\n" + MINIMAL, "organization.management_account", "12-digit"),
    ("[organization]\nid = 'o-a1b2c3d4e5'\nmanagement_account = 999999999999\n" + MINIMAL, "organization.management_account", "quote"),
    ("organization = 'o-a1b2c3d4e5'\n" + MINIMAL, "organization", "table"),
    ("[bot]\nrequired_tags = 'owner'\n" + MINIMAL, "bot.required_tags", "required_tags = ["),
    ("[bot]\nrequired_tags = ['owner', 'owner']\n" + MINIMAL, "bot.required_tags", "twice"),
    ("[bot]\nrequired_tags = ['aws:owner']\n" + MINIMAL, "bot.required_tags", "aws:"),
    ("[bot]\ndrift_check_hours = 0\n" + MINIMAL, "bot.drift_check_hours", "1 to 720"),
    ("[bot]\ndrift_call_budget = 0\n" + MINIMAL, "bot.drift_call_budget", "10 to 1000000"),
]


@pytest.mark.parametrize("text,key,word", ERRORS, ids=[f"{k}:{w}" for _, k, w in ERRORS])
def test_each_error_names_its_key(text, key, word):
    with pytest.raises(ConfigError) as info:
        parse_config(text, {}, source="amibot.toml")
    err = info.value
    assert err.key == key
    message = err.user_message()
    assert f"`{key}`" in message
    assert word in message, f"{word!r} not in {message!r}"
    assert "\nFix: " in message


# ---- the environment


def test_env_provides_slack_settings_and_db_path():
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s3cret",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_API_URL": "http://127.0.0.1:8765/api",
        "AMIBOT_DB": "/tmp/x/amibot.sqlite",
    }
    config = parse_config(MINIMAL, env)
    assert config.slack == SlackSettings("xoxb-1", "s3cret", "xapp-1", "http://127.0.0.1:8765/api/")
    assert config.db_path == "/tmp/x/amibot.sqlite"


def test_env_empty_values_mean_unset():
    config = parse_config(MINIMAL, {"SLACK_BOT_TOKEN": "", "SLACK_API_URL": "", "AMIBOT_DB": ""})
    assert config.slack.bot_token is None
    assert config.slack.api_url == "https://slack.com/api/"
    assert config.db_path == "amibot.db"


def test_env_slack_api_url_keeps_its_slash():
    assert parse_config(MINIMAL, {"SLACK_API_URL": "https://slack.example/api/"}).slack.api_url == "https://slack.example/api/"


@pytest.mark.parametrize("url", ["slack.com/api", "ftp://x/", "https://", "http:///api"])
def test_env_bad_slack_api_url(url):
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL, {"SLACK_API_URL": url})
    assert info.value.key == "SLACK_API_URL"
    assert "https://slack.com/api/" in info.value.user_message()


@pytest.mark.parametrize(
    "env,socket_mode,missing",
    [
        ({}, False, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, False, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, False, None),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, True, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, True, None),
        ({"SLACK_APP_TOKEN": "xapp-1"}, True, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "s"}, False, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, True, "SLACK_APP_TOKEN"),
    ],
)
def test_require_slack(env, socket_mode, missing):
    config = parse_config(MINIMAL, env)
    if missing is None:
        require_slack(config, socket_mode=socket_mode)
        return
    with pytest.raises(ConfigError) as info:
        require_slack(config, socket_mode=socket_mode)
    assert info.value.key == missing
    assert f"export {missing}=" in info.value.user_message() or missing in info.value.user_message()


# ---- finding the file


def test_load_config_path_argument_beats_env(tmp_path):
    chosen = tmp_path / "chosen.toml"
    chosen.write_text(MINIMAL)
    other = tmp_path / "other.toml"
    other.write_text(_account(alias="other"))
    config = load_config(str(chosen), {"AMIBOT_CONFIG": str(other), "AMIBOT_DB": "x.db"})
    assert list(config.accounts) == ["prod"]
    assert config.db_path == "x.db"


def test_load_config_from_env(tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(_account(alias="other"))
    assert list(load_config(None, {"AMIBOT_CONFIG": str(other)}).accounts) == ["other"]


def test_load_config_default_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(None, {})
    assert "no config found" in str(info.value)
    assert "amibot.example.toml" in str(info.value)
    (tmp_path / "amibot.toml").write_text(MINIMAL)
    assert list(load_config(None, {}).accounts) == ["prod"]


def test_load_config_missing_named_files(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "nope.toml"), {})
    assert info.value.key == "--config" and "nope.toml" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(None, {"AMIBOT_CONFIG": str(tmp_path / "gone.toml")})
    assert info.value.key == "AMIBOT_CONFIG" and "gone.toml" in str(info.value)
    with pytest.raises(ConfigError, match="not a file"):
        load_config(str(tmp_path), {})


def test_load_config_reports_syntax_errors_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[bot]\ndefault_region = eu-west-1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(bad), {})
    assert info.value.key == "bot.default_region"
    assert "bad.toml" in str(info.value) and "line 5" in str(info.value)


def test_load_config_rejects_non_utf8(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(str(bad), {})


def test_config_objects_are_frozen():
    config = parse_config(MINIMAL, {})
    with pytest.raises(AttributeError):
        config.bot.command = "/x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.accounts["prod"].id = "2"  # type: ignore[misc]
    assert isinstance(config, Config)


REACH = """
[bot]
allowed_channels = ["C0PLATFORM", "G0OPS"]
require_reason = true
approval_dm = false
reminder_hours_before_expiry = [1, 12, 12]

[accounts.prod]
id = "111111111111"
owners = ["U0ALICE"]
approval_channel = "C0APPROVE"
approval_dm = true
"""


def test_reach_keys_parse():
    config = parse_config(REACH, {}, source="<test>")
    assert config.bot.allowed_channels == ("C0PLATFORM", "G0OPS")
    assert config.bot.require_reason is True and config.bot.approval_dm is False
    assert config.bot.reminder_hours_before_expiry == (12, 1)  # latest first, once each
    assert config.account("prod").approval_channel == "C0APPROVE" and config.account("prod").approval_dm is True
    defaults = parse_config('[accounts.prod]\nid = "111111111111"\n', {}, source="<test>")
    assert defaults.bot.approval_dm is True and defaults.bot.reminder_hours_before_expiry == (12, 1)
    assert defaults.account("prod").approval_channel is None and defaults.account("prod").approval_dm is None


@pytest.mark.parametrize("bot, account, key, word", [
    ('allowed_channels = ["#platform"]', "", "bot.allowed_channels", "channel id"),
    ('allowed_channels = "C0PLATFORM"', "", "bot.allowed_channels", "allowed_channels = ["),
    ("reminder_hours_before_expiry = [0]", "", "bot.reminder_hours_before_expiry", "1 to 24"),
    ("reminder_hours_before_expiry = [48]", "", "bot.reminder_hours_before_expiry", "1 to 24"),
    ('reminder_hours_before_expiry = ["12h"]', "", "bot.reminder_hours_before_expiry", "whole numbers"),
    ('require_reason = "yes"', "", "bot.require_reason", "require_reason = true"),
    ("", 'approval_channel = "platform-approvals"', "accounts.prod.approval_channel", "channel id"),
    ("", 'approval_dm = "no"', "accounts.prod.approval_dm", "approval_dm = false"),
])
def test_reach_key_errors_name_the_key_and_the_fix(bot, account, key, word):
    text = f'[bot]\napproval_ttl_hours = 24\n{bot}\n[accounts.prod]\nid = "111111111111"\n{account}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, {}, source="<test>")
    assert key in str(info.value) and word in str(info.value)


def test_required_tags_and_drift_interval():
    config = parse_config("[bot]\nrequired_tags = ['owner', 'app', 'version']\ndrift_check_hours = 6\ndrift_call_budget = 500\n" + MINIMAL, {}, source="amibot.toml")
    assert config.bot.required_tags == ("owner", "app", "version") and config.bot.drift_check_hours == 6
    assert config.bot.drift_call_budget == 500
    defaults = parse_config(MINIMAL, {}, source="amibot.toml")
    assert defaults.bot.required_tags == () and defaults.bot.drift_check_hours == 24 and defaults.bot.drift_call_budget == 2000


def test_retire_and_retire_tag():
    config = load_config(str(REPO / "amibot.example.toml"), {})
    assert config.accounts["prod"].retire and config.accounts["prod"].retire_tag == ("lifecycle", "retirable")
    assert not config.accounts["dev"].retire and config.accounts["dev"].retire_tag is None
