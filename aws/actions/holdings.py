"""Who relies on a piece of AWS access: reference counts across requests.

Two requests can rely on the same launch permission, snapshot permission or
key-policy statement: a time-boxed share of an AMI and a permanent share of the same
AMI with the same account, or a copy's temporary share of an AMI that a share already
opened. AWS keeps one entry for both, so removing it for one request breaks the other.
Every action that adds such access *holds* it for its request; whatever removes it
(undo, a time-boxed share's expiry, a copy's temporary share, an unshare) asks first
and removes it only when no other live request still needs it, saying who kept it.

``aws/`` knows nothing of the store: the worker hands each step a ``Holdings`` backed
by the store (``bot.holdings``); the default here keeps the single-request behaviour
(remove exactly what this request created) for code that runs a step on its own.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol


@dataclass
class Release:
    """The answer to "may I remove this?": ``remove``, or who still needs it."""

    remove: bool
    kept_for: list[str] = field(default_factory=list)  # display ids of live requests

    def why_kept(self) -> str:
        return f"{', '.join(self.kept_for)} still {'needs' if len(self.kept_for) == 1 else 'need'} it"


class Holdings(Protocol):
    """What a step may ask about shared AWS access (see the module docstring)."""

    def hold(self, resource: str, *, created: bool) -> None:
        """This request relies on ``resource``; ``created`` when it just added it."""

    def release(self, resource: str, *, created: bool) -> Release:
        """This request no longer needs ``resource`` (undo, expiry, temporary)."""

    def end(self, resource: str) -> Release:
        """An explicit removal (an unshare): shares in force are let go (the unshare
        settles them); ``remove`` unless work in flight (a running copy) needs it."""

    def guard(self, name: str) -> Any:
        """A context manager: while it is held no other request decides about (reads,
        holds, releases) or changes the access under ``name`` (one AMI's launch
        permissions), so deciding to remove and removing are one step and nobody reads
        "already present" in between."""


class InProcessGuards:
    """One lock per guarded name, within this process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock for the block."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield


IN_PROCESS_GUARDS = InProcessGuards()


class OwnHoldings:
    """No other request exists: remove exactly what this request created."""

    def guard(self, name: str) -> Any:
        """Guard ``name`` within this process."""
        return IN_PROCESS_GUARDS.hold(name)

    def hold(self, resource: str, *, created: bool) -> None:
        return None

    def release(self, resource: str, *, created: bool) -> Release:
        return Release(remove=created)

    def end(self, resource: str) -> Release:
        return Release(remove=True)


def launch_permission_resource(account_id: str, region: str, image_id: str, entry: dict[str, Any]) -> str:
    """The holding name of one launch-permission entry (an account, org or OU)."""
    return f"ec2:launch:{account_id}:{region}:{image_id}:{next(iter(entry.values()))}"


def launch_permission_guard(account_id: str, region: str, image_id: str) -> str:
    """The guard (``Holdings.guard``) over every launch permission of one AMI."""
    return f"ec2:launch:{account_id}:{region}:{image_id}"


def snapshot_permission_resource(account_id: str, region: str, snapshot_id: str, grantee: str) -> str:
    """The holding name of one account's createVolumePermission on a snapshot."""
    return f"ec2:volume:{account_id}:{region}:{snapshot_id}:{grantee}"


def snapshot_permission_guard(account_id: str, region: str, snapshot_id: str) -> str:
    """The guard (``Holdings.guard``) over every createVolumePermission of one snapshot."""
    return f"ec2:volume:{account_id}:{region}:{snapshot_id}"


def key_statement_resource(key_arn: str, sid: str) -> str:
    """The holding name of one key-policy statement amibot wrote."""
    return f"kms:statement:{key_arn}:{sid}"


def kept_sentence(what: str, kept: list[tuple[str, Release]]) -> str:
    """"kept launch permission … for 2222…: R-5 still needs it" for each kept entry."""
    return "; ".join(f"kept {what} for {name} ({release.why_kept()})" for name, release in kept)
