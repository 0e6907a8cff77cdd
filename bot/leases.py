"""This process's leases: work is claimed, not assumed.

Every piece of work several replicas could do at once — a request's steps, a poll of
an account-region, a stream of outbox messages, a scheduled duty — is done under a
lease in the store (``bot.store.leases``), held by one process at a time. While work
runs, a background thread renews its leases; a process that dies stops renewing, and
once its leases expire another process takes the work and resumes it from the first
step not done (every step is idempotent: ClientToken, named grants, outbox dedupe).

Within one process the same names are also exclusive between threads, so the lease
is the one lock a piece of work needs.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from bot.store import Store

log = logging.getLogger("amibot.leases")

DEFAULT_LEASE_SECONDS = 30.0
# Each running process holds ``alive:<role>:<holder>`` (role: ``front``, ``worker`` or
# ``bot``, the single process), renewed with its other leases: /healthz counts the
# live workers from it, and a starting process knows whose leases are a dead one's.
ALIVE = "alive:"


def holder_pid(holder: str) -> tuple[str, int] | None:
    """(host, pid) of a holder id made by :func:`make_holder`; None for another shape."""
    parts = holder.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def make_holder() -> str:
    """A holder id unique to this process: host, pid and a random part (pids repeat
    across containers)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Leases:
    """Claims, renews and releases this process's leases."""

    def __init__(self, store: Store, *, seconds: float = DEFAULT_LEASE_SECONDS, holder: str | None = None):
        self.store = store
        self.seconds = float(seconds)
        self.holder = holder or make_holder()
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_renewal: float | None = None  # time.monotonic() of the last successful renewal
        self.renewal_errors = 0

    # -- holding work -----------------------------------------------------------------

    @contextmanager
    def hold(self, name: str, *, wait: bool = False) -> Iterator[bool]:
        """Hold the lease ``name`` for the duration of the block, renewed in the
        background; yields whether this process got it. ``wait``: keep trying until
        it does (the holder finishes, or dies and its lease expires)."""
        got = self._take(name)
        while wait and not got:
            time.sleep(min(0.2, self.seconds / 10))
            got = self._take(name)
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._held.discard(name)
                    self._lost.discard(name)
                try:
                    self.store.release_lease(name, self.holder)
                except Exception:  # it expires on its own
                    log.exception("could not release lease %s", name)

    def _take(self, name: str) -> bool:
        with self._lock:
            if name in self._held:
                return False  # another thread of this process has it
            self._held.add(name)
        try:
            got = self.store.claim_lease(name, self.holder, self.seconds)
        except Exception:
            log.exception("could not claim lease %s", name)
            got = False
        if not got:
            with self._lock:
                self._held.discard(name)
            return False
        self._ensure_renewer()
        return True

    def announce(self, role: str) -> None:
        """Say this process runs (``alive:<role>:<holder>``), renewed until ``stop()``."""
        name = f"{ALIVE}{role}:{self.holder}"
        if self.claim(name):
            with self._lock:
                self._held.add(name)
            self._ensure_renewer()

    def alive(self, role: str = "") -> dict[str, float]:
        """The live processes (of ``role``, or all): holder → when its heartbeat expires."""
        return {name.split(":", 2)[2]: expires for name, expires in self.store.live_lease_expiry(f"{ALIVE}{role}").items()}

    def take_over_dead(self) -> int:
        """At start on SQLite (one host): free the leases of holders that are not
        running — no heartbeat (``alive:``), or a process of this host whose pid is
        gone (killed a moment ago: its heartbeat has not expired yet) — so their work
        resumes now rather than after the expiry. Live processes' leases are left
        alone: several processes share the file (``amibot serve --workers``).
        Returns how many leases were freed."""
        living = set(self.alive())
        host = socket.gethostname()
        dead = set()
        for holder in self.store.lease_holders():
            if holder == self.holder:
                continue
            where = holder_pid(holder)
            if holder not in living or (where is not None and where[0] == host and not pid_alive(where[1])):
                dead.add(holder)
        freed = 0
        for holder in sorted(dead):
            freed += self.store.release_leases(holder)
        if freed:
            log.info("took over %s leases of %s stopped processes", freed, len(dead))
        return freed

    def lost(self, name: str) -> bool:
        """Whether a held lease could not be renewed (this process stalled past its
        expiry and another may have taken the work): stop before the next step."""
        with self._lock:
            return name in self._lost

    def claim(self, name: str, seconds: float | None = None) -> bool:
        """Claim ``name`` for a while without holding it (not renewed, not released):
        e.g. one poll of an account-region per interval across all processes."""
        try:
            return self.store.claim_lease(name, self.holder, self.seconds if seconds is None else seconds)
        except Exception:
            log.exception("could not claim lease %s", name)
            return False

    def held_by_others(self, prefix: str) -> set[str]:
        """Names under ``prefix`` that another process holds now."""
        return {name for name, holder in self.store.live_leases(prefix).items() if holder != self.holder}

    # -- renewal --------------------------------------------------------------------------

    def _ensure_renewer(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._renew_loop, name="amibot-leases", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.renew()

    def renew(self) -> None:
        """Extend every lease this process holds; note the ones it lost."""
        with self._lock:
            names = sorted(self._held)
        if not names:
            self.last_renewal = time.monotonic()
            return
        try:
            renewed = self.store.renew_leases(names, self.holder, self.seconds)
        except Exception:
            self.renewal_errors += 1
            log.exception("could not renew leases")
            return
        self.last_renewal = time.monotonic()
        with self._lock:
            for name in names:
                if name not in renewed and name in self._held:
                    log.warning("lease %s was lost (expired and taken): stopping that work", name)
                    self._lost.add(name)

    def healthy(self) -> bool:
        """Renewals keep up: the last one succeeded within a lease's time."""
        return self.last_renewal is None or time.monotonic() - self.last_renewal < self.seconds

    def report(self) -> dict:
        """This process's side of lease health, for /healthz."""
        with self._lock:
            held = len(self._held)
            lost = len(self._lost)
        return {"holder": self.holder, "seconds": self.seconds, "held_here": held, "lost_here": lost, "renewing": self.healthy()}

    def stop(self) -> None:
        """Stop renewing and give back every lease (a clean shutdown): the next
        process takes the work at once instead of after the expiry."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.store.release_leases(self.holder)
        except Exception:
            log.exception("could not release leases at shutdown")


class LeaseKeyPolicyLock:
    """The key-policy lock (``aws.actions.keypolicy.KeyPolicyLock``) as a store lease
    per key, ``key-policy:<key arn>``: two replicas (or two threads) cannot interleave
    GetKeyPolicy … PutKeyPolicy on one key. Waits for the lease; a dead holder's lease
    expires."""

    def __init__(self, leases: Leases):
        self.leases = leases

    @contextmanager
    def hold(self, key_arn: str) -> Iterator[None]:
        """Hold ``key-policy:<key_arn>`` from the read to the write of its policy."""
        with self.leases.hold(f"key-policy:{key_arn}", wait=True):
            yield
