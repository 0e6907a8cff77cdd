"""Prometheus metrics (prometheus-client), one registry per bot instance (wiring).

The domain and aws/ do not import this module: they are handed small observers
(``aws.sessions.AwsObserver``, ``bot.engine.StepObserver``) that this class satisfies.
Counts the store knows (requests by kind and state, outbox depth, copies in flight)
are read from it at scrape time, so they are right across restarts and processes.
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """Every metric of one bot."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, store: Any):
        self.registry = CollectorRegistry()
        self.step_seconds = Histogram("amibot_step_duration_seconds", "Time one plan step (an AWS action) took, by action and outcome",
                                      ["action", "outcome"], buckets=STEP_BUCKETS, registry=self.registry)
        self.aws_calls = Counter("amibot_aws_calls", "AWS API calls, by service and operation", ["service", "operation"], registry=self.registry)
        self.aws_throttles = Counter("amibot_aws_throttles", "AWS answers that were throttling errors (each retried attempt counts)",
                                     ["service", "operation"], registry=self.registry)
        self.slack_calls = Counter("amibot_slack_calls", "Slack Web API calls, by method", ["method"], registry=self.registry)
        self.slack_rate_limited = Counter("amibot_slack_rate_limited", "Slack Web API answers 429 (rate limited), by method", ["method"], registry=self.registry)
        self.http_requests = Counter("amibot_http_requests", "Requests on /slack/events refused by the endpoint's guards, by status",
                                     ["status"], registry=self.registry)
        self.registry.register(_StoreCollector(store))

    # -- observers -----------------------------------------------------------------------

    def aws_call(self, service: str, operation: str) -> None:
        self.aws_calls.labels(service, operation).inc()

    def aws_throttled(self, service: str, operation: str) -> None:
        self.aws_throttles.labels(service, operation).inc()

    def step_finished(self, action: str, outcome: str, seconds: float) -> None:
        self.step_seconds.labels(action, outcome).observe(seconds)

    def slack_call(self, method: str) -> None:
        self.slack_calls.labels(method).inc()

    def http_refused(self, status: str) -> None:
        self.http_requests.labels(status).inc()

    def slack_retry_counter(self) -> RetryHandler:
        """A slack-sdk retry handler that retries nothing and counts 429s; put it first."""
        return _RateLimitCounter(self)

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)


class _RateLimitCounter(RetryHandler):
    def __init__(self, metrics: Metrics):
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                  error: Exception | None = None) -> bool:
        # Called once per HTTP answer, by every client (Bolt's per-request ones too).
        method = request.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.metrics.slack_call(method)
        if response is not None and response.status_code == 429:
            self.metrics.slack_rate_limited.labels(method).inc()
        return False


class _StoreCollector:
    """Gauges read from the store at scrape time."""

    def __init__(self, store: Any):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        requests = GaugeMetricFamily("amibot_requests", "Requests in the store, by kind and state", labels=["kind", "state"])
        for kind, state, count in self.store.request_counts():
            requests.add_metric([kind, state], count)
        yield requests
        yield GaugeMetricFamily("amibot_outbox_depth", "Slack messages waiting in the outbox", value=self.store.outbox_depth())
        yield GaugeMetricFamily("amibot_copies_in_flight", "Image copies started and not finished", value=self.store.copies_in_flight())
