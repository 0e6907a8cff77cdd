"""What comes from the environment, never the file: the Slack secrets and API URL
(``SLACK_*``), the database (``AMIBOT_DB``), and the check that the secrets the chosen
mode needs are there."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Mapping

from bot.config.model import DEFAULT_SLACK_API_URL, Config, SlackSettings
from bot.errors import ConfigError


def _loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: http:// stays on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _slack_settings(env: Mapping[str, str]) -> SlackSettings:
    api_url = env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not re.match(r"https?://[^/\s]+", api_url, re.IGNORECASE):
        raise ConfigError("SLACK_API_URL", f"`{api_url}` is not an http:// or https:// URL", f"set it to the Web API's base URL, e.g. {DEFAULT_SLACK_API_URL}, or unset it")
    host = urllib.parse.urlsplit(api_url).hostname or ""
    if api_url.lower().startswith("http://") and not _loopback(host):
        raise ConfigError("SLACK_API_URL", f"`{api_url}` sends the bot token unencrypted to {host}",
                          f"use https:// (e.g. {DEFAULT_SLACK_API_URL}); http:// is only for a local fake Slack on 127.0.0.1 or localhost")
    if not api_url.endswith("/"):
        api_url += "/"
    return SlackSettings(
        bot_token=env.get("SLACK_BOT_TOKEN") or None,
        signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        app_token=env.get("SLACK_APP_TOKEN") or None,
        api_url=api_url,
    )
