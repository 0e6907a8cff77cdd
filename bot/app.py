"""The wiring: builds the store, AWS sessions, notifier, worker, scheduler, services
and the Bolt app, and serves them over HTTP (waitress) or Socket Mode.

This is the top of the import graph: app → handlers → domain (bot/*) → aws/*.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

import handlers
from bot import bolt_ack
from aws.actions.keypolicy import InProcessKeyPolicyLock, key_policy_lock, use_key_policy_lock
from aws.catalog import ImageCatalog
from aws.sessions import DEFAULT_MAX_ATTEMPTS, AccountAccess, AwsObserver, AwsSessions
from bot.config import Config
from bot.directory import SlackDirectory
from bot.endpoint import Refused, SlackEndpoint, socket_mode_guard
from bot.store.sqlite_backend import tighten_private
from bot.slack_identity import IdentityUnknown, SlackIdentity, payload_ids
from bot.logs import register_secrets
from bot.replay_memory import RememberedSignatures
from bot.metrics import Metrics
from bot.notifier import Notifier
from bot.verbs.common import requests_that_changed_aws
from bot.audit import DriftChecker
from bot.scheduler import Clockwork, Scheduler
from bot.leases import LeaseKeyPolicyLock, Leases
from bot.engine import PlanRunner
from bot.jobs import InboxPruner, JobRunner, Jobs, job_counts
from bot.lifecycle import Lifecycle
from bot.services import PREFLIGHT_SLOW_SECONDS, RequestService
from bot.store import open_store
from bot.store.inbox import Inbox, InboxReader, inbox_path
from bot.surfaces import SurfaceService
from bot.worker import Worker

log = logging.getLogger("amibot")


def _url_password(target: str | None) -> tuple[str, ...]:
    """The password in a ``postgresql://user:password@host/db`` AMIBOT_DB, so the log
    redaction knows it; nothing for a file path."""
    from urllib.parse import urlsplit

    if not target or "://" not in target:
        return ()
    password = urlsplit(target).password
    return (password,) if password else ()


def slack_client(config: Config, metrics: Metrics | None = None) -> WebClient:
    """A WebClient honouring SLACK_API_URL, retrying 429s after Retry-After (and
    counting calls and 429s when given ``metrics``)."""
    counting = [metrics.slack_retry_counter()] if metrics else []
    return WebClient(
        base_url=config.slack.api_url,
        token=config.slack.bot_token,
        retry_handlers=[*counting, ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def aws_sessions(config: Config, max_attempts: int = DEFAULT_MAX_ATTEMPTS, observer: AwsObserver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> AwsSessions:
    """The bot's AWS sessions; ``clock`` times the minute account-level facts are kept."""
    return AwsSessions({a.id: AccountAccess(a.id, a.role_arn, a.external_id) for a in config.accounts.values()},
                       max_attempts=max_attempts, observer=observer, facts_clock=clock)


# What a process of amibot does (issue 20): ``bot`` everything (``--workers 0``);
# ``front`` answers Slack and records the work (``serve --workers N``); ``worker``
# does the work: preflights, plans, duties, the outbox (``amibot work``).
ROLES = ("bot", "front", "worker")
# A worker looks for messages the front wrote (a click's card edit) this often: the
# front's writes cannot wake another process's notifier.
WORKER_OUTBOX_POLL_SECONDS = 0.25


# Listener threads of the HTTP front (see ``Amibot.__init__``).
LISTENER_THREADS_FRONT = 32


