"""Observability against the real server: JSON logs with the request context and no
secret at any level, and /metrics after a share."""

from __future__ import annotations

import io
import json
import logging
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import CONTEXT_FIELDS, JsonFormatter, RedactionFilter, TextFormatter, log_context, redact, register_secrets
from offline import rehearsal
from tests.handlers.test_share_over_http import share_and_approve


@pytest.fixture
def captured_logs():
    """Everything logged, at DEBUG, through the handler `amibot serve` installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_debug_logs_of_a_share_hold_no_secret(harness, captured_logs):
    image = harness.world.encrypted_image
    share_and_approve(harness, f"share {image} from prod to dev")
    assert harness.bot.store.get(1).state == "succeeded"
    # The credentials the sandbox's STS handed out (AssumeRole), and Slack's secrets.
    secrets = [harness.bot.config.slack.bot_token, harness.bot.config.slack.signing_secret]
    for _, session in list(harness.bot.sessions._cache.values()):
        credentials = session.get_credentials()
        secrets += [credentials.access_key, credentials.secret_key, credentials.token]
    assert len(secrets) >= 5
    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line["logger"].startswith("botocore") and "AssumeRole" in line["message"] for line in lines), "DEBUG reached botocore"
    for secret in secrets:
        assert secret and secret not in text, f"a secret ({secret[:4]}…) is in the logs"
    assert any("[redacted]" in line["message"] for line in lines), "botocore printed credentials that were redacted"
    # Every line has the context fields; lines logged while a step ran carry all four.
    assert all(set(CONTEXT_FIELDS) <= set(line) for line in lines)
    in_step = [line for line in lines if line["step"] is not None]
    steps = {s.seq: s for s in harness.bot.store.get(1).steps}
    assert in_step and all(line["request_id"] == "R-1" and line["account"] == steps[line["step"]].account_id
                           and line["region"] == steps[line["step"]].region for line in in_step)
    assert {line["account"] for line in in_step} == {rehearsal.PROD, rehearsal.DEV}
    assert any(line["logger"].startswith("botocore") for line in in_step), "AWS calls of a step are logged with its context"


def test_redaction_covers_the_forms_loggers_print():
    register_secrets("sig-secret-0123456789")
    cases = [
        "token xoxb-1234-5678-abcdefABCDEF", "xapp-1-A0-123-abcdef", "xoxp-1-2-3",
        "<AccessKeyId>ASIAQWERTYUIOPASDFGH</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
        "<SessionToken>FwoGZXIvYXdzEJr//////////wEaDM</SessionToken>",
        "{'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIAQWERTYUIOPASDFGH/20261129/us-east-1/ec2/aws4_request'}",
        "x-amz-security-token:FwoGZXIvYXdzEJr//////////wEaDM",
        '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "signing secret is sig-secret-0123456789",
    ]
    for case in cases:
        out = redact(case)
        for secret in ("xoxb-1234", "xapp-1-A0", "xoxp-1", "ASIAQWERTY", "wJalrXUtn", "FwoGZXIvYXdz", "sig-secret"):
            assert secret not in out, (case, out)


def test_text_format_is_one_line_per_record_with_context():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("amibot.test-text")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(request_id="R-7", step=2, account="111111111111", region="eu-west-1"):
            logger.warning("forged\nR-8 approved by U0ALICE xoxb-1-2-3")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    out = stream.getvalue()
    assert out.count("\n") == 1 and "\\n" in out and "xoxb-1-2-3" not in out
    assert "request_id=R-7 step=2 account=111111111111 region=eu-west-1" in out


def _scrape(harness) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(harness.admin_url + "/metrics", timeout=5) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_after_a_share(harness):
    harness.world.sandbox.inject_fault("ModifyImageAttribute", "RequestLimitExceeded", times=1)
    harness.fake.script_rate_limit("chat.update", times=1, retry_after=1)
    share_and_approve(harness, f"share {harness.world.encrypted_image} from prod to dev")
    assert harness.slack.post_raw(b"x", {"Content-Type": "text/plain"}).status == 401
    metrics = _scrape(harness)

    def value(name, **labels):
        return metrics.get((name, tuple(sorted(labels.items()))), 0)

    assert value("amibot_requests", kind="share", state="succeeded") == 1
    assert value("amibot_aws_calls_total", service="ec2", operation="ModifyImageAttribute") >= 1
    # DryRun on the source key before approval, the grant, then the target's DryRun check
    assert value("amibot_aws_calls_total", service="kms", operation="CreateGrant") == 3
    assert value("amibot_aws_calls_total", service="sts", operation="AssumeRole") >= 1
    assert value("amibot_aws_throttles_total", service="ec2", operation="ModifyImageAttribute") == 1
    assert value("amibot_slack_calls_total", method="chat.postMessage") >= 3
    assert value("amibot_slack_rate_limited_total", method="chat.update") == 1
    assert value("amibot_step_duration_seconds_count", action="ec2.modify_image_attribute", outcome="done") == 1 or any(
        name == "amibot_step_duration_seconds_count" and dict(labels).get("outcome") == "done" and v >= 1 for (name, labels), v in metrics.items())
    assert value("amibot_outbox_depth") == 0
    assert value("amibot_copies_in_flight") == 0
    assert value("amibot_http_requests_total", status="401") == 1


def test_metrics_are_per_bot_instance(harness):
    from bot.metrics import Metrics

    other = Metrics(harness.bot.store)
    other.aws_call("ec2", "DescribeImages")
    assert b'amibot_aws_calls_total{operation="DescribeImages",service="ec2"} 1.0' in other.exposition()
    assert b"DescribeImages" not in harness.bot.metrics.exposition()
