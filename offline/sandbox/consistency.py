"""Eventual consistency: what AWS has just created is not visible at once.

AWS: "Amazon EC2 API follows an eventual consistency model ... If you run a describe
command immediately after a create, you might get a not-found error" (EC2 API
Reference, "Eventual consistency in the Amazon EC2 API"), and KMS grants take time to
be listed and used. While a sandbox is started with ``consistency_delay`` > 0, every
image and snapshot made by CopyImage/CreateImage, every instance made by
RunInstances and every KMS grant made by CreateGrant is invisible for that many
seconds: ``DescribeImages``/``DescribeSnapshots``/``DescribeInstances``/
``DescribeInstanceStatus`` (lags.py) leave it out (and answer ``*.NotFound`` when it is asked
for by id), ``TerminateInstances`` answers ``InvalidInstanceID.NotFound``, and
``ListGrants`` leaves a new grant out and ``RevokeGrant`` of it by id answers
``NotFoundException`` (AWS KMS: "When you create, retire, or revoke a grant, there
might be a brief delay, usually less than five minutes, until the grant is available
throughout AWS KMS", API_RevokeGrant, "AWS KMS eventual consistency"). Seeded resources (:class:`~offline.sandbox.world.SandboxWorld`)
are visible at once.

Who sees it: every caller except the sandbox's own sessions
(:meth:`Sandbox.session` / :meth:`Sandbox.client`, role session ``amibot-sandbox``),
which tests and the world builder use to look at the world as it really is. The bot
(its own sessions) sees AWS's delay.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from offline.sandbox.state import _KEY_ACCOUNTS, _LOCK, _ORIGINALS, _State, _active
from offline.sandbox.wire import _ec2_patch


def _note_new(state: _State, ids: Iterable[str], resp: Any = None) -> None:
    """Start the invisibility window of resources just created (not for what the
    sandbox's own sessions make: tests set the world up "from before")."""
    if state.consistency_delay <= 0 or (resp is not None and _observer(resp)):
        return
    now = state.clock()
    for resource_id in ids:
        state.born.setdefault(resource_id, now)


OBSERVER_SESSION = "amibot-sandbox"
"""RoleSessionName of the sandbox's own sessions, which see everything at once."""


def _observer(resp: Any) -> bool:
    """Whether the caller is one of the sandbox's own sessions (tests looking)."""
    try:
        key = resp.get_access_key()
    except Exception:
        return False
    entry = _KEY_ACCOUNTS.get(key)
    return bool(entry and entry[1].endswith(f"/{OBSERVER_SESSION}"))


def _hidden_from(resp: Any, state: _State, resource_id: str) -> bool:
    """Whether ``resource_id`` is still invisible to the caller of ``resp``."""
    return bool(state.born) and _hidden(state, resource_id) and not _observer(resp)


def _hidden(state: _State, resource_id: str) -> bool:
    """Whether a resource is still inside its invisibility window."""
    born = state.born.get(resource_id)
    if born is None:
        return False
    if state.clock() - born >= state.consistency_delay:
        state.born.pop(resource_id, None)
        return False
    return True


def _instance_ids(self: Any) -> list[str]:
    return list(self._get_param("InstanceIds", []) or [])


def _instance_not_found(hidden: list[str]) -> Exception:
    from moto.ec2.exceptions import InvalidInstanceIdError

    return InvalidInstanceIdError(hidden[0])


@_ec2_patch("InstanceResponse.describe_instances")
def _describe_instances(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    hidden = [i for i in _instance_ids(self) if _hidden_from(self, state, i)]
    if hidden:
        raise _instance_not_found(hidden)
    result = original(self)
    if state.born:
        reservations = result.result.get("Reservations") or []
        result.result["Reservations"] = [
            r for r in reservations if not all(_hidden_from(self, state, inst.id) for inst in r.instances)
        ]
    return result


@_ec2_patch("InstanceResponse.terminate_instances")
def _terminate_instances(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    hidden = [i for i in _instance_ids(self) if _hidden_from(self, state, i)]
    if hidden:
        raise _instance_not_found(hidden)
    return original(self)


def _list_grants(name: str) -> Callable[..., Any]:
    """Wrap the ListGrants handler: new grants are left out while hidden."""

    def handler(self: Any) -> Any:
        body = _ORIGINALS[name](self)
        state = _active()
        if state is None or not state.born:
            return body
        with _LOCK:
            data = json.loads(body)
            data["Grants"] = [g for g in data.get("Grants", []) if not _hidden_from(self, state, g.get("GrantId", ""))]
            data["GrantCount"] = len(data["Grants"])
            return json.dumps(data)

    handler.__name__ = "list_grants"
    return handler


def _create_grant(name: str) -> Callable[..., Any]:
    """Wrap the CreateGrant handler: a grant made now (not one returned again for an
    identical named request) is hidden for the window."""

    def handler(self: Any) -> Any:
        state = _active()
        known = set(state.grant_created) if state is not None else set()
        body = _ORIGINALS[name](self)
        if state is not None and isinstance(body, str):
            try:
                grant_id = json.loads(body)["GrantId"]
            except (TypeError, ValueError, KeyError):
                return body
            if grant_id not in known:
                with _LOCK:
                    _note_new(state, [grant_id], self)
        return body

    handler.__name__ = "create_grant"
    return handler


def _revoke_grant(name: str) -> Callable[..., Any]:
    """Wrap the RevokeGrant handler: a grant still hidden is not found yet (AWS KMS
    eventual consistency), so a revoke right after the create must ask again."""

    def handler(self: Any) -> Any:
        state = _active()
        if state is not None and state.born:
            grant_id = str(json.loads(self.body or "{}").get("GrantId") or "")
            with _LOCK:
                hidden = _hidden_from(self, state, grant_id)
            if hidden:
                from offline.sandbox.errors import _kms_error

                raise _kms_error("NotFoundException", f"Grant id {grant_id} not found")
        return _ORIGINALS[name](self)

    handler.__name__ = "revoke_grant"
    return handler
