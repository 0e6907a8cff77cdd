"""The store-backed answer to "who else relies on this AWS access?" handed to each
step by the worker (see ``aws.actions.holdings``)."""

from __future__ import annotations

from aws.actions.holdings import Release
from bot.requests import display_id
from bot.store import Store


class StoreHoldings:
    """Holdings of one request, counted in the store across all requests."""

    def __init__(self, store: Store, request_id: int):
        self.store = store
        self.request_id = request_id

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
