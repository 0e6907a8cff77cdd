"""``amibot doctor``: what is wrong with this installation, and how to fix it.

Each check is a function of its own returning :class:`CheckResult` rows (so each can
be tested alone); :func:`run_doctor` runs them in order and :func:`render_table`
prints them. A check that cannot run because an earlier one failed (an account whose
role cannot be assumed) says so in the failing row instead of adding rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from aws import doctor as aws_doctor
from aws.errors import AwsFailure
from aws.sessions import AwsSessions
from bot.config import AccountConfig, Config, load_config
from bot.errors import ConfigError
from bot.policy import rule_problems
from bot.verbs import registry
from bot.slack_scopes import OPTIONAL_BOT_SCOPES, REQUIRED_BOT_SCOPES, missing_scopes

OK, FAIL, WARN = "OK", "FAIL", "WARN"


@dataclass(frozen=True)
class CheckResult:
    """One row of the doctor's table."""

    check: str
    status: str  # OK, FAIL or WARN
    detail: str
    fix: str = ""


class SlackAuth(Protocol):
    """What the Slack check needs: ``auth.test`` (slack_sdk's WebClient has it)."""

    def auth_test(self) -> Any: ...


# ------------------------------------------------------------------ configuration


def check_config(path: str | None, env: Mapping[str, str] | None = None) -> tuple[CheckResult, Config | None]:
    """Load and validate the configuration."""
    try:
        config = load_config(path, env)
    except ConfigError as error:
        return CheckResult("config", FAIL, error.detail, (error.fix or "").removeprefix("Fix: ")), None
    return CheckResult("config", OK, f"{len(config.accounts)} accounts: {', '.join(config.accounts)}"), config


def check_policies(config: Config) -> CheckResult:
    """The ``[[policy]]`` rules: every verb they name makes requests, and no rule is
    shadowed by an earlier one (unknown accounts are refused when the config loads)."""
    if not config.policies:
        return CheckResult("policy", OK, "no [[policy]] rules: one owner of each account touched approves every request")
    problems = rule_problems(config, [v.name for v in registry.ALL if v.prepare is not None])
    if problems:
        return CheckResult("policy", FAIL, "; ".join(problems), "fix the operations named, and move or remove the rules never used (first match wins)")
    return CheckResult("policy", OK, f"{len(config.policies)} rules: " + ", ".join(r.name for r in config.policies))


def check_signing_secret(config: Config) -> CheckResult:
    """SLACK_SIGNING_SECRET is set (HTTP mode refuses every request without it)."""
    if config.slack.signing_secret:
        return CheckResult("slack signing secret", OK, "SLACK_SIGNING_SECRET is set")
    return CheckResult(
        "slack signing secret", FAIL, "SLACK_SIGNING_SECRET is not set",
        "Copy the Signing Secret from the app's Basic Information page into SLACK_SIGNING_SECRET.",
    )


# ------------------------------------------------------------------ Slack


