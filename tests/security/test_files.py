"""The attacker's view of the files amibot writes and reads (issue 17): the request
log export (finding 7) and the database file (finding 10)."""

from __future__ import annotations

import os
import stat

from bot.cli import main
from tests.bot.test_audit_and_backup import store_with_requests  # noqa: F401  (fixture)


def test_the_export_is_0600_new_only_never_through_a_symlink_and_without_response_urls(store_with_requests, tmp_path, capsys):  # noqa: F811
    """Finding 7: `amibot audit --out` under umask 022 wrote 0644, followed a symlink
    over an existing file, and carried live response_urls."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "log.jsonl"
        assert main(["audit", "--out", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        text = out.read_text()
        assert "R-1" in text and "response_url" not in text and "hooks" not in text
        victim = tmp_path / "victim"
        victim.write_text("keep me")
        link = tmp_path / "link.jsonl"
        link.symlink_to(victim)
        assert main(["audit", "--out", str(link)]) == 2
        assert victim.read_text() == "keep me"
        assert main(["audit", "--out", str(out)]) == 2  # an existing file is not overwritten
        assert "exists" in capsys.readouterr().err
    finally:
        os.umask(old)


def test_an_existing_0644_database_is_made_0600_at_start_and_said(sandbox, fake_slack, tmp_path, clock, caplog):
    """Finding 10: a database file left 0644 (an older umask, a copy) stayed 0644."""
    import logging
    import sqlite3

    from offline.stack import start_stack
    from tests.conftest import bot_options

    db = tmp_path / "amibot.db"
    sqlite3.connect(db).close()
    os.chmod(db, 0o644)
    with caplog.at_level(logging.WARNING, logger="amibot"):
        stack = start_stack(sandbox, fake_slack, str(db), **bot_options(clock))
    try:
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert any("was 0644, now 0600" in r.getMessage() for r in caplog.records)
    finally:
        stack.bot.stop()


def test_slack_api_url_over_plain_http_only_to_this_machine():
    """Finding 10: SLACK_API_URL=http://… to another host would send the bot token in clear."""
    import pytest

    from bot.config import parse_config
    from bot.errors import ConfigError
    from offline import rehearsal

    for url in ("http://slack.example.com/api/", "http://10.1.2.3/api/", "HTTP://evil/"):
        with pytest.raises(ConfigError, match="unencrypted"):
            parse_config(rehearsal.SANDBOX_TOML, {"SLACK_API_URL": url}, source="t")
    for url in ("http://127.0.0.1:9999/api/", "http://localhost/api/", "http://[::1]:8/api/", "https://slack.com/api/"):
        assert parse_config(rehearsal.SANDBOX_TOML, {"SLACK_API_URL": url}, source="t").slack.api_url.startswith(url.rstrip("/"))


def test_response_urls_are_redacted_in_debug_logs(harness):
    """Finding 10: slack-sdk's webhook client logs each response_url at DEBUG (a posting
    link valid for 30 minutes); Bolt logs the payloads that carry it."""
    import io
    import logging

    from bot.logs import RedactionFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        harness.slash(f"audit {harness.world.plain_image} from prod", user="U0ALICE")
        harness.settle()
        harness.ephemeral_for("U0ALICE")
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    text = stream.getvalue()
    used = [r.method for r in harness.fake.responses]
    assert used, "the answer went through a response_url"
    assert "Sending a request - url:" in text  # slack-sdk's webhook client did log at DEBUG
    for path in used:
        token = path.rsplit("/", 1)[-1]
        assert token not in text, "a response_url's token is in the logs"
    assert "/commands/T0SANDBOX/" in text and "[redacted]" in text
