"""``amibot doctor`` against the sandbox and the local Slack: green on the rehearsal
world, red (with a fix per failure) on a broken one."""

from __future__ import annotations

import json

import pytest

from bot.app import aws_sessions, slack_client
from bot.cli import main
from bot.doctor import FAIL, OK, WARN, check_store, failed, render_table, run_doctor
from offline import rehearsal

TOKEN = "xoxb-doctor"


@pytest.fixture
def world(sandbox, fake_slack, tmp_path):
    """The rehearsal world with block public access on everywhere it is configured."""
    seeded = rehearsal.seed(sandbox)
    for account, region in ((rehearsal.PROD, rehearsal.REGION), (rehearsal.DEV, rehearsal.REGION), (rehearsal.DEV, rehearsal.OTHER_REGION)):
        sandbox.client("ec2", account, region).enable_snapshot_block_public_access(State="block-all-sharing")
    fake_slack.accepted_tokens = {TOKEN}
    return seeded


def _env(fake_slack, tmp_path) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s3cr3t", "SLACK_API_URL": fake_slack.api_url, "AMIBOT_DB": str(tmp_path / "amibot.db")}


def _config(tmp_path, text: str = rehearsal.SANDBOX_TOML) -> str:
    path = tmp_path / "amibot.toml"
    path.write_text(text)
    return str(path)


def _doctor(config_path, env):
    return run_doctor(config_path, env, slack_client=slack_client, sessions=lambda c: aws_sessions(c, max_attempts=1))


def _row(rows, check):
    found = [r for r in rows if r.check == check]
    assert len(found) == 1, f"no single row {check!r} in:\n{render_table(rows)}"
    return found[0]


def test_green_on_the_sandbox(world, fake_slack, tmp_path):
    rows = _doctor(_config(tmp_path), _env(fake_slack, tmp_path))
    assert not failed(rows), render_table(rows)
    assert all(r.status == OK for r in rows), render_table(rows)
    checks = [r.check for r in rows]
    assert checks == [
        "config", "slack token", "slack app", "slack scopes", "slack signing secret",
        "account prod", "key prod:us-east-1",
        "block public access prod:us-east-1 (AMIs)", "block public access prod:us-east-1 (snapshots)",
        "launch templates for update-lt prod:us-east-1",
        "account dev", "key dev:eu-west-1", "key dev:us-east-1",
        "block public access dev:eu-west-1 (AMIs)", "block public access dev:eu-west-1 (snapshots)",
        "launch templates for update-lt dev:eu-west-1",
        "block public access dev:us-east-1 (AMIs)", "block public access dev:us-east-1 (snapshots)",
        "launch templates for update-lt dev:us-east-1",
        "store",
    ]
    assert f"arn:aws:sts::{rehearsal.PROD}:assumed-role/amibot/" in _row(rows, "account prod").detail


def test_doctor_names_the_launch_templates_marked_for_update_lt(world, sandbox, fake_slack, tmp_path):
    ec2 = sandbox.client("ec2", rehearsal.PROD, rehearsal.REGION)
    marked = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template(LaunchTemplateName="other", LaunchTemplateData={"InstanceType": "t3.micro"})
    ec2.create_tags(Resources=[marked], Tags=[{"Key": "amibot:update-lt", "Value": "true"}])
    rows = _doctor(_config(tmp_path), _env(fake_slack, tmp_path))
    assert _row(rows, f"launch templates for update-lt prod:{rehearsal.REGION}").detail == f"1 marked: {marked}"
    dev = _row(rows, "launch templates for update-lt dev:us-east-1")
    assert dev.detail == "none marked: update-lt is refused there" and "Key=amibot:update-lt,Value=true" in dev.fix