def check_slack_token(config: Config, client: SlackAuth) -> list[CheckResult]:
    """``auth.test`` with the bot token, then the scopes it has (``x-oauth-scopes``)
    against :data:`bot.slack_scopes.REQUIRED_BOT_SCOPES`."""
    if not config.slack.bot_token:
        return [CheckResult("slack token", FAIL, "SLACK_BOT_TOKEN is not set",
                            "Install the app to the workspace and put its Bot User OAuth Token (xoxb-…) in SLACK_BOT_TOKEN.")]
    try:
        response = client.auth_test()
    except Exception as error:  # slack_sdk raises SlackApiError (invalid_auth, ...) or a connection error
        answer = getattr(error, "response", None)
        reason = answer.get("error") if answer is not None and hasattr(answer, "get") else f"{type(error).__name__}: {error}"
        return [CheckResult("slack token", FAIL, f"auth.test failed: {reason}",
                            "Use the app's current Bot User OAuth Token (reinstall the app if it was revoked); "
                            f"check SLACK_API_URL ({config.slack.api_url}).")]
    rows = [CheckResult("slack token", OK, f"bot {response.get('user_id')} in team {response.get('team_id')} ({response.get('team')})")]
    rows.append(check_slack_identity(config, response))
    headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    header = headers.get("x-oauth-scopes")
    if isinstance(header, list):
        header = ",".join(header)
    if header is None:
        rows.append(CheckResult("slack scopes", WARN, "Slack did not report the token's scopes (no x-oauth-scopes header)",
                                f"Check by hand that the app has: {', '.join(REQUIRED_BOT_SCOPES)}."))
        return rows
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = missing_scopes(granted)
    if missing:
        why = "; ".join(f"{s}, for {REQUIRED_BOT_SCOPES[s]}" for s in missing)
        rows.append(CheckResult("slack scopes", FAIL, f"missing: {why}",
                                f"Add {', '.join(missing)} under OAuth & Permissions → Bot Token Scopes, then reinstall the app."))
    else:
        rows.append(CheckResult("slack scopes", OK, ", ".join(REQUIRED_BOT_SCOPES)))
    optional = missing_scopes(granted, OPTIONAL_BOT_SCOPES)
    if optional:
        why = "; ".join(f"{s}: {OPTIONAL_BOT_SCOPES[s]}" for s in optional)
        rows.append(CheckResult("slack optional scopes", WARN, f"missing: {why}",
                                f"Add {', '.join(optional)} under OAuth & Permissions → Bot Token Scopes, then reinstall the app."))
    return rows


def check_slack_identity(config: Config, response: Any) -> CheckResult:
    """What the endpoint will compare payloads with (``bot.slack_identity``): the
    configured app id against auth.test's, and an org-wide install's enterprise."""
    app_id, enterprise = response.get("app_id"), response.get("enterprise_id")
    if config.bot.slack_app_id and app_id and app_id != config.bot.slack_app_id:
        return CheckResult("slack app", FAIL, f"the token belongs to app {app_id}, not bot.slack_app_id {config.bot.slack_app_id}",
                           "Use the token of the app in bot.slack_app_id, or correct bot.slack_app_id: payloads of other apps are refused (403).")
    if config.bot.slack_org_wide and not enterprise:
        return CheckResult("slack app", FAIL, "bot.slack_org_wide is set but auth.test names no enterprise",
                           "Set slack_org_wide only for an Enterprise Grid org-wide install.")
    scope = f"every workspace of enterprise {enterprise}" if config.bot.slack_org_wide else f"team {response.get('team_id')}" + (f" (enterprise {enterprise})" if enterprise else "")
    app = config.bot.slack_app_id or app_id
    if not app:
        return CheckResult("slack app", WARN, f"payloads accepted from {scope}; the app id is unknown, so api_app_id is not compared",
                           "Set bot.slack_app_id (Basic Information → App ID).")
    return CheckResult("slack app", OK, f"payloads accepted from {scope}, app {app}")


# ------------------------------------------------------------------ AWS


def account_regions(config: Config, account: AccountConfig) -> list[str]:
    """The regions amibot works in for this account: the default region and every
    region named in its keys or verification subnets."""
    regions = {config.bot.default_region, *account.kms_keys, *account.verify_subnets}
    return sorted(regions)


def check_account(config: Config, account: AccountConfig, sessions: AwsSessions) -> CheckResult:
    """The account's role is assumable (with its external id) and its credentials
    belong to the account the config claims."""
    name = f"account {account.alias}"
    how = f"role {account.role_arn}" + (" with its external id" if account.external_id else "") if account.role_arn else "the bot's own credentials"
    try:
        identity = aws_doctor.caller_identity(sessions, account.id, config.bot.default_region)
    except AwsFailure as error:
        if account.role_arn:
            fix = (f"Deploy the member-account role in {account.id} (deploy/cloudformation/member-account-role.json) "
                   "with a trust policy naming the bot's role"
                   + (" and this external id" if account.external_id else "")
                   + f"; check role_arn and external_id in [accounts.{account.alias}].")
        else:
            fix = "Give the bot AWS credentials (boto3's usual chain) or set role_arn for this account."
        return CheckResult(name, FAIL, f"cannot act through {how}: {error.code}: {error.aws_message} (its keys and regions were not checked)", fix)
    if identity.account_id != account.id:
        return CheckResult(
            name, FAIL, f"through {how} amibot is account {identity.account_id} ({identity.arn}), but the config says {account.id}",
            f"Set accounts.{account.alias}.id to the right account, or role_arn to a role in account {account.id}.",
        )
    return CheckResult(name, OK, f"through {how} amibot is {identity.arn}")


