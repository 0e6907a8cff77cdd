"""Finding and reading the config file, and assembling the :class:`Config` from its
tables and the environment."""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from aws.partitions import partition_for
from bot.config.account_tables import _parse_accounts, _parse_organization
from bot.config.bot_table import _parse_bot
from bot.config.checks import _check_keys, _syntax_error, _table
from bot.config.environment import _db_target, _slack_settings
from bot.config.policy import parse_policies, split_escalations
from bot.config.model import DEFAULT_CONFIG_PATH, DEFAULT_DB_PATH, Config
from bot.errors import ConfigError


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

    _check_keys(data, "", ("bot", "accounts", "organization", "policy"))
    data, escalations = split_escalations(data)  # accounts.<a>.escalate_* are read with the policy
    bot = _parse_bot(_table(data, "bot", "bot", required=False))
    accounts = _parse_accounts(data)
    organization = _parse_organization(data)
    policies = parse_policies(data, tuple(accounts))
    if organization is not None:
        # Organizations ARNs are in the partition of the regions the bot works in.
        organization = replace(organization, partition=partition_for(bot.default_region))
    return Config(
        bot=bot,
        accounts=accounts,
        organization=organization,
        slack=_slack_settings(env),
        db_path=_db_target(env.get("AMIBOT_DB") or DEFAULT_DB_PATH),
        policies=policies,
        escalations=escalations,
    )
