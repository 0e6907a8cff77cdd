"""Free ports for servers started later (offline/net.py)."""

from __future__ import annotations

import socket

from offline.net import _ephemeral_start, free_port


def test_a_free_port_can_be_bound_and_is_below_the_ephemeral_range():
    port = free_port()
    assert port < _ephemeral_start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
