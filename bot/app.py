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
from aws.sessions import DEFAULT_MAX_ATTEMPTS, AccountAccess, AwsSessions
from bot.config import Config
from bot.directory import SlackDirectory
from bot.notifier import Notifier
from bot import operations
from bot.audit import DriftChecker
from bot.scheduler import Clockwork, Scheduler
from bot.services import RequestService
from bot.store import Store
from bot.worker import PlanRunner, Worker

log = logging.getLogger("amibot")


def slack_client(config: Config) -> WebClient:
    """A WebClient honouring SLACK_API_URL, retrying 429s after Retry-After."""
    return WebClient(
        base_url=config.slack.api_url,
        token=config.slack.bot_token,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def aws_sessions(config: Config, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> AwsSessions:
    return AwsSessions({a.id: AccountAccess(a.id, a.role_arn, a.external_id) for a in config.accounts.values()}, max_attempts=max_attempts)


class Amibot:
    """The whole bot in one process."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 grant_wait_seconds: float = 300.0, tick_seconds: float = 5.0, notifier_poll_seconds: float = 2.0,
                 aws_max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.config = config
        self.store = Store(config.db_path, clock)
        self.client = slack_client(config)
        self.sessions = aws_sessions(config, aws_max_attempts)
        self.notifier = Notifier(self.store, self.client, owners_of=lambda alias: list(config.account(alias).owners), poll_seconds=notifier_poll_seconds)
        self.worker = Worker()
        # Bolt's listeners get a pool of their own (not Bolt's default 5 threads), one
        # that can be drained: listeners are quick, slow work goes to self.worker.
        self.listeners = Worker(threads=8, name="amibot-listener")
        self.runner = PlanRunner(self.store, self.sessions, self.notifier, notify_channel=config.bot.notify_channel, sleep=sleep, grant_wait_seconds=grant_wait_seconds, clock=clock)
        self.service = RequestService(config, self.store, self.sessions, self.notifier, self.worker, self.runner, SlackDirectory(self.client), clock)
        self.clockwork = Clockwork(self.store, self.notifier, self.worker, self.runner, clock)
        # The drift check is one of the clockwork's duties (daily by default).
        self.clockwork.drift = DriftChecker(config, self.store, self.sessions, self.notifier, lambda: operations.requests_that_changed_aws(self.store), clock)
        self.scheduler = Scheduler(self.clockwork, tick_seconds=tick_seconds)
        self.bolt = App(
            client=self.client,
            signing_secret=config.slack.signing_secret,
            # The token is checked on the first request instead of at construction,
            # so the bot starts even when Slack is briefly unreachable.
            token_verification_enabled=False,
            process_before_response=False,
            listener_executor=self.listeners,
        )
        handlers.register(self.bolt, self.service, config.bot.command)
        self._slack_wsgi = SlackRequestHandler(self.bolt)
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._socket_mode: Any = None
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the notifier and scheduler; resume unfinished requests."""
        self.notifier.start()
        self.scheduler.start()

    def stop(self) -> None:
        """Stop taking work, let the current step of each running request finish
        (the rest resumes in the next process), send what is in the outbox, stop."""
        if self._server is not None:
            self._server.close()
        if self._socket_mode is not None:
            self._socket_mode.close()
        self._stopped.set()
        self.runner.stopping.set()
        self.scheduler.stop()
        self.listeners.shutdown(wait=True)
        self.worker.shutdown(wait=True)
        self.notifier.flush()
        self.notifier.stop()

    def healthy(self) -> bool:
        return self.store.healthy() and self.scheduler.running

    # -- HTTP ---------------------------------------------------------------------------

    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The WSGI app: POST /slack/events to Bolt, GET /healthz."""
        if environ.get("PATH_INFO") == "/healthz":
            ok = self.healthy()
            body = json.dumps({"ok": ok, "store": self.store.healthy(), "scheduler": self.scheduler.running}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self._slack_wsgi(environ, start_response)

    def start_http(self, host: str = "127.0.0.1", port: int = 3000, threads: int = 8) -> str:
        """Serve HTTP on waitress in a background thread; returns the base URL."""
        from waitress.server import create_server

        self._server = create_server(self.wsgi, host=host, port=port, threads=threads, ident="amibot")
        actual_port = self._server.effective_port
        self._server_thread = threading.Thread(target=self._server.run, name="amibot-http", daemon=True)
        self._server_thread.start()
        return f"http://{host}:{actual_port}"

    def serve_http(self, host: str, port: int, threads: int = 8) -> None:
        """Serve HTTP in the foreground until ``stop()`` closes the server."""
        from waitress.server import create_server

        self._server = create_server(self.wsgi, host=host, port=port, threads=threads, ident="amibot")
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
