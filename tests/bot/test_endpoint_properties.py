"""The endpoint under random input, with hypothesis, against the real server: random
bodies, content types, timestamps and signatures (valid ones too) get 400, 401, 404 or
413, never 500, and the server stays healthy."""

from __future__ import annotations

import http.client
import json
import string
import time
import urllib.parse
import urllib.request

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HTTP_EXAMPLES = settings(max_examples=50, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ALLOWED = {400, 401, 403, 404, 413}  # 403: signed, but claiming another workspace or app (issue 17)

header_text = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=40).map(str.strip)
form_body = st.dictionaries(
    st.sampled_from(["payload", "command", "text", "type", "user_id", "token", "\xff"]),
    st.one_of(st.text(max_size=60), st.just('{"type": "block_actions"}'), st.just("[]"), st.just("{"),
              st.builds(json.dumps, st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))),
    max_size=4,
).map(lambda d: urllib.parse.urlencode(d).encode())
body = st.one_of(st.binary(max_size=2048), form_body, st.text(max_size=200).map(str.encode))
content_type = st.one_of(st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain",
                                          "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=latin-1", ""]),
                         header_text)
timestamp = st.one_of(st.just("now"), st.integers(-10**12, 10**13).map(str), header_text)


@HTTP_EXAMPLES
@given(body=body, content_type=content_type, timestamp=timestamp, signed=st.booleans(), path=st.sampled_from(["/slack/events", "/slack/events", "/other"]))
def test_random_requests_never_get_500(harness, body, content_type, timestamp, signed, path):
    ts = str(int(time.time())) if timestamp == "now" else timestamp
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts}
    if signed and ts.isdigit():
        headers["X-Slack-Signature"] = harness.slack.sign(body, timestamp=int(ts))["X-Slack-Signature"]
    else:
        headers["X-Slack-Signature"] = "v0=" + "ab" * 32
    parsed = urllib.parse.urlsplit(harness.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        text = answer.read()
    finally:
        conn.close()
    assert answer.status in ALLOWED, (answer.status, text[:200])
    assert b"Traceback" not in text


def test_server_is_healthy_after_random_input(harness):
    test_random_requests_never_get_500(harness)
    harness.settle()
    with urllib.request.urlopen(harness.url + "/healthz", timeout=5) as answer:
        assert answer.status == 200
    assert harness.slash("help").status == 200
    assert harness.bot.store.find() == []
