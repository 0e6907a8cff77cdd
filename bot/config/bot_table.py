"""The ``[bot]`` table: the command, the default region, timings and limits, channels,
reminders and required tags."""

from __future__ import annotations

import re
from typing import Any, Mapping

from bot.config.checks import (
    _CHANNEL_RE,
    _COMMAND_RE,
    _channel_list,
    _check_keys,
    _check_region,
    _get,
    _int_range,
    _type_name,
)
from bot.config.model import BotConfig
from bot.errors import ConfigError


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
        drift_call_budget=_int_range(
            _get(table, p, "drift_call_budget", int, "drift_call_budget = 2000", d.drift_call_budget),
            f"{p}.drift_call_budget", 10, 1_000_000, "AWS calls one drift run may make (pacing is botocore's adaptive retries)",
        ),
        aws_commands_per_minute=_int_range(
            _get(table, p, "aws_commands_per_minute", int, "aws_commands_per_minute = 20", d.aws_commands_per_minute),
            f"{p}.aws_commands_per_minute", 1, 600, "commands a minute per user (audit, requests, the form's AMI lookups)",
        ),
        slack_app_id=_slack_app_id(table, p),
        slack_org_wide=_get(table, p, "slack_org_wide", bool, "slack_org_wide = true", d.slack_org_wide),
    )


def _slack_app_id(table: Mapping[str, Any], p: str) -> str | None:
    """``slack_app_id = "A0123ABCD"``: the app's id (Basic Information → App ID)."""
    value = _get(table, p, "slack_app_id", str, 'slack_app_id = "A0123ABCD"', None)
    if value is not None and not re.fullmatch(r"A[A-Z0-9]{2,}", value):
        raise ConfigError(f"{p}.slack_app_id", f"`{value}` is not a Slack app id", 'copy it from the app\'s Basic Information page, e.g. slack_app_id = "A0123ABCD"')
    return value


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