def test_red_on_a_broken_installation(world, sandbox, fake_slack, tmp_path):
    # A revoked token and a missing scope are seen by auth.test.
    env = _env(fake_slack, tmp_path)
    env["SLACK_BOT_TOKEN"] = "xoxb-revoked"
    rows = _doctor(_config(tmp_path), env)
    token = _row(rows, "slack token")
    assert (token.status, token.detail) == (FAIL, "auth.test failed: invalid_auth")
    assert "Bot User OAuth Token" in token.fix

    fake_slack.scopes.discard("groups:read")
    fake_slack.scopes.discard("groups:history")
    # dev's role trusts the bot only with its external id; the config sends another.
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "the-right-one"}}}]}
    sandbox.client("iam", rehearsal.DEV).create_role(RoleName="amibot-doctor", AssumeRolePolicyDocument=json.dumps(trust))
    sandbox.client("kms", rehearsal.PROD).disable_key(KeyId=world.cmk_arn)
    sandbox.client("ec2", rehearsal.PROD).disable_image_block_public_access()
    broken = rehearsal.SANDBOX_TOML.replace(
        f'role_arn = "arn:aws:iam::{rehearsal.DEV}:role/amibot"',
        f'role_arn = "arn:aws:iam::{rehearsal.DEV}:role/amibot-doctor"\nexternal_id = "a-wrong-one"',
    ) + '\n[accounts.stray]\nid = "333333333333"\nowners = ["U0ALICE"]\n'
    rows = _doctor(_config(tmp_path, broken), _env(fake_slack, tmp_path))
    table = render_table(rows)
    assert failed(rows)

    scopes = _row(rows, "slack scopes")
    assert scopes.status == FAIL and scopes.detail.startswith("missing: groups:read") and "reinstall" in scopes.fix

    dev = _row(rows, "account dev")
    assert dev.status == FAIL and "AccessDenied" in dev.detail and "external id" in dev.fix
    assert not [r for r in rows if r.check.startswith(("key dev", "block public access dev"))], table

    stray = _row(rows, "account stray")
    assert stray.status == FAIL
    assert "amibot is account 123456789012" in stray.detail and "config says 333333333333" in stray.detail

    key = _row(rows, "key prod:us-east-1")
    assert key.status == FAIL and "is Disabled" in key.detail and "enable-key" in key.fix

    amis = _row(rows, "block public access prod:us-east-1 (AMIs)")
    assert (amis.status, amis.detail) == (WARN, "AMIs can be made public (unblocked)")
    assert "enable-image-block-public-access" in amis.fix
    assert _row(rows, "block public access prod:us-east-1 (snapshots)").status == OK
    # Every row that is not OK carries a fix, and the table prints it.
    for row in rows:
        if row.status != OK:
            assert row.fix and f"fix: {row.fix}" in table


def test_bad_config_is_one_failing_row(tmp_path):
    rows = _doctor(_config(tmp_path, "[bot]\ncommand = 'ami'\n"), {})
    assert [r.status for r in rows] == [FAIL]
    assert rows[0].check == "config" and "command" in rows[0].detail and rows[0].fix


def test_signing_secret_missing(world, fake_slack, tmp_path):
    env = _env(fake_slack, tmp_path)
    del env["SLACK_SIGNING_SECRET"]
    row = _row(_doctor(_config(tmp_path), env), "slack signing secret")
    assert row.status == FAIL and "SLACK_SIGNING_SECRET" in row.fix


def test_store_not_writable(tmp_path):
    # A directory where the database file should be: SQLite cannot open it, whoever runs the test.
    (tmp_path / "amibot.db").mkdir()
    row = check_store(str(tmp_path / "amibot.db"))
    assert row.status == FAIL and "unable to open database file" in row.detail and "AMIBOT_DB" in row.fix
    assert check_store(str(tmp_path / "fresh.db")).status == OK


def test_postgres_store_is_checked(pg_url):
    row = check_store(pg_url)
    assert row.status == OK and row.detail.startswith("postgresql") and "writable" in row.detail


def test_unreachable_postgres_store_fails_without_showing_the_password():
    row = check_store("postgresql://amibot:s3cret@127.0.0.1:1/amibot?connect_timeout=2")
    assert row.status == FAIL and "s3cret" not in row.detail and "server runs" in row.fix


def test_cli_exit_codes(world, fake_slack, tmp_path, monkeypatch, capsys):
    for key, value in _env(fake_slack, tmp_path).items():
        monkeypatch.setenv(key, value)
    assert main(["doctor", "--config", _config(tmp_path)]) == 0
    green = capsys.readouterr().out
    assert "20 checks: 20 OK, 0 WARN, 0 FAIL" in green
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    assert main(["doctor", "--config", _config(tmp_path)]) == 1
    red = capsys.readouterr().out
    assert "invalid_auth" in red and "fix: Use the app's current Bot User OAuth Token" in red


def test_the_slack_app_row_says_what_payloads_are_accepted():
    """Issue 17, finding 9: the doctor shows the identity the endpoint compares with."""
    from dataclasses import replace

    from bot.doctor import check_slack_identity
    from offline import rehearsal

    config = rehearsal.sandbox_config(":memory:")
    ok = check_slack_identity(config, {"team_id": "T0SANDBOX", "app_id": "A0AMIBOT"})
    assert ok.status == OK and "team T0SANDBOX" in ok.detail and "A0AMIBOT" in ok.detail
    wrong = replace(config, bot=replace(config.bot, slack_app_id="A0OTHER"))
    assert check_slack_identity(wrong, {"team_id": "T0SANDBOX", "app_id": "A0AMIBOT"}).status == FAIL
    org = replace(config, bot=replace(config.bot, slack_org_wide=True))
    assert check_slack_identity(org, {"team_id": "T0SANDBOX", "app_id": "A0AMIBOT"}).status == FAIL
    assert check_slack_identity(config, {"team_id": "T0SANDBOX"}).status == WARN
