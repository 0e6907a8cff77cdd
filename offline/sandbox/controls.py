"""Steering a started sandbox: pending copies, grant delay, faults and call counts.

A mixin of :class:`~offline.sandbox.Sandbox`.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from offline.sandbox.ec2_lifecycle import _resolve, _set_failed, _set_pending
from offline.sandbox.state import _LOCK, _Fault, _Pending, _State, _locate_image


class SandboxControls:
    """The control methods of :class:`~offline.sandbox.Sandbox`."""

    _state: _State

    # -- controls ------------------------------------------------------------------
    def hold_pending(self, image_id_or_all: bool | str = True) -> None:
        """``True``: images made from now on by CopyImage/CreateImage stay ``pending``
        until released; ``False``: stop holding new ones (those held stay held);
        an image id: put that image (back) into ``pending`` and hold it."""
        with _LOCK:
            if isinstance(image_id_or_all, bool):
                self._state.hold_all = image_id_or_all
                return
            _, _, _, image = _locate_image(image_id_or_all)
            self._state.pending[image.id] = _Pending(image.id, held=True, started=self._state.clock())
            _set_pending(image)

    def set_copy_duration(self, seconds: float | None) -> None:
        """Make new copies progress over ``seconds`` of wall time (None: at once)."""
        with _LOCK:
            self._state.copy_duration = seconds

    def set_copy_progress(self, image_id: str, percent: int) -> None:
        """Show ``percent`` (0-99; :meth:`complete` finishes) as the ``Progress`` of a
        pending image's snapshots."""
        with _LOCK:
            pending = self._pending(image_id)
            pending.progress = max(0, min(99, int(percent)))
            _, _, _, image = _locate_image(image_id)
            _set_pending(image, pending.progress)

    def advance(self, image_id: str | None = None, percent: int = 25) -> dict[str, str]:
        """Move pending images (one, or all) ``percent`` forward; those reaching 100%
        finish as :meth:`complete` does. Returns image id -> state."""
        with _LOCK:
            out = {}
            ids = [image_id] if image_id else list(self._state.pending)
            for iid in ids:
                pending = self._pending(iid)
                _, _, _, image = _locate_image(iid)
                pending.progress += percent
                if pending.progress >= 100:
                    out[iid] = _resolve(self._state, image)
                else:
                    _set_pending(image, pending.progress)
                    out[iid] = image.state
            return out

    def complete(self, image_id: str) -> str:
        """Finish a pending image: ``available`` with its snapshots ``completed`` at
        100% -- unless the copy's key checks fail now (the caller cannot use the source
        key, the destination key is missing or disabled), in which case it becomes
        ``failed`` as it would in AWS. An image that is not pending is left as it
        is. Returns the final state."""
        with _LOCK:
            _, _, _, image = _locate_image(image_id)
            if image_id not in self._state.pending and image.state != "pending":
                return image.state
            return _resolve(self._state, image)

    def release(self, image_id: str | None = None) -> dict[str, str]:
        """Stop holding: finish one held image, or all pending images and stop holding
        new ones. Returns image id -> final state."""
        with _LOCK:
            if image_id is None:
                self._state.hold_all = False
                ids = list(self._state.pending)
            else:
                ids = [image_id]
            return {iid: self.complete(iid) for iid in ids}

    def fail(self, image_id: str, reason: str = "Copy failed: an internal error occurred.", code: str = "Server.InternalError") -> None:
        """Make an image ``failed`` with ``StateReason`` ``{Code, Message}``."""
        with _LOCK:
            _, _, _, image = _locate_image(image_id)
            self._state.pending.pop(image_id, None)
            _set_failed(image, code, reason)

    def _pending(self, image_id: str) -> _Pending:
        pending = self._state.pending.get(image_id)
        if pending is None:
            raise ValueError(f"{image_id} is not pending")
        return pending

    def pending_images(self) -> list[str]:
        """Ids of images that are pending now."""
        with _LOCK:
            return list(self._state.pending)

    def set_allowed_images(self, account: str, region: str, state: str, providers: list[str] | tuple[str, ...] = ()) -> None:
        """Allowed AMIs of ``account`` in ``region``: ``state`` (``disabled``,
        ``enabled``, ``audit-mode``) and the ``ImageProviders`` it allows
        (offline/sandbox/ec2_allowed_images.py)."""
        from offline.sandbox.ec2_allowed_images import set_allowed_images

        set_allowed_images(account, region, state, providers)

    def set_grant_delay(self, seconds: float) -> None:
        """New KMS grants take effect only after ``seconds`` (KMS grants are
        eventually consistent); 0 (the default) means at once."""
        with _LOCK:
            self._state.grant_delay = float(seconds)

    @property
    def clock(self) -> Callable[[], float]:
        """The sandbox's time (see :meth:`use_clock`)."""
        return self._state.clock

    def use_clock(self, clock: Callable[[], float]) -> None:
        """The sandbox's time from now on (until :meth:`reset`): grant delays,
        consistency windows and timed copies follow ``clock`` (seconds). Tests give
        theirs, so a window ends when they move it; by default, real time."""
        with _LOCK:
            self._state.clock = clock

    def set_consistency_delay(self, seconds: float) -> None:
        """New images, snapshots, instances and grants stay invisible for ``seconds``
        after creation (0: visible at once) until the next :meth:`reset`."""
        with _LOCK:
            self._state.consistency_delay = float(seconds)
            if seconds <= 0:
                self._state.born.clear()

    def set_permission_delay(self, seconds: float | None) -> None:
        """A launch/createVolume permission added from now on is seen by the grantee
        only ``seconds`` later on the sandbox clock (None: the consistency delay, the
        default; 0: at once) until the next :meth:`reset` (offline/sandbox/lags.py)."""
        with _LOCK:
            self._state.permission_delay = None if seconds is None else float(seconds)

    def set_status_check_delay(self, seconds: float | None) -> None:
        """Status checks of a running instance answer ``initializing`` for ``seconds``
        (None: the consistency delay, the default; 0: ``ok`` at once) until :meth:`reset`."""
        with _LOCK:
            self._state.status_delay = None if seconds is None else float(seconds)

    def impair_status_checks(self, instance_id: str) -> None:
        """Make that instance's status checks end ``impaired`` instead of ``ok``."""
        with _LOCK:
            self._state.impaired.add(instance_id)

    def reveal(self, *resource_ids: str) -> None:
        """End the invisibility window of these resources (none given: of all), as
        if the delay had passed."""
        with _LOCK:
            if not resource_ids:
                self._state.born.clear()
            for resource_id in resource_ids:
                self._state.born.pop(resource_id, None)

    def hidden(self, resource_id: str) -> bool:
        """Whether a resource is still invisible (eventual consistency)."""
        from offline.sandbox.consistency import _hidden

        with _LOCK:
            return _hidden(self._state, resource_id)

    def inject_fault(
        self,
        operation: str,
        code: str = "RequestLimitExceeded",
        *,
        times: int = 1,
        status: int = 503,
        message: str = "Request limit exceeded.",
        account: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` requests of ``operation`` (the API name, e.g.
        "CopyImage", "ModifyImageAttribute", "CreateGrant"), from any account (or only
        ``account``), answer ``code``/``message`` with HTTP ``status``, in the
        service's wire format, so botocore's retry logic handles them as it would
        AWS's; ``delay`` makes each of those answers take that many seconds (a slow
        AWS)."""
        with _LOCK:
            self._state.faults.setdefault(operation, deque()).append(
                _Fault(code=code, status=status, message=message, remaining=times, account=account, delay=delay)
            )

    def clear_faults(self) -> None:
        """Drop every fault not yet delivered."""
        with _LOCK:
            self._state.faults.clear()

    def calls(self, operation: str, account: str | None = None) -> int:
        """How many requests of ``operation`` reached the sandbox (faulted attempts and
        retries included), from any account or from ``account``."""
        with _LOCK:
            if account is None:
                return self._state.calls[operation]
            return self._state.calls[(operation, account)]

    # -- IAM -----------------------------------------------------------------------
    def attach_role_policy(self, account_id: str, role_name: str, policy: dict | str, *, policy_name: str = "policy") -> str:
        """Create the role (if missing) with ``policy`` as an inline policy, and turn
        identity enforcement on: from now on every call the role makes is held to its
        policies (see ``offline.sandbox.identity``). Returns the role ARN."""
        import json

        from moto.iam.models import iam_backends

        document = policy if isinstance(policy, str) else json.dumps(policy)
        with _LOCK:
            backend = iam_backends[account_id]["global"]
            role = next((r for r in backend.roles.values() if r.name == role_name), None)
            if role is None:
                trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
                role = backend.create_role(role_name, trust, "/", None, "", [], None)
            backend.put_role_policy(role_name, policy_name, document)
            self._state.identity_enforced = True
            return role.arn

    def attach_bot_policy(self, policy: dict) -> None:
        """Hold the bot's own base credentials to ``policy`` (enforcement on)."""
        from offline.sandbox.iam_eval import statements_of

        with _LOCK:
            self._state.bot_policy_statements = statements_of(policy)
            self._state.identity_enforced = True

    def iam_denials(self) -> list[tuple[str, str, str, str]]:
        """Calls refused by an identity policy since the last reset:
        (operation, principal, IAM action, resource)."""
        with _LOCK:
            return list(self._state.iam_denials)
