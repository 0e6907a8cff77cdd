"""Slack's Socket Mode endpoint on loopback (RFC 6455)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable


from offline.slack.fake import FakeSlack


class FakeSocketMode:
    """Slack's Socket Mode endpoint on loopback: a minimal RFC 6455 WebSocket server.

    Standard library only (``socket`` + ``threading``), enough for slack-sdk's
    built-in client: the HTTP upgrade with ``Sec-WebSocket-Accept``, text frames
    both ways (client frames masked, server frames not), ping/pong (the client
    pings and treats a connection without pongs as stale), close, and Slack's
    ``{"type": "hello"}`` on connect.

    ``FakeSocketMode(fake).start()`` also makes ``fake`` answer
    ``apps.connections.open`` with a fresh one-use ``ws://127.0.0.1:PORT/link/?ticket=...``
    URL, as Slack does. :meth:`request` delivers an envelope (``slash_commands``,
    ``interactive``, ``events_api``) to the newest connection and waits for the ack.
    """

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, fake: FakeSlack | None = None, *, app_id: str = "A0AMIBOT"):
        self.fake, self.app_id = fake, app_id
        self._cond = threading.Condition()
        self._listener: Any = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[Any] = []  # open sockets, oldest first
        self._send_locks: dict[Any, threading.Lock] = {}
        self._tickets: set[str] = set()
        self._received: list[dict] = []  # text messages from the client, parsed
        self.connections = 0  # completed handshakes
        self.pings = 0  # pings answered
        self.rejected: list[str] = []  # handshakes refused, and why
        if fake is not None:
            fake.socket_mode = self  # type: ignore[attr-defined]  # read by _api_apps_connections_open

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeSocketMode:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() polls, so stop() needs no wake-up trick
        self._spawn(self._accept_loop, "fake-socket-mode")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection (close frame 1001 first) and the listener; join the threads."""
        self._stopping.set()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            self._close(conn, 1001, "going away")
        for thread in list(self._threads):
            thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._listener is not None, "FakeSocketMode.start() first"
        return self._listener.getsockname()[1]

    def new_url(self) -> str:
        """A WebSocket URL with a fresh ticket, good for one connection (apps.connections.open)."""
        ticket = secrets.token_hex(8)
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what happened -------------------------------------------------------------
    @property
    def received(self) -> list[dict]:
        """Every text message the client sent (acks), parsed, in order."""
        with self._cond:
            return copy.deepcopy(self._received)

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._conns)

    def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` handshakes have completed and one connection is open."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections >= count and self._conns, timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout} s "
                                     f"(handshakes {self.connections}, rejected {self.rejected})")

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> dict:
        """The client's ack for ``envelope_id``: ``{"envelope_id": ..., "payload"?: {...}}``."""
        def ack() -> dict | None:
            return next((m for m in self._received if m.get("envelope_id") == envelope_id), None)

        with self._cond:
            if not self._cond.wait_for(ack, timeout):
                raise AssertionError(f"no ack for envelope {envelope_id} within {timeout} s; "
                                     f"received {self._received}")
            return copy.deepcopy(ack())  # type: ignore[arg-type]

    # -- what Slack sends ----------------------------------------------------------
    def send(self, message: dict) -> None:
        """One text frame to the newest open connection (as Slack, to one connection)."""
        with self._cond:
            if not self._conns:
                raise AssertionError("no open Socket Mode connection")
            conn = self._conns[-1]
        self._send_frame(conn, 0x1, json.dumps(message).encode())

    def deliver(self, kind: str, payload: dict, *, accepts_response_payload: bool = False,
                retry_attempt: int | None = None, retry_reason: str | None = None) -> str:
        """Send an envelope as Slack does; return its ``envelope_id``."""
        envelope_id = str(uuid.uuid4())
        envelope: dict = {"envelope_id": envelope_id, "payload": payload, "type": kind,
                          "accepts_response_payload": accepts_response_payload}
        if kind == "events_api":
            envelope.update({"retry_attempt": retry_attempt or 0, "retry_reason": retry_reason or ""})
        self.send(envelope)
        return envelope_id

    def request(self, kind: str, payload: dict, *, accepts_response_payload: bool = False,
                timeout: float = 3.0, **retry: Any) -> dict:
        """Deliver an envelope and wait for its ack (Slack's 3 s)."""
        envelope_id = self.deliver(kind, payload, accepts_response_payload=accepts_response_payload, **retry)
        return self.wait_for_ack(envelope_id, timeout)

    # -- the WebSocket protocol ------------------------------------------------------
    def _spawn(self, target: Callable, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._spawn(self._serve, "fake-socket-mode-conn", conn)

    def _serve(self, conn: Any) -> None:
        rfile = conn.makefile("rb")
        try:
            if not self._handshake(conn, rfile):
                return
            self._send_frame(conn, 0x1, json.dumps({
                "type": "hello", "num_connections": len(self._conns),
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id}}).encode())
            message = b""
            while not self._stopping.is_set():
                frame = self._read_frame(rfile)
                if frame is None:  # EOF: the client closed its socket
                    return
                fin, opcode, data = frame
                if opcode == 0x9:  # ping -> pong with the same payload
                    with self._cond:
                        self.pings += 1
                    self._send_frame(conn, 0xA, data)
                elif opcode == 0x8:  # close -> echo the code, then close
                    self._close(conn, int.from_bytes(data[:2], "big") if len(data) >= 2 else 1000, "")
                    return
                elif opcode in (0x0, 0x1, 0x2):
                    message += data
                    if fin:
                        self._record(message)
                        message = b""
        except (OSError, ValueError):
            pass  # socket closed under us (stop(), or the client went away)
        finally:
            rfile.close()
            self._forget(conn)

    def _handshake(self, conn: Any, rfile: Any) -> bool:
        request_line = rfile.readline().decode("latin-1").strip()
        headers: dict[str, str] = {}
        while (line := rfile.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = request_line.split(" ")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(parts[1] if len(parts) > 1 else "").query)
        ticket = (query.get("ticket") or [""])[0]
        with self._cond:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        key = headers.get("sec-websocket-key", "")
        problem = ("not a GET" if parts[0] != "GET" else
                   "not a websocket upgrade" if headers.get("upgrade", "").lower() != "websocket" else
                   "no Sec-WebSocket-Key" if not key else
                   "Sec-WebSocket-Version is not 13" if headers.get("sec-websocket-version") != "13" else
                   f"unknown or used ticket {ticket!r}" if not known else None)
        if problem:
            with self._cond:
                self.rejected.append(problem)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        with self._cond:
            self._conns.append(conn)
            self._send_locks[conn] = threading.Lock()
            self.connections += 1
            self._cond.notify_all()
        return True

    @staticmethod
    def _read_frame(rfile: Any) -> tuple[bool, int, bytes] | None:
        def exactly(n: int) -> bytes:
            data = rfile.read(n) if n else b""
            if len(data) < n:
                raise EOFError
            return data

        try:
            b1, b2 = exactly(2)
            length = b2 & 0x7F
            if length == 126:
                length = int.from_bytes(exactly(2), "big")
            elif length == 127:
                length = int.from_bytes(exactly(8), "big")
            mask = exactly(4) if b2 & 0x80 else b""  # RFC 6455: clients always mask
            data = exactly(length)
        except EOFError:
            return None
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return bool(b1 & 0x80), b1 & 0x0F, data

    def _send_frame(self, conn: Any, opcode: int, data: bytes) -> None:
        n = len(data)
        header = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else
                                           bytes([126]) + n.to_bytes(2, "big") if n < 1 << 16 else
                                           bytes([127]) + n.to_bytes(8, "big"))
        with self._cond:
            lock = self._send_locks.get(conn)
        if lock is None:
            raise OSError("connection closed")
        with lock:
            conn.sendall(header + data)

    def _record(self, message: bytes) -> None:
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = {"_unparsed": message.decode(errors="replace")}
        with self._cond:
            self._received.append(parsed if isinstance(parsed, dict) else {"_unparsed": parsed})
            self._cond.notify_all()

    def _close(self, conn: Any, code: int, reason: str) -> None:
        try:
            self._send_frame(conn, 0x8, code.to_bytes(2, "big") + reason.encode())
        except OSError:
            pass
        try:
            conn.shutdown(socket.SHUT_RDWR)  # wakes the connection thread's read
        except OSError:
            pass
        self._forget(conn)

    def _forget(self, conn: Any) -> None:
        with self._cond:
            if conn in self._conns:
                self._conns.remove(conn)
            self._send_locks.pop(conn, None)
            self._cond.notify_all()
        conn.close()