def check_keys(account: AccountConfig, sessions: AwsSessions) -> list[CheckResult]:
    """Each configured key (``kms_keys``) is present, enabled and usable for grants."""
    rows = []
    for region, key_ref in sorted(account.kms_keys.items()):
        name = f"key {account.alias}:{region}"
        where = f"accounts.{account.alias}.kms_keys.{region}"
        try:
            health = aws_doctor.key_health(sessions, account.id, region, key_ref)
        except AwsFailure as error:
            rows.append(CheckResult(name, FAIL, f"{key_ref}: {error.code}: {error.aws_message}",
                                    f"Create the key in {region} of {account.id} (or fix {where})."))
            continue
        if health.state != "Enabled":
            rows.append(CheckResult(name, FAIL, f"{key_ref} ({health.arn}) is {health.state}",
                                    f"Enable it (aws kms enable-key --key-id {health.arn} --region {region}) or name another key in {where}."))
        elif health.grant_problem:
            rows.append(CheckResult(name, FAIL, f"{key_ref}: CreateGrant (DryRun) refused: {health.grant_problem}",
                                    "Add the key-policy statement in deploy/cloudformation/key-policy-statement.json to the key's policy."))
        else:
            rows.append(CheckResult(name, OK, f"{key_ref} ({health.arn}) enabled, grants allowed"))
    return rows


def check_block_public_access(account: AccountConfig, region: str, sessions: AwsSessions) -> list[CheckResult]:
    """AMI and snapshot block public access in one region (a warning when off:
    amibot never shares publicly, but nothing else in the account stops it)."""
    name = f"block public access {account.alias}:{region}"
    try:
        state = aws_doctor.block_public_access(sessions, account.id, region)
    except AwsFailure as error:
        return [CheckResult(name, FAIL, f"{error.code}: {error.aws_message}",
                            "Allow ec2:GetImageBlockPublicAccessState and ec2:GetSnapshotBlockPublicAccessState "
                            "(the generated member-account policy does).")]
    rows = []
    if state.images_blocked:
        rows.append(CheckResult(f"{name} (AMIs)", OK, state.image_state))
    else:
        rows.append(CheckResult(f"{name} (AMIs)", WARN, f"AMIs can be made public ({state.image_state})",
                                f"aws ec2 enable-image-block-public-access --image-block-public-access-state block-new-sharing --region {region}"))
    if state.snapshots_blocked:
        rows.append(CheckResult(f"{name} (snapshots)", OK, state.snapshot_state))
    else:
        rows.append(CheckResult(f"{name} (snapshots)", WARN, f"snapshots can be made public ({state.snapshot_state})",
                                f"aws ec2 enable-snapshot-block-public-access --state block-all-sharing --region {region}"))
    return rows


def check_launch_templates(account: AccountConfig, region: str, sessions: AwsSessions) -> CheckResult:
    """Which launch templates ``update-lt`` may change there (those tagged
    ``amibot:update-lt = true``; docs/least-privilege.md)."""
    name = f"launch templates for update-lt {account.alias}:{region}"
    try:
        marked = aws_doctor.marked_launch_templates(sessions, account.id, region)
    except AwsFailure as error:
        return CheckResult(name, FAIL, f"{error.code}: {error.aws_message}", "Allow ec2:DescribeTags (the generated member-account policy does).")
    if marked:
        return CheckResult(name, OK, f"{len(marked)} marked: {', '.join(marked)}")
    return CheckResult(name, OK, "none marked: update-lt is refused there",
                       "To allow it for a template: aws ec2 create-tags --resources <lt-id> --tags Key=amibot:update-lt,Value=true")


