"""The attacker's view of the HTTP listeners (issue 17, finding 8): the Slack port
serves /slack/events and a GET /healthz that says only whether the bot is up; metrics
and the detailed health are on the admin listener (``--admin-port``, 127.0.0.1 by
default, off unless given). This changes the second wave's /metrics and /healthz
contract on purpose."""

from __future__ import annotations

import http.client
import json
import urllib.parse

from bot.cli import build_parser


def _ask(url: str, method: str, path: str) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_the_slack_port_tells_nothing_but_up(harness):
    assert _ask(harness.url, "GET", "/metrics")[0] == 404
    status, body = _ask(harness.url, "GET", "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}  # no host, PID, path or store
    for method in ("POST", "PUT", "DELETE"):
        assert _ask(harness.url, method, "/healthz")[0] == 405


def test_the_admin_listener_serves_metrics_and_the_detailed_health(harness):
    status, body = _ask(harness.admin_url, "GET", "/metrics")
    assert status == 200 and b"amibot_" in body
    status, body = _ask(harness.admin_url, "GET", "/healthz")
    assert status == 200 and json.loads(body)["store"]["reachable"] is True
    assert _ask(harness.admin_url, "POST", "/metrics")[0] == 405
    assert _ask(harness.admin_url, "POST", "/slack/events")[0] == 405  # no Slack here


def test_the_admin_listener_is_off_unless_asked_and_local_by_default():
    args = build_parser().parse_args(["serve"])
    assert args.admin_port is None
    args = build_parser().parse_args(["serve", "--admin-port", "9100"])
    assert (args.admin_host, args.admin_port) == ("127.0.0.1", 9100)
