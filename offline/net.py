"""Local networking for the offline stack: a free TCP port on 127.0.0.1."""

from __future__ import annotations

import random
import socket


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that no one listens on now, for a server started later
    (a child process, PostgreSQL). Picked at random below the kernel's ephemeral
    range: the ports the kernel hands out meanwhile (every client connection, every
    ``bind(port=0)`` of a parallel test) never take it before the server binds it."""
    start = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(max(1024, start - 12000), start)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: the kernel's pick
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
