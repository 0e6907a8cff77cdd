"""The store-backed answer to "who else relies on this AWS access?" handed to each
step by the worker (see ``aws.actions.holdings``)."""

from __future__ import annotations

from typing import Any

from aws.actions.holdings import IN_PROCESS_GUARDS, Release
from bot.requests import display_id
from bot.store import Store


class StoreHoldings:
    """Holdings of one request, counted in the store across all requests."""

    def __init__(self, store: Store, request_id: int, leases: Any = None):
        self.store = store
        self.request_id = request_id
        self.leases = leases  # bot.leases.Leases: guards shared by every replica

    def guard(self, name: str) -> Any:
        """Guard ``name`` across replicas (a store lease ``holding:<name>``, waited
        for; a dead holder's lease expires), else within this process."""
        if self.leases is None:
            return IN_PROCESS_GUARDS.hold(name)
        return self.leases.hold(f"holding:{name}", wait=True)

    def hold(self, resource: str, *, created: bool) -> None:
        """This request relies on ``resource`` (``created``: it added it)."""
        self.store.hold(resource, self.request_id, created)

    def release(self, resource: str, *, created: bool) -> Release:
        """This request lets ``resource`` go: remove it only if nobody else holds it."""
        remove, others = self.store.release(resource, self.request_id, created)
        return Release(remove=remove, kept_for=[display_id(n) for n in others])

    def end(self, resource: str) -> Release:
        """This request (an unshare) ends ``resource`` for the requests holding it."""
        others = self.store.end_holding(resource, self.request_id)
        return Release(remove=not others, kept_for=[display_id(n) for n in others])
