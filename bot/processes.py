"""The worker processes of ``amibot serve --workers N`` (wiring, issue 20).

The HTTP front starts N ``amibot work`` children on the same configuration and
environment (so the same store), starts again one that exits while the front runs,
and stops them with SIGTERM (each finishes its current step) when the front stops.
A child given ``--parent PID`` stops by itself when that process is gone, so a front
killed with SIGKILL leaves no worker behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

log = logging.getLogger("amibot.processes")


class WorkerProcesses:
    """N ``amibot work`` children, kept running until ``stop()``."""

    def __init__(self, count: int, *, config: str | None = None, restart_after: float = 1.0, extra: list[str] | None = None):
        self.count = count
        self.command = [sys.executable, "-m", "bot.cli", "work", "--parent", str(os.getpid()),
                        *(["--config", config] if config else []), *(extra or [])]
        self.restart_after = restart_after
        self.children: list[subprocess.Popen] = []
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the children and a thread that starts again any that exits."""
        self.children = [self._spawn() for _ in range(self.count)]
        self._thread = threading.Thread(target=self._watch, name="amibot-workers", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        child = subprocess.Popen(self.command, env=os.environ.copy())
        log.info("worker process %s started", child.pid)
        return child

    def _watch(self) -> None:
        while not self._stop.wait(self.restart_after):
            for i, child in enumerate(self.children):
                if child.poll() is not None and not self._stop.is_set():
                    log.warning("worker process %s exited (%s); starting another", child.pid, child.returncode)
                    self.children[i] = self._spawn()
                    self.restarts += 1

    @property
    def pids(self) -> list[int]:
        """The children's pids."""
        return [child.pid for child in self.children]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child (each finishes its current step), then wait; SIGKILL
        what is still running after ``timeout``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def exit_with_parent(parent: int, stop: Callable[[], None], every: float = 0.5, grace: float = 60.0) -> threading.Thread:
    """Call ``stop`` once the process ``parent`` is no longer this one's parent (it
    died: the child was adopted); exit anyway ``grace`` seconds later."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        log.warning("the front (pid %s) is gone: stopping", parent)
        stop()
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=watch, name="amibot-parent", daemon=True)
    thread.start()
    return thread
