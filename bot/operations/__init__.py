"""Operations: the preflight and plan of each verb that makes a request, one module
per operation (``prepare_<verb>``). They are listed in ``bot.verbs.registry`` (no
registration here); the shared checks are in ``bot.verbs.common``.

Below, the entry points the worker and the services call, which look the verb up in
the registry. The registry imports this package's modules, and Python runs this file
before any of them: so it reads the registry only when called, never while being
imported (a module-level import would fail whenever a verb's module is imported
first). Once the planning modules live in ``bot/verbs/<verb>/``, the callers can use
``bot.verbs.registry`` directly and these three go.
"""

from __future__ import annotations

from typing import Any

from bot.requests import Request
from bot.verbs.common import CHANGED_AWS_STATES, PlanningContext, Prepared, preflight_read, requests_that_changed_aws

__all__ = [
    "CHANGED_AWS_STATES",
    "PlanningContext",
    "Prepared",
    "is_operation",
    "preflight_read",
    "prepare",
    "requests_that_changed_aws",
    "settle_after_success",
]


def prepare(ctx: PlanningContext, command: Any) -> Prepared:
    """Preflight and plan any operation's command (``bot.verbs.registry.prepare``)."""
    from bot.verbs import registry  # when called: see the module's docstring

    return registry.prepare(ctx, command)


def is_operation(command: Any) -> bool:
    """Whether the command makes a request (``bot.verbs.registry.is_operation``)."""
    from bot.verbs import registry  # when called: see the module's docstring

    return registry.is_operation(command)


def settle_after_success(request: Request, store: Any, third: Any) -> list[str]:
    """The after-success hooks of the request's verb (``bot.verbs.registry.settle_after_success``)."""
    from bot.verbs import registry  # when called: see the module's docstring

    return registry.settle_after_success(request, store, third)