# ------------------------------------------------------------------ the store


def check_store(db: str) -> CheckResult:
    """The store named by AMIBOT_DB (a SQLite file or a ``postgresql://`` URL): it
    opens (which runs any migration not yet run, as ``amibot serve`` would), answers,
    is at the expected schema version and takes a write (rolled back)."""
    from bot.store import open_store

    fix = ("Make AMIBOT_DB point to a file (and directory) the bot's user can write."
           if "://" not in db else "Check the URL, that the server runs, and that the user may connect and create tables.")
    try:
        store = open_store(db)
    except Exception as error:  # sqlite3 or psycopg errors; never the URL's password
        return CheckResult("store", FAIL, f"{_where(db)}: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}", fix)
    try:
        health = store.health()
        if not health["reachable"]:
            return CheckResult("store", FAIL, f"{health['database']} does not answer ({health.get('error')})", fix)
        if not health["migrated"]:
            return CheckResult("store", FAIL, f"{health['database']} is at schema {health['version']}, this build expects {health['expected_version']}",
                               "Run the amibot version that matches the database, or start this one once to migrate it.")
        try:
            with store.transaction() as tx:
                tx.execute("INSERT INTO audit (actor, at, detail) VALUES ('doctor', 0, 'write check')")
                raise _RollBack
        except _RollBack:
            pass
    except Exception as error:
        return CheckResult("store", FAIL, f"{_where(db)}: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}", fix)
    finally:
        store.close()
    return CheckResult("store", OK, f"{health['kind']} {health['database']} reachable, schema {health['version']}, writable")


def _where(db: str) -> str:
    """The database without credentials, for the table."""
    if "://" not in db:
        return db
    scheme, rest = db.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


class _RollBack(Exception):
    """Raised to roll back the store's write check."""


# ------------------------------------------------------------------ all of it


def run_doctor(
    config_path: str | None,
    env: Mapping[str, str] | None = None,
    *,
    slack_client: Callable[[Config], SlackAuth],
    sessions: Callable[[Config], AwsSessions],
) -> list[CheckResult]:
    """Every check, in order. ``slack_client`` and ``sessions`` build the clients
    from the loaded config (the wiring passes the bot's own)."""
    config_row, config = check_config(config_path, env)
    rows = [config_row]
    if config is None:
        return rows
    if config.policies:  # no rules: today's rule, nothing to check
        rows.append(check_policies(config))
    rows += check_slack_token(config, slack_client(config))
    rows.append(check_signing_secret(config))
    aws = sessions(config)
    for account in config.accounts.values():
        account_row = check_account(config, account, aws)
        rows.append(account_row)
        if account_row.status == FAIL:
            continue
        rows += check_keys(account, aws)
        for region in account_regions(config, account):
            rows += check_block_public_access(account, region, aws)
            rows.append(check_launch_templates(account, region, aws))
    rows.append(check_store(config.db_path))
    return rows


def failed(rows: list[CheckResult]) -> bool:
    """Whether any check failed (warnings do not fail the doctor)."""
    return any(row.status == FAIL for row in rows)


def render_table(rows: list[CheckResult]) -> str:
    """A plain-text table: check, status, detail; a ``fix:`` line under each row
    that is not OK."""
    width = max(len(r.check) for r in rows)
    lines = [f"{'CHECK'.ljust(width)}  STATUS  DETAIL", f"{'-' * width}  ------  ------"]
    for row in rows:
        lines.append(f"{row.check.ljust(width)}  {row.status.ljust(6)}  {row.detail}")
        if row.status != OK and row.fix:
            lines.append(f"{' ' * width}          fix: {row.fix}")
    fails = sum(r.status == FAIL for r in rows)
    warns = sum(r.status == WARN for r in rows)
    lines.append(f"\n{len(rows)} checks: {len(rows) - fails - warns} OK, {warns} WARN, {fails} FAIL")
    return "\n".join(lines) + "\n"
