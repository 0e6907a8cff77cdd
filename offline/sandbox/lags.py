"""Two more AWS delays: permission changes and instance status checks.

AWS ("Eventual consistency in the Amazon EC2 API", EC2 API Reference): a change made
by one call can take a while to be seen by the next -- a launch permission added by
ModifyImageAttribute (a createVolumePermission added by ModifySnapshotAttribute) is not
seen at once by the grantee: until ``permission_delay`` has passed on the sandbox's
clock, DescribeImages/DescribeSnapshots by id from the grantee answer ``*.NotFound``.

AWS ("Status checks for your instances", EC2 User Guide): a new instance's status
checks answer ``initializing`` until they have run, then ``ok`` -- or ``impaired``
when a check fails. Here: ``initializing`` for ``status_delay`` after the instance is
first seen running, then ``ok``, or ``impaired`` for an instance marked so
(:meth:`Sandbox.impair_status_checks`). Both delays default to the consistency delay;
0 turns them off. The sandbox's own sessions see everything at once.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from offline.sandbox.consistency import _hidden_from, _instance_ids, _instance_not_found, _observer
from offline.sandbox.state import _State
from offline.sandbox.wire import _ec2_patch


def _delay(state: _State, own: float | None) -> float:
    return state.consistency_delay if own is None else own


def note_granted(resp: Any, state: _State, resource_id: str, accounts: Iterable[str]) -> None:
    """Start the lag of a permission just given to ``accounts`` (not by observers)."""
    if _delay(state, state.permission_delay) <= 0 or _observer(resp):
        return
    now = state.clock()
    for account in accounts:
        state.granted[(resource_id, account)] = now


def permission_lagging(resp: Any, state: _State, resource_id: str, caller: str) -> bool:
    """Whether ``caller`` does not see its new permission on ``resource_id`` yet."""
    started = state.granted.get((resource_id, caller))
    if started is None:
        return False
    if state.clock() - started >= _delay(state, state.permission_delay):
        state.granted.pop((resource_id, caller), None)
        return False
    return not _observer(resp)


class _StatusView:
    """An instance as DescribeInstanceStatus shows it, with its checks' status."""

    def __init__(self, instance: Any, status: str) -> None:
        self._instance = instance
        self._status = status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._instance, name)

    @property
    def instance_status(self) -> dict[str, Any]:
        """The instance check (reachability)."""
        return self._check()

    @property
    def system_status(self) -> dict[str, Any]:
        """The system check (reachability)."""
        return self._check()

    def _check(self) -> dict[str, Any]:
        detail = {"ok": "passed", "impaired": "failed"}.get(self._status, "initializing")
        return {"Details": [{"Name": "reachability", "Status": detail}], "Status": self._status}


def status_views(resp: Any, state: _State, instances: list[Any]) -> list[Any]:
    """The instances with their checks ``initializing``/``ok``/``impaired`` (sandbox clock)."""
    delay = _delay(state, state.status_delay)
    out = []
    for inst in instances:
        if getattr(inst, "state_code", None) != 16:
            out.append(inst)
            continue
        now = state.clock()
        started = state.status_started.setdefault(inst.id, now)
        if delay > 0 and now - started < delay and not _observer(resp):
            out.append(_StatusView(inst, "initializing"))
        elif inst.id in state.impaired:
            out.append(_StatusView(inst, "impaired"))
        else:
            out.append(inst)
    return out


@_ec2_patch("InstanceResponse.describe_instance_status")
def _describe_instance_status(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    """A hidden new instance is not found (eventual consistency); a visible one's
    checks are ``initializing`` for the status-check delay, then ``ok``/``impaired``."""
    hidden = [i for i in _instance_ids(self) if _hidden_from(self, state, i)]
    if hidden:
        raise _instance_not_found(hidden)
    result = original(self)
    result.result["InstanceStatuses"] = status_views(self, state, list(result.result.get("InstanceStatuses") or []))
    return result
