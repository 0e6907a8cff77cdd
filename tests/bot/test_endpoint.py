"""The hardened endpoint, each finding reproduced against the real server (waitress on
loopback, requests signed as Slack signs them)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import urllib.parse

import pytest

from offline import rehearsal
from bot.requests import PENDING_APPROVAL


def _peak_rss_bytes() -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # Linux: reset the peak to the current resident size
    except OSError:
        pass


def _host_port(harness) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(harness.url)
    return parsed.hostname, parsed.port


def _stream_post(harness, headers: dict, chunks) -> tuple[int | None, int]:
    """POST by hand, sending ``chunks`` until the server stops reading; returns the
    status (None if the server closed without answering) and the bytes sent."""
    host, port = _host_port(harness)
    sock = socket.create_connection((host, port), timeout=30)
    head = "POST /slack/events HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent = 0
    try:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        answer = sock.recv(4096)
    except ConnectionResetError:
        answer = b""
    finally:
        sock.close()
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/") else None
    return status, sent


def _slash_body(harness, text: str) -> bytes:
    return urllib.parse.urlencode({
        "command": "/ami", "text": text, "user_id": rehearsal.REQUESTER, "channel_id": harness.channel,
        "team_id": "T0SANDBOX", "api_app_id": "A0AMIBOT",  # Slack sends both; other ids are refused (issue 17)
        "response_url": harness.fake.new_response_url(), "trigger_id": "1.2.3",
    }).encode()


def _post_signed(harness, body: bytes, content_type: str = "application/x-www-form-urlencoded", **sign):
    headers = harness.slack.sign(body, **sign)
    headers["Content-Type"] = content_type
    return harness.slack.post_raw(body, headers)


# -- 1. body size ---------------------------------------------------------------------------


def test_300_mb_unsigned_post_is_refused_before_it_is_read(harness):
    size = 300 * 1024 * 1024
    _reset_peak_rss()
    before = _peak_rss_bytes()
    started = time.monotonic()
    chunk = b"x" * (1024 * 1024)
    status, sent = _stream_post(harness, {"Content-Length": str(size), "Content-Type": "application/x-www-form-urlencoded",
                                          "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64},
                                (chunk for _ in range(300)))
    grown = _peak_rss_bytes() - before
    print(f"300 MB unsigned POST: status {status}, {sent / 2**20:.0f} MiB accepted by the socket, "
          f"peak RSS +{grown / 2**20:.1f} MiB, {time.monotonic() - started:.2f} s")
    assert status == 413
    assert grown < 30 * 2**20
    assert sent < size  # the server stopped reading


def test_chunked_body_over_the_limit_is_refused(harness):
    def chunks():
        piece = b"a" * 16384
        for _ in range(16):  # 256 KiB in chunks, no Content-Length
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b"0\r\n\r\n"

    status, _ = _stream_post(harness, {"Transfer-Encoding": "chunked", "Content-Type": "application/x-www-form-urlencoded",
                                       **harness.slack.sign(b"irrelevant")}, chunks())
    assert status == 413
    harness.settle()
    assert harness.bot.store.find() == []


def test_signed_body_within_the_limit_still_works(harness):
    result = harness.slash("help")
    assert result.status == 200 and "amibot" in result.json()["text"]


# -- 2. nothing from an unsigned request is logged verbatim ----------------------------------


def test_unsigned_request_is_not_logged_verbatim(harness, caplog):
    caplog.set_level(logging.DEBUG)
    forged = "x\n2026-11-29 12:00:00 INFO amibot R-7 approved by U0ALICE\n" + "A" * 5000
    body = urllib.parse.urlencode({"command": "/ami", "text": forged}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(int(time.time())),
               "X-Slack-Signature": "v0=" + "1" * 64}
    assert harness.slack.post_raw(body, headers).status == 401
    lines = [record.getMessage() for record in caplog.records]
    assert not any("U0ALICE" in line or "approved by" in line or "AAAAAAAAAA" in line for line in lines), lines
    assert not any("\n" in line for line in lines)
    assert any("refused request: 401" in line for line in lines)


# -- 3. malformed input: 400 (or 401 before authentication), never 500 -------------------------


@pytest.mark.parametrize("case, expected", [
    ("non-numeric timestamp", 401),
    ("timestamp with a sign", 401),
    ("bad JSON in payload", 400),
    ("payload is a JSON list", 400),
    ("payload is a JSON string", 400),
    ("invalid UTF-8 body", 400),
    ("invalid UTF-8 in a form field", 400),
    ("unknown content type", 400),
    ("JSON body not an object", 400),
    ("bad Content-Length", 400),
])
def test_malformed_input_gets_400_or_401_never_500(harness, case, expected):
    content_type = "application/x-www-form-urlencoded"
    body = b"payload=" + urllib.parse.quote('{"type": "block_actions"').encode()
    headers = None
    if case == "non-numeric timestamp":
        body = _slash_body(harness, "help")
        headers = {**harness.slack.sign(body), "X-Slack-Request-Timestamp": "12e9"}
    elif case == "timestamp with a sign":
        body = _slash_body(harness, "help")
        headers = {**harness.slack.sign(body), "X-Slack-Request-Timestamp": "-1"}
    elif case == "payload is a JSON list":
        body = b"payload=" + urllib.parse.quote("[1, 2]").encode()
    elif case == "payload is a JSON string":
        body = b"payload=" + urllib.parse.quote('"block_actions"').encode()
    elif case == "invalid UTF-8 body":
        body = b"command=/ami&text=\xff\xfe&user_id=U1"
    elif case == "invalid UTF-8 in a form field":
        body = b"payload=%7B%22type%22%3A%22%FF%22%7D"
    elif case == "unknown content type":
        body, content_type = b"<xml/>", "text/xml"
    elif case == "JSON body not an object":
        body, content_type = b"[]", "application/json"
    if case == "bad Content-Length":
        status, _ = _stream_post(harness, {"Content-Length": "12abc", "Content-Type": content_type, **harness.slack.sign(body)}, [body])
    else:
        headers = headers or harness.slack.sign(body)
        headers["Content-Type"] = content_type
        result = harness.slack.post_raw(body, headers)
        status = result.status
        assert "Traceback" not in result.body
    assert status == expected
    harness.settle()
    assert harness.bot.store.find() == []
    assert harness.slash("help").status == 200  # still serving


# -- 4. replay --------------------------------------------------------------------------------


def test_replayed_slash_command_creates_no_second_request(harness):
    body = _slash_body(harness, f"share {harness.world.plain_image} from prod to dev")
    headers = {**harness.slack.sign(body), "Content-Type": "application/x-www-form-urlencoded"}
    assert harness.slack.post_raw(body, headers).status == 200
    harness.root_for(harness.world.plain_image)
    replay = harness.slack.post_raw(body, headers)  # same signature and timestamp, inside the window
    assert replay.status == 401
    harness.settle()
    assert len(harness.bot.store.find()) == 1


def test_replay_is_refused_by_another_process_sharing_the_store(harness, tmp_path):
    from bot.store import Store

    body = _slash_body(harness, "help")
    headers = harness.slack.sign(body)
    other = Store(harness.bot.store.path)  # a second process on the same database
    assert other.remember_signature(headers["X-Slack-Signature"], int(headers["X-Slack-Request-Timestamp"]))
    result = harness.slack.post_raw(body, {**headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 401


def test_old_signatures_are_pruned(harness):
    store = harness.bot.store
    assert store.remember_signature("v0=old", int(time.time()) - 3600)
    store._signatures_pruned_at = 0.0  # pruning runs at most every PRUNE_EVERY_SECONDS (issue 20): the last was long ago
    assert store.remember_signature("v0=new", int(time.time()))
    rows = [r["signature"] for r in store.db.execute("SELECT signature FROM seen_signatures").fetchall()]
    assert "v0=old" not in rows and "v0=new" in rows


# -- 5. approval after expiry ---------------------------------------------------------------------


def test_request_past_its_expiry_cannot_be_approved_before_the_tick(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    root = harness.root_for(image)
    harness.clock.advance(harness.bot.config.bot.approval_ttl_hours * 3600 + 1)
    harness.click(rehearsal.OWNER, root)  # the expiry tick has not run
    note = harness.ephemeral_for(rehearsal.OWNER)
    assert "expired" in note and "Nothing was changed" in note
    harness.settle()
    request = harness.bot.store.get(1)
    assert request.state == PENDING_APPROVAL and request.approvals == {}
    harness.tick()
    assert harness.bot.store.get(1).state == "expired"


def test_store_refuses_an_approval_past_expiry(harness):
    image = harness.world.plain_image
    harness.slash(f"share {image} from prod to dev")
    harness.root_for(image)
    store = harness.bot.store
    harness.clock.advance(harness.bot.config.bot.approval_ttl_hours * 3600 + 1)
    assert store.record_approvals(1, ["prod"], rehearsal.OWNER) == []
    assert not store.transition(1, PENDING_APPROVAL, "approved", rehearsal.OWNER, unexpired=True)
    assert store.get(1).state == PENDING_APPROVAL


# -- health stays cheap -------------------------------------------------------------------------------


def test_healthz_and_unknown_paths(harness):
    host, port = _host_port(harness)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request("GET", "/healthz")
    answer = conn.getresponse()
    assert answer.status == 200 and json.loads(answer.read())["ok"] is True
    conn.request("GET", "/slack/events")
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 404
    conn.close()
