"""A planned step: one AWS change (or check) of a plan, before it is stored.

Defined here, under the actions that build it (``Action.plan``), so that ``aws``
needs nothing from ``bot``; ``bot.requests`` re-exports it for the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Account(Protocol):
    """What a plan needs of an account: its alias (shown) and id (called)."""

    alias: str
    id: str


@dataclass
class PlannedStep:
    """One AWS change (or check) of a plan, before it is stored."""

    action: str
    account_alias: str
    account_id: str
    region: str
    params: dict[str, Any]
    description: str
