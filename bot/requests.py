"""The request model and its state machine.

A request is what one slash command asked for. It becomes a *plan*: an ordered list
of steps, persisted before anyone approves, so the approver sees exactly what will
run and a restarted process resumes at the first step not done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# A plan's step before it is stored: built by the actions (``Action.plan``).
from aws.actions.plan import PlannedStep  # noqa: F401

PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
DENIED = "denied"
EXPIRED = "expired"
CANCELLED = "cancelled"
ACTIVE = "active"  # a time-boxed share in force until its expiry
REVOKED = "revoked"  # a time-boxed share removed (at expiry, or by an unshare)
PARTIAL = "partial"  # a distribution some of whose targets failed (the others are done)

# Every allowed transition. The store refuses anything else, so a bug cannot,
# say, run a denied request.
TRANSITIONS: dict[str, frozenset[str]] = {
    # → FAILED: the approval message could not be posted anywhere (the requester is told why).
    PENDING_APPROVAL: frozenset({APPROVED, DENIED, EXPIRED, CANCELLED, FAILED}),
    APPROVED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, ACTIVE, CANCELLED, PARTIAL}),
    ACTIVE: frozenset({REVOKED, FAILED}),
}
FINAL_STATES = frozenset({SUCCEEDED, FAILED, DENIED, EXPIRED, CANCELLED, REVOKED, PARTIAL})

STATE_LABELS = {
    PENDING_APPROVAL: "waiting for approval",
    APPROVED: "approved, starting",
    RUNNING: "running",
    SUCCEEDED: "done",
    FAILED: "failed",
    DENIED: "denied",
    EXPIRED: "expired without a decision",
    CANCELLED: "cancelled",
    ACTIVE: "active",
    REVOKED: "share removed",
    PARTIAL: "partly done",
}

# Step states.
STEP_PENDING = "pending"
STEP_DONE = "done"
STEP_FAILED = "failed"
STEP_UNDONE = "undone"


def can_transition(from_state: str, to_state: str) -> bool:
    """Whether the state machine allows ``from_state → to_state``."""
    return to_state in TRANSITIONS.get(from_state, frozenset())


def display_id(number: int) -> str:
    """The short, human id shown in every message: ``R-17``."""
    return f"R-{number}"


def parse_display_id(text: str) -> int | None:
    """``R-17`` → 17; anything else → None."""
    text = text.strip().upper()
    if text.startswith("R-") and text[2:].isdigit():
        return int(text[2:])
    return None


@dataclass
class Step:
    """A stored step of a request's plan."""

    request_id: int
    seq: int
    action: str
    account_alias: str
    account_id: str
    region: str
    params: dict[str, Any]
    description: str
    state: str
    result: dict[str, Any]
    error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Step":
        return cls(
            request_id=row["request_id"],
            seq=row["seq"],
            action=row["action"],
            account_alias=row["account_alias"],
            account_id=row["account_id"],
            region=row["region"],
            params=json.loads(row["params"]),
            description=row["description"],
            state=row["state"],
            result=json.loads(row["result"] or "{}"),
            error=row["error"],
        )


@dataclass
class Request:
    """A stored request."""

    id: int
    uid: str  # random; ClientTokens and grant names derive from it, never from ``id``
    kind: str  # share | unshare | copy | migrate
    state: str
    requester: str
    channel: str
    command_text: str
    params: dict[str, Any]
    facts: dict[str, Any]  # what the preflight saw, shown to the approver
    approver_accounts: list[str]  # aliases of accounts whose owners must approve
    root_ts: str | None
    created_at: float
    expires_at: float
    active_until: float | None
    reminded: int
    error: str | None
    wake_at: float | None = None
    progress: str | None = None
    progress_shown_at: float | None = None
    revoke_attempts: int = 0  # failed removals of a time-boxed share at its expiry
    permalink: str | None = None  # the root message's link (chat.getPermalink), once known
    updated_at: float | None = None  # last change of the row (a just-approved request is its approver's to start)
    steps: list[Step] = field(default_factory=list)
    approvals: dict[str, str] = field(default_factory=dict)  # account alias -> approver
    votes: dict[str, list[str]] = field(default_factory=dict)  # account alias -> approvers so far (two-owner rules)

    @property
    def display_id(self) -> str:
        return display_id(self.id)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Request":
        return cls(
            id=row["id"],
            uid=row["uid"],
            kind=row["kind"],
            state=row["state"],
            requester=row["requester"],
            channel=row["channel"],
            command_text=row["command_text"],
            params=json.loads(row["params"]),
            facts=json.loads(row["facts"]),
            approver_accounts=json.loads(row["approver_accounts"]),
            root_ts=row["root_ts"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            active_until=row["active_until"],
            reminded=row["reminded"],
            error=row["error"],
            wake_at=row.get("wake_at"),
            progress=row.get("progress"),
            progress_shown_at=row.get("progress_shown_at"),
            revoke_attempts=row.get("revoke_attempts") or 0,
            permalink=row.get("permalink"),
            updated_at=row.get("updated_at"),
        )
