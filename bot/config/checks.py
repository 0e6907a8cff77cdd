"""The generic checks of the TOML document, each failing with a
:class:`~bot.errors.ConfigError` that names the key, says what is wrong and gives the fix:
syntax errors, unknown keys, types, ranges, regions, channel ids; and the patterns the
tables are checked against."""

from __future__ import annotations

import difflib
import re
import tomllib
from typing import Any, Mapping

from bot.errors import ConfigError
from bot.verbs.lexer import REGION_RE

_A = re.ASCII
_ROLE_ARN_RE = re.compile(r"arn:aws[-a-z]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}", _A)
_OWNER_RE = re.compile(r"[UWS][A-Z0-9]{2,}", _A)
_CHANNEL_RE = re.compile(r"[CG][A-Z0-9]+", _A)
_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}", _A)
_ORG_ID_RE = re.compile(r"o-[a-z0-9]{10,32}", _A)
_COMMAND_RE = re.compile(r"/[^\s/]{1,31}")


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
        shown = ", ".join("[accounts.<alias>]" if a == "accounts" else "[[policy]]" if a == "policy" and not prefix else (f"[{a}]" if not prefix else a) for a in allowed)
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


def _optional_channel(table: Mapping[str, Any], prefix: str, key: str) -> str | None:
    if key not in table:
        return None
    return _channel_id(table[key], f"{prefix}.{key}", f'{key} = "C0123456789"')


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
