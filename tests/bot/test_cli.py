"""The `amibot` command line: serve on the sandbox, config errors, iam-policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from offline import rehearsal
from bot.cli import main
from offline.slack import FakeSlack, SignedSlackClient
from offline.net import free_port
from offline.replicas import ROOT
from tests.bot.test_crash_recovery import SECRET


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_serve_sandbox_starts_on_the_embedded_defaults(tmp_path):
    """`amibot serve --sandbox`: real HTTP endpoint, sandbox AWS, Slack from the env."""
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AMIBOT_", "SLACK_", "AWS_"))},
        "SLACK_API_URL": fake.api_url, "SLACK_BOT_TOKEN": "xoxb-sandbox", "SLACK_SIGNING_SECRET": SECRET,
        "AMIBOT_DB": str(tmp_path / "amibot.db"), "PYTHONPATH": str(ROOT),
    }
    log = open(tmp_path / "serve.log", "w")
    # No --host: serve binds to loopback unless told otherwise.
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--sandbox", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        else:
            raise AssertionError("serve --sandbox did not become healthy")
        slack = SignedSlackClient(f"http://127.0.0.1:{port}/slack/events", SECRET, fake)
        answer = slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, "help")
        assert answer.status == 200 and "share" in answer.json()["text"]
        assert "sandbox AWS" in (tmp_path / "serve.log").read_text()
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        fake.stop()



def test_a_config_error_names_the_key_and_the_bot_does_not_start(tmp_path, capsys):
    bad = tmp_path / "amibot.toml"
    bad.write_text(rehearsal.SANDBOX_TOML.replace('id = "222222222222"', 'id = "2222"'))
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "accounts.dev.id" in err and "12 digits" in err


def test_missing_slack_secret_is_a_config_error(tmp_path, capsys, monkeypatch):
    good = tmp_path / "amibot.toml"
    good.write_text(rehearsal.SANDBOX_TOML)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMIBOT_DB", str(tmp_path / "a.db"))
    assert main(["serve", "--config", str(good)]) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err
