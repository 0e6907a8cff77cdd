"""A test hook for crash tests, off unless ``AMIBOT_PAUSE_AT`` is set.

``AMIBOT_PAUSE_AT=executed:2,posted:reply`` makes the process stop for good at those
named points (after writing the name to ``AMIBOT_PAUSE_MARKER``), so a test can kill
it with SIGKILL exactly there and check that a restart loses and repeats nothing.
With ``AMIBOT_PAUSE_ONCE`` set, a point already in the marker file is passed: of
several processes that inherit the setting (``serve --workers N``: the front and
its workers), only the first to reach it stops. The marker line names the pid.
Points: ``before:N``, ``executed:N`` (step N ran in AWS, not yet recorded),
``done:N`` (worker); ``posting:KIND``, ``posted:KIND`` (notifier; KIND is root,
reply, update, post).
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("amibot.crashpoints")

_POINTS = frozenset(filter(None, os.environ.get("AMIBOT_PAUSE_AT", "").split(",")))


def reached(name: str) -> None:
    """Stop here forever if a crash test asked for this point."""
    if name not in _POINTS:
        return
    marker = os.environ.get("AMIBOT_PAUSE_MARKER")
    if marker and os.environ.get("AMIBOT_PAUSE_ONCE") and os.path.exists(marker):
        with open(marker) as f:
            if any(line.split(" ")[0] == name for line in f.read().splitlines()):
                return
    if marker:
        with open(marker, "a") as f:
            f.write(f"{name} {os.getpid()}\n")
    log.warning("pausing at %s (AMIBOT_PAUSE_AT)", name)
    threading.Event().wait()
