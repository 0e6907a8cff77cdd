"""The ``[[policy]]`` rules (approval policy as configuration) and the escalation keys
of ``[accounts.<alias>]`` (``escalate_to``, ``escalate_after_hours``).

Each problem is a :class:`~bot.errors.ConfigError` naming the rule
(``policy[2] "sandbox-to-sandbox".approve``). What the rules *mean* is decided in
:mod:`bot.policy`; whether a rule names a verb amibot has, or is shadowed by an earlier
rule, is checked by ``amibot doctor`` (:func:`bot.policy.rule_problems`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bot.config.checks import _OWNER_RE, _check_keys, _get, _int_range, _type_name
from bot.errors import ConfigError

APPROVE_MODES = ("auto", "owners", "two-owners")
ANY = "*"
ORG = "org"  # in ``to``: a share with the organization or one of its OUs
MAX_RULE_HOURS = 24 * 365
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}", re.ASCII)


@dataclass(frozen=True)
class PolicyRule:
    """One ``[[policy]]`` table: which requests it matches, and how they are approved."""

    name: str
    sources: tuple[str, ...] = (ANY,)  # ``from``: account aliases or "*"
    targets: tuple[str, ...] = (ANY,)  # ``to``: account aliases, "org" or "*"
    operations: tuple[str, ...] = (ANY,)  # verb names or "*"
    approve: str = "owners"  # auto | owners | two-owners
    ami_tags: dict[str, str] = field(default_factory=dict)  # the AMI must carry all of these
    max_duration_hours: int | None = None  # longer (or open-ended) time-boxed shares are refused
    break_glass: bool = False  # an owner may approve their own request under this rule

    @property
    def label(self) -> str:
        """How errors and the doctor name it."""
        return f'policy "{self.name}"'


@dataclass(frozen=True)
class Escalation:
    """``accounts.<alias>.escalate_to`` / ``escalate_after_hours``."""

    to: tuple[str, ...]  # Slack user or group ids
    after_hours: float


_RULE_KEYS = ("name", "from", "to", "operations", "approve", "ami_tags", "max_duration_hours", "break_glass")
_ESCALATION_KEYS = ("escalate_to", "escalate_after_hours")


def parse_policies(data: Mapping[str, Any], aliases: tuple[str, ...]) -> tuple[PolicyRule, ...]:
    """The ``[[policy]]`` array of tables, in file order (first match wins)."""
    raw = data.get("policy", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError("policy", f"must be an array of tables, not {_type_name(raw)}",
                          'write each rule as [[policy]] with name = "…" and approve = "owners" under it')
    rules: list[PolicyRule] = []
    seen: set[str] = set()
    for index, table in enumerate(raw, start=1):
        rule = _parse_rule(index, table, aliases)
        if rule.name in seen:
            raise ConfigError(f'policy[{index}].name', f'"{rule.name}" names an earlier rule too', "give each rule its own name (the card and the history show it)")
        seen.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _parse_rule(index: int, table: dict[str, Any], aliases: tuple[str, ...]) -> PolicyRule:
    where = f"policy[{index}]"
    _check_keys(table, where, _RULE_KEYS)
    name = _get(table, where, "name", str, 'name = "sandbox-to-sandbox"').strip()
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}.name", f"`{name[:80]}` is not a rule name (1 to 64 letters, digits, space, . _ : -)",
                          'name the rule, e.g. name = "sandbox-to-sandbox" (the card and the history show it)')
    p = f'policy[{index}] "{name}"'
    sources = _names(table, p, "from", aliases, allow_org=False)
    targets = _names(table, p, "to", aliases, allow_org=True)
    operations = _names(table, p, "operations", None, allow_org=False)
    approve = _get(table, p, "approve", str, 'approve = "owners"', "owners")
    if approve not in APPROVE_MODES:
        raise ConfigError(f"{p}.approve", f"`{approve}` is not an approval mode", 'use "auto", "owners" or "two-owners"')
    tags = _get(table, p, "ami_tags", dict, 'ami_tags = { golden = "approved" }', {})
    for key, value in tags.items():
        if not isinstance(value, str):
            raise ConfigError(f"{p}.ami_tags.{key}", f"must be a string, not {_type_name(value)}", f'write it as {key} = "value"')
    hours = _get(table, p, "max_duration_hours", int, "max_duration_hours = 24", None)
    if hours is not None:
        _int_range(hours, f"{p}.max_duration_hours", 1, MAX_RULE_HOURS, "hours")
    break_glass = _get(table, p, "break_glass", bool, "break_glass = true", False)
    if break_glass and approve == "auto":
        raise ConfigError(f"{p}.break_glass", 'has no meaning with approve = "auto" (nobody approves)', 'remove break_glass, or use approve = "owners"')
    return PolicyRule(name, sources, targets, operations, approve, dict(tags), hours, break_glass)


def _names(table: dict[str, Any], p: str, key: str, aliases: tuple[str, ...] | None, *, allow_org: bool) -> tuple[str, ...]:
    value = table.get(key, ANY)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{p}.{key}", "must be a list of names or \"*\"", f'write it as {key} = ["name", …] or {key} = "*"')
    words = tuple(v.strip().lower() for v in value)
    if ANY in words:
        return (ANY,)
    if aliases is not None:
        known = set(aliases) | ({ORG} if allow_org else set())
        for word in words:
            if word not in known:
                raise ConfigError(f"{p}.{key}", f"`{word}` is not a configured account",
                                  f"use account aliases ({', '.join(aliases)})" + (', "org"' if allow_org else "") + ' or "*"')
    return words


def split_escalations(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Escalation]]:
    """The document without the escalation keys of its account tables (they are read
    here), and each account's :class:`Escalation`."""
    accounts = data.get("accounts")
    if not isinstance(accounts, dict):
        return dict(data), {}
    stripped: dict[str, Any] = {}
    escalations: dict[str, Escalation] = {}
    for alias, table in accounts.items():
        if not isinstance(table, dict):
            stripped[alias] = table
            continue
        stripped[alias] = {k: v for k, v in table.items() if k not in _ESCALATION_KEYS}
        if any(k in table for k in _ESCALATION_KEYS):
            escalations[alias] = _parse_escalation(f"accounts.{alias}", table)
    return {**data, "accounts": stripped}, escalations


def _parse_escalation(p: str, table: dict[str, Any]) -> Escalation:
    to = _get(table, p, "escalate_to", list, 'escalate_to = ["S0ONCALL"]')
    if not to or not all(isinstance(o, str) and _OWNER_RE.fullmatch(o) for o in to):
        raise ConfigError(f"{p}.escalate_to", "must list Slack user ids (U…/W…) or user-group ids (S…)", 'write it as escalate_to = ["S0ONCALL"]')
    hours = table.get("escalate_after_hours")
    if hours is None:
        raise ConfigError(f"{p}.escalate_after_hours", "is required with escalate_to", f"add escalate_after_hours = 4 to [{p}]")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= MAX_RULE_HOURS:
        raise ConfigError(f"{p}.escalate_after_hours", f"{hours} is out of range", f"use a number of hours above 0 and at most {MAX_RULE_HOURS}")
    return Escalation(tuple(to), float(hours))
