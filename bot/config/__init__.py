"""Configuration: a TOML file for the shape of the deployment, the environment for secrets.

``load_config`` finds the file (``--config PATH``, else ``$AMIBOT_CONFIG``, else
``./amibot.toml``), ``parse_config`` validates it. Every problem is a
:class:`~bot.errors.ConfigError` naming the exact key (``accounts.prod.id``), what is
wrong and the fix, so the bot refuses to start with a message a person can act on.

Secrets never live in the file: Slack tokens come from ``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET`` and ``SLACK_APP_TOKEN``; AWS credentials from boto3's own chain.

The package, by concern (this module only re-exports, so ``from bot.config import X``
is the one way in):

* :mod:`bot.config.model`: the frozen dataclasses and the account lookups on ``Config``;
* :mod:`bot.config.loading`: finding and reading the file, and assembling the ``Config``;
* :mod:`bot.config.checks`: the patterns and generic checks, with their error messages;
* :mod:`bot.config.bot_table`: the ``[bot]`` table;
* :mod:`bot.config.account_tables`: the ``[accounts.<alias>]`` and ``[organization]`` tables;
* :mod:`bot.config.policy`: the ``[[policy]]`` rules and ``accounts.<a>.escalate_*``;
* :mod:`bot.config.environment`: what comes from the environment (Slack secrets, ``AMIBOT_DB``).
"""

from __future__ import annotations

from bot.config.environment import require_slack
from bot.config.loading import load_config, parse_config
from bot.config.model import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    DEFAULT_SLACK_API_URL,
    AccountConfig,
    BotConfig,
    Config,
    OrganizationConfig,
    SlackSettings,
)
from bot.config.policy import Escalation, PolicyRule

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DB_PATH",
    "DEFAULT_SLACK_API_URL",
    "AccountConfig",
    "Escalation",
    "PolicyRule",
    "BotConfig",
    "Config",
    "OrganizationConfig",
    "SlackSettings",
    "load_config",
    "parse_config",
    "require_slack",
]