class Amibot:
    """The bot in one process (``role="bot"``), or one side of it: the HTTP front or a
    worker, sharing the store."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 grant_wait_seconds: float = 300.0, tick_seconds: float | None = None, notifier_poll_seconds: float = 2.0,
                 aws_max_attempts: int = DEFAULT_MAX_ATTEMPTS, preflight_slow_seconds: float = PREFLIGHT_SLOW_SECONDS,
                 role: str = "bot", job_threads: int = 4):
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self.config = config
        self.role = role
        register_secrets(config.slack.bot_token, config.slack.signing_secret, config.slack.app_token, *_url_password(config.db_path))
        # SQLite or PostgreSQL (AMIBOT_DB); nothing below this line knows which.
        self.store = open_store(config.db_path, clock)
        if role == "front" and self.store.kind == "sqlite":
            self.store.backend.prefer_quick_locks()  # an ack waits for the lock in ms steps
        # On SQLite the front writes what an ack needs (jobs, rate counts, signatures) to
        # a file of its own that no worker writes, never waiting for the workers' write
        # lock; the workers read it (bot.store.inbox). Elsewhere the store is the inbox.
        self.inbox: Any = self.store
        at = inbox_path(self.store) if role in ("front", "worker") else None
        if at and role == "front":
            self.inbox = Inbox(at, clock, after_job=max(self.store.last_marked_job(), self.store.last_job_id()))
            self.inbox.adopt_jobs(self.store)  # left in the store by a version before the inbox
            self.inbox.backend.prefer_quick_locks()
        elif at:
            self.inbox = InboxReader(at, clock)
        # This process's claims on work; with several replicas the database decides who acts.
        self.leases = Leases(self.store, seconds=config.bot.lease_seconds)
        # The key-policy lock is a store lease: replicas never interleave PutKeyPolicy on one key.
        self.key_policy_lock = LeaseKeyPolicyLock(self.leases)
        use_key_policy_lock(self.key_policy_lock)
        self.metrics = Metrics(self.store)
        self.client = slack_client(config, self.metrics)
        self.sessions = aws_sessions(config, aws_max_attempts, self.metrics, clock)
        self.notifier = Notifier(self.store, self.client, owners_of=lambda alias: list(config.account(alias).owners), poll_seconds=min(notifier_poll_seconds, WORKER_OUTBOX_POLL_SECONDS) if role == "worker" else notifier_poll_seconds,
                                 leases=self.leases, command=config.bot.command)
        self.worker = Worker()
        # The front records its background work in the store for the workers; the
        # others do it on self.worker.
        self.jobs = Jobs(self.worker, self.inbox if role == "front" else None)
        self.inbox_pruner = InboxPruner(self.inbox, self.store) if role == "front" and self.inbox is not self.store else None
        # Bolt's listeners get a pool of their own (not Bolt's default 5 threads), one
        # that can be drained: listeners are quick, slow work goes to self.worker. In the
        # front a click's work after its ack (the decision, the clicker's note) waits for
        # the store's write lock while workers hold it; a larger pool leaves threads free
        # for the next acks (with 8, p99 under preflights reached 239 ms; with 32, 7 ms).
        self.listeners = Worker(threads=LISTENER_THREADS_FRONT if role == "front" else 8, name="amibot-listener")
        # Every change of a request's state and every ending, with its messages.
        self.lifecycle = Lifecycle(self.store, self.notifier, notify_channel=config.bot.notify_channel, clock=clock)
        self.runner = PlanRunner(self.store, self.sessions, self.notifier, lifecycle=self.lifecycle, sleep=sleep, grant_wait_seconds=grant_wait_seconds, clock=clock,
                                 leases=self.leases, observer=self.metrics, consistency_window_seconds=config.bot.consistency_window_seconds)
        self.service = RequestService(config, self.store, self.sessions, self.notifier, self.worker, self.runner, SlackDirectory(self.client), clock,
                                      preflight_slow_seconds=preflight_slow_seconds, lifecycle=self.lifecycle, jobs=self.jobs,
                                      count_use=self.inbox.count_use if role == "front" else None)
        self.job_runner = JobRunner(self.jobs, self.store, self.leases, inbox=self.inbox, threads=job_threads) if role == "worker" else None
        self.catalog = ImageCatalog(self.sessions)
        self.surfaces = SurfaceService(self.service, self.catalog)
        self.notifier.home = self.surfaces  # App Home tabs are republished through the outbox
        self.notifier.root_refused = self.service.approvals.root_refused
        self.clockwork = Clockwork(self.store, self.notifier, self.worker, self.runner, clock, leases=self.leases, service=self.service.approvals,
                                   reminder_hours=config.bot.reminder_hours_before_expiry)
        # The drift check is one of the clockwork's duties (daily by default).
        self.clockwork.drift = DriftChecker(config, self.store, self.sessions, self.notifier, lambda: requests_that_changed_aws(self.store), clock)
        self.scheduler = Scheduler(self.clockwork, tick_seconds=config.bot.tick_seconds if tick_seconds is None else tick_seconds)
        bolt_ack.install()  # Bolt's ack wait wakes on ack() instead of polling every 10 ms
        self.bolt = App(
            client=self.client,
            signing_secret=config.slack.signing_secret,
            # The token is checked on the first request instead of at construction,
            # so the bot starts even when Slack is briefly unreachable.
            token_verification_enabled=False,
            process_before_response=False,
            listener_executor=self.listeners,
        )
        handlers.register(self.bolt, self.service, config.bot.command, self.surfaces)
        self.max_body_bytes = max_body_bytes = config.bot.max_request_kib * 1024
        # The endpoint's guards (size, signature, replay, malformed input) run before Bolt.
        # Which workspace and app this is (auth.test at start); payloads claiming others are refused.
        self.identity = SlackIdentity(self.client.auth_test, app_id=config.bot.slack_app_id, org_wide=config.bot.slack_org_wide)
        # Socket Mode has no endpoint: the same shape and workspace checks as a middleware.
        self.bolt.use(socket_mode_guard(self._foreign, self.metrics.http_refused))
        # The replay guard: the store's, or on SQLite the front's memory backed by its inbox.
        self.remember_signature = (RememberedSignatures(self.inbox) if role == "front" and self.store.kind == "sqlite"
                                   else self.store.remember_signature)
        self._slack_wsgi = SlackEndpoint(SlackRequestHandler(self.bolt), config.slack.signing_secret or "",
                                         remember_signature=self.remember_signature, max_body_bytes=max_body_bytes,
                                         observe=self.metrics.http_refused, identity=self._foreign)
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._socket_mode: Any = None
        self._admin_server: Any = None
        self._stopped = threading.Event()
        self._started = threading.Event()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the notifier and (but in the front) the scheduler and the jobs; resume
        unfinished requests."""
        self.leases.announce(self.role)  # alive:<role>:<holder>, for /healthz and start-ups
        if self.store.kind == "sqlite":
            # One host: the leases of a process that is not running are freed now, so
            # its work resumes at once; live processes sharing the file keep theirs.
            self.leases.take_over_dead()
        path = getattr(self.store.backend, "path", None)
        if self.store.kind == "sqlite" and path:
            for line in tighten_private(path) + (tighten_private(self.inbox.path) if self.inbox is not self.store else []):  # say so: someone may rely on reading it
                log.warning("the database file was readable by others: %s (issue 17)", line)
        if self.role != "worker":
            self.identity.learn()  # once; the endpoint asks again if Slack did not answer
        if self.role != "front":  # the front writes the outbox; the workers deliver it
            self.notifier.start()
            self.scheduler.start()
        if self.job_runner is not None:
            self.job_runner.start()
        if self.inbox_pruner is not None:
            self.inbox_pruner.start()
        self._started.set()

    def stop(self) -> None:
        """Stop taking work, let the current step of each running request finish
        (the rest resumes in the next process), send what is in the outbox, stop."""
        if self._server is not None:
            self._server.close()
            self._drain_http()
        if self._socket_mode is not None:
            self._socket_mode.close()
        if self._admin_server is not None:
            self._admin_server.close()
        self._stopped.set()
        self.runner.stopping.set()
        self.scheduler.stop()
        self.listeners.shutdown(wait=True)
        if self.job_runner is not None:
            self.job_runner.stop()
        if self.inbox_pruner is not None:
            self.inbox_pruner.stop()
        self.worker.shutdown(wait=True)
        if isinstance(self.remember_signature, RememberedSignatures):
            self.remember_signature.flush()
        if self.role != "front":
            self.notifier.flush()
            self.notifier.stop()
        self.catalog.shutdown()
        if key_policy_lock() is self.key_policy_lock:
            use_key_policy_lock(InProcessKeyPolicyLock())
        self.leases.stop()  # give the work back: another replica takes it at once

    def _drain_http(self, timeout: float = 5.0) -> None:
        """Let the requests waitress already accepted be answered before the listener
        pool stops (a rolling restart must leave no command unanswered)."""
        dispatcher = getattr(self._server, "task_dispatcher", None)
        deadline = time.monotonic() + timeout
        while dispatcher is not None and (dispatcher.queue or dispatcher.active_count) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.listeners.drain(timeout)

    def _foreign(self, kind: str, value: Any) -> str | None:
        """Why a signed payload is not for this workspace/app (bot.slack_identity)."""
        try:
            return self.identity.problem(payload_ids(kind, value))
        except IdentityUnknown as error:
            raise Refused("503 Service Unavailable", str(error)) from None

    def _running(self) -> bool:
        """Started, not stopped, and (but in the front) the scheduler ticking."""
        return self._started.is_set() and not self._stopped.is_set() and (self.role == "front" or self.scheduler.running)

    def healthy(self) -> bool:
        return self.store.healthy() and self._running() and self.leases.healthy()

    def health(self) -> dict[str, Any]:
        """What /healthz reports: the store (kind, reachable, migrations, leases in the
        database), this process's lease renewals and scheduler and, in the front, the
        workers (live heartbeats in the store) and the jobs waiting for them."""
        store = self.store.health()
        leases = self.leases.report()
        ok = store["reachable"] and store["migrated"] and self._running() and leases["renewing"]
        report = {"ok": ok, "role": self.role, "store": store, "leases": leases, "scheduler": self.scheduler.running}
        if self.role == "front" and store["reachable"]:
            report["workers"] = self.workers_health()
            report["ok"] = ok and report["workers"]["alive"] > 0
        return report

    def workers_health(self) -> dict[str, Any]:
        """The workers as the store sees them: live heartbeats (``alive:worker:*``),
        their expiry, and the jobs waiting (how many, the oldest's age in seconds)."""
        alive = self.leases.alive("worker")
        jobs = job_counts(self.inbox, self.store)
        oldest = jobs["oldest_created_at"]
        return {"alive": len(alive), "holders": sorted(alive), "jobs_waiting": jobs["waiting"],
                "oldest_job_seconds": None if oldest is None else round(max(0.0, self.store.clock() - oldest), 1)}

    # -- HTTP ---------------------------------------------------------------------------

    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The Slack port: POST /slack/events (guarded, then Bolt) and GET /healthz,
        which says only whether the bot is up (no database query, no host, PID or
        path). Metrics and the detailed health are on the admin listener (issue 17)."""
        if environ.get("PATH_INFO") == "/healthz":
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                return _json(start_response, "405 Method Not Allowed", {"error": "GET only"}, [("Allow", "GET, HEAD")])
            up = self._running()
            return _json(start_response, "200 OK" if up else "503 Service Unavailable", {"ok": up})
        return self._slack_wsgi(environ, start_response)

    def admin_wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The admin listener (``--admin-port``, default host 127.0.0.1): GET /metrics
        (Prometheus text) and GET /healthz (the store, leases and scheduler)."""
        if environ.get("REQUEST_METHOD") != "GET":
            return _json(start_response, "405 Method Not Allowed", {"error": "GET only"}, [("Allow", "GET")])
        if environ.get("PATH_INFO") == "/metrics":
            body = self.metrics.exposition()
            start_response("200 OK", [("Content-Type", self.metrics.content_type), ("Content-Length", str(len(body)))])
            return [body]
        if environ.get("PATH_INFO") == "/healthz":
            report = self.health()
            return _json(start_response, "200 OK" if report["ok"] else "503 Service Unavailable", report)
        return _json(start_response, "404 Not Found", {"error": "not found"})

    def _create_server(self, host: str, port: int, threads: int, app: Callable | None = None) -> Any:
        from waitress.server import create_server

        # waitress refuses a larger Content-Length itself (413) before buffering the body.
        # poll() rather than select(): select() fails on descriptors above 1024, which a
        # long-running process with many connections (or a test run) can reach.
        return create_server(app or self.wsgi, host=host, port=port, threads=threads, ident="amibot",
                             max_request_body_size=self.max_body_bytes + 1, asyncore_use_poll=True)

    def start_http(self, host: str = "127.0.0.1", port: int = 3000, threads: int = 8) -> str:
        """Serve HTTP on waitress in a background thread; returns the base URL."""
        self._server = self._create_server(host, port, threads)
        actual_port = self._server.effective_port
        self._server_thread = threading.Thread(target=self._run_server, name="amibot-http", daemon=True)
        self._server_thread.start()
        return f"http://{host}:{actual_port}"

    def start_admin_http(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the admin listener (metrics, detailed health) in a background thread;
        returns its base URL. Off unless called (``amibot serve --admin-port N``)."""
        self._admin_server = server = self._create_server(host, port, 2, self.admin_wsgi)
        threading.Thread(target=_run_quietly, args=(server,), name="amibot-admin-http", daemon=True).start()
        log.info("admin listener (metrics, health) on http://%s:%s", host, server.effective_port)
        return f"http://{host}:{server.effective_port}"

    def _run_server(self) -> None:
        try:
            self._server.run()
        except OSError:
            pass  # the socket was closed by stop()

    def serve_http(self, host: str, port: int, threads: int = 8) -> None:
        """Serve HTTP in the foreground until ``stop()`` closes the server."""
        self._server = self._create_server(host, port, threads)
        log.info("amibot listening on http://%s:%s/slack/events", host, port)
        try:
            self._server.run()
        except OSError:
            pass  # the socket was closed by stop()

    def connect_socket_mode(self) -> Any:
        """Connect through Socket Mode (slack-sdk's built-in WebSocket client) without
        blocking; ``stop()`` closes the connection. Returns the Bolt SocketModeHandler."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._socket_mode = SocketModeHandler(self.bolt, self.config.slack.app_token, web_client=self.client)
        self._socket_mode.connect()
        return self._socket_mode

    def serve_socket_mode(self) -> None:
        """Serve through Socket Mode in the foreground until ``stop()``."""
        self.connect_socket_mode()
        log.info("amibot connected to Slack with Socket Mode")
        self._stopped.wait()


def _json(start_response: Callable, status: str, value: Any, headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


def _run_quietly(server: Any) -> None:
    try:
        server.run()
    except OSError:
        pass  # the socket was closed by stop()
