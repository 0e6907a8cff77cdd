"""The ``[accounts.<alias>]`` tables (ids, roles, owners, keys, subnets, launch roles) and
the ``[organization]`` table."""

from __future__ import annotations

import re
from typing import Any, Mapping

from bot.config.checks import (
    _EXTERNAL_ID_RE,
    _ORG_ID_RE,
    _OWNER_RE,
    _ROLE_ARN_RE,
    _check_keys,
    _get,
    _optional_channel,
    _region_map,
    _table,
    _type_name,
)
from bot.config.model import AccountConfig, OrganizationConfig
from bot.errors import ConfigError
from bot.verbs.lexer import (
    ACCOUNT_ID_RE,
    ALIAS_RE,
    KMS_ARN_RE,
    SUBNET_ID_RE,
    is_kms_key,
    is_reserved_word,
)


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

    launch_roles = _parse_roles(table, p, account_id, "launch_roles", "app-deployer")
    pass_roles = _parse_roles(table, p, account_id, "pass_roles", "app/*")

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

    retire_tag = _get(table, p, "retire_tag", str, 'retire_tag = "lifecycle=retirable"', None)
    if retire_tag is not None:
        key, equals, value = retire_tag.partition("=")
        if not equals or not key.strip() or key.strip().lower().startswith(("aws:", "amibot:")):
            raise ConfigError(f"{p}.retire_tag", f"`{retire_tag}` is not a tag amibot can require", 'write key=value, e.g. retire_tag = "lifecycle=retirable"')
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
        retire=_get(table, p, "retire", bool, "retire = true", False),
        retire_tag=(retire_tag.partition("=")[0].strip(), retire_tag.partition("=")[2]) if retire_tag else None,
        migrate=_get(table, p, "migrate", bool, "migrate = false", True),
        pass_roles=pass_roles,
        requesters=_parse_requesters(table, p),
    )


def _parse_requesters(table: Mapping[str, Any], p: str) -> tuple[str, ...] | None:
    """``requesters``: the Slack user or group ids who may request with this account
    as the source; absent: everyone in an allowed channel (issue 17)."""
    example = 'requesters = ["U0123ABCD", "S0456EFGH"]'
    raw = _get(table, p, "requesters", list, example, None)
    if raw is None:
        return None
    found: list[str] = []
    for who in raw:
        if not isinstance(who, str) or not _OWNER_RE.fullmatch(who):
            raise ConfigError(f"{p}.requesters", f"`{who}` is not a Slack user id (U... or W...) or user-group id (S...)", f"use member or group ids, e.g. {example}")
        if who not in found:
            found.append(who)
    return tuple(found)


def _parse_roles(table: Mapping[str, Any], p: str, account_id: str, key: str, sample: str) -> tuple[str, ...]:
    """IAM role ARNs of this account: ``launch_roles`` (the roles that launch
    instances from what is shared or copied here) or ``pass_roles`` (the instance
    roles a migration may pass to EC2; ``*`` allowed in the name, for a path)."""
    example = f'{key} = ["arn:aws:iam::{account_id}:role/{sample}"]'
    roles = _get(table, p, key, list, example, [])
    found: list[str] = []
    for role in roles:
        if not isinstance(role, str):
            raise ConfigError(f"{p}.{key}", f"must hold strings, not {_type_name(role)}", f"write it as {example}")
        m = _ROLE_ARN_RE.fullmatch(role.replace("*", "x") if key == "pass_roles" else role)
        if not m:
            raise ConfigError(f"{p}.{key}", f"`{role}` is not an IAM role ARN", f"use arn:aws:iam::{account_id}:role/<name>, e.g. {example}")
        if m.group(1) != account_id:
            raise ConfigError(
                f"{p}.{key}",
                f"`{role}` is in account {m.group(1)}, but {p}.id is {account_id}",
                f"list only roles of account {account_id}: amibot asks that account's IAM about them",
            )
        if role not in found:
            found.append(role)
    return tuple(found)


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
