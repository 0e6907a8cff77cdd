"""What the scheduler's tick reads of the requests in flight: one narrow query.

The tick looks at every approved or running request each time; loading each one
whole (params, facts, every step's JSON, approvals, votes) is most of a tick's own
time with hundreds of copies in flight. ``in_flight`` reads only what the tick
decides on: the request's timing columns, its pending waits (their params and
recorded result) and the first step not done. A request found to need work is loaded
whole by the engine that runs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=8192)
def _parsed(text: str) -> dict[str, Any]:
    """A step's params or result JSON, parsed once per distinct text: a wait's params
    never change and its result only when the copy moves, so a tick over hundreds of
    copies parses almost nothing. Shared: read it, never change it."""
    return json.loads(text)


@dataclass(frozen=True)
class PendingWait:
    """A pending wait step: where, its params and what it recorded so far (shared
    parsed JSON: read-only)."""

    seq: int
    account_id: str
    region: str
    params: dict[str, Any]
    result: dict[str, Any]


@dataclass
class InFlight:
    """An approved or running request as the tick sees it."""

    id: int
    state: str
    wake_at: float | None
    updated_at: float | None
    progress_shown_at: float | None
    first_open: int | None  # seq of the first step not done (None: all done)
    waits: list[PendingWait] = field(default_factory=list)


class InFlightStore:
    """The tick's narrow read of :class:`bot.store.Store` (mixed in)."""

    db: Any

    def in_flight(self, states: tuple[str, ...], wait_action: str) -> list[InFlight]:
        """The requests in ``states`` with their pending ``wait_action`` steps, in one
        statement (the same SQL on SQLite and PostgreSQL)."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            "SELECT r.id, r.state, r.wake_at, r.updated_at, r.progress_shown_at,"
            " (SELECT MIN(o.seq) FROM steps o WHERE o.request_id = r.id AND o.state <> 'done') AS first_open,"
            " w.seq, w.account_id, w.region, w.params, w.result"
            " FROM requests r LEFT JOIN steps w ON w.request_id = r.id AND w.state = 'pending' AND w.action = ?"
            f" WHERE r.state IN ({marks}) ORDER BY r.id, w.seq",
            [wait_action, *states],
        ).fetchall()
        found: dict[int, InFlight] = {}
        for row in rows:
            request = found.get(row[0])
            if request is None:
                request = found[row[0]] = InFlight(row[0], row[1], row[2], row[3], row[4], row[5])
            if row[6] is not None:
                request.waits.append(PendingWait(row[6], row[7], row[8], _parsed(row[9]), _parsed(row[10] or "{}")))
        return list(found.values())
