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
