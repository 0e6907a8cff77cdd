"""The sandbox on the wire: AWS error responses, caller identity and moto's dispatch.

Every request passes :func:`_patched_call_action`, which counts it, delivers injected
faults, holds it to the caller's IAM policy while enforcement is on
(:mod:`offline.sandbox.iam_enforce`), answers ``SimulatePrincipalPolicy``
(:mod:`offline.sandbox.iam_simulate`, which moto lacks) and turns moto's raw ``KeyError`` into the service's NotFound error. Credentials
made by ``sts.assume_role`` keep mapping to their account. :func:`_ec2_patch` wraps an
EC2 response method so that it runs the sandbox rule only while a sandbox is started.
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from offline.sandbox.errors import _error_response, _kms_error
from offline.sandbox.state import _KEY_ACCOUNTS, _LOCK, _ORIGINALS, _STACK, _active


def _caller_arn(resp: Any) -> str:
    try:
        key = resp.get_access_key()
    except Exception:
        key = None
    if key in _KEY_ACCOUNTS:
        return _KEY_ACCOUNTS[key][1]
    return f"arn:aws:iam::{resp.current_account}:root"


def _access_denied(resp: Any, action: str, key: Any) -> Exception:
    return _kms_error(
        "AccessDeniedException",
        f"User: {_caller_arn(resp)} is not authorized to perform: kms:{action} on resource: {key.arn} "
        f"because no resource-based policy allows the kms:{action} action",
    )


@contextmanager
def _as_account(resp: Any, account: str) -> Iterator[None]:
    """Run moto's handler as if the owner called: moto looks keys up in the caller's
    account only, so after the sandbox has authorised a cross-account call it is
    replayed against the owner's backend."""
    saved = resp.current_account
    resp.current_account = account
    try:
        yield
    finally:
        resp.current_account = saved


# --------------------------------------------------------------------------- patches: core


def _patched_call_action(self: Any) -> Any:
    state = _active()
    original = _ORIGINALS["call_action"]
    if state is None:
        return original(self)
    try:
        operation = self._get_action()
    except Exception:
        operation = None
    if operation:
        with _LOCK:
            state.calls[operation] += 1
            state.calls[(operation, self.current_account)] += 1
            fault = state.take_fault(operation, self.current_account)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock: a slow AWS, not a stuck sandbox
            return _error_response(self, fault.code, fault.message, fault.status)
        if state.identity_enforced:
            from offline.sandbox.iam_enforce import identity_refusal

            with _LOCK:
                refusal = identity_refusal(self, state, operation, _caller_arn(self))
            if refusal is not None:
                return _error_response(self, *refusal)
        if operation == "SimulatePrincipalPolicy" and getattr(self, "service_name", "") == "iam":
            from offline.sandbox.iam_simulate import simulate_principal_policy

            with _LOCK:
                return simulate_principal_policy(self, state)
    try:
        return original(self)
    except KeyError as exc:
        # moto raises raw KeyErrors for ids it cannot find (notably other accounts'
        # resources); AWS answers a NotFound error. Without this the server answers
        # an HTML 500 that botocore cannot parse.
        service = getattr(self, "service_name", "") or ""
        name = operation or ""
        missing = str(exc).strip("'\"")
        if service == "kms":
            return _error_response(self, "NotFoundException", f"Key '{missing}' does not exist", 400)
        if service == "ec2" and "Image" in name:
            return _error_response(self, "InvalidAMIID.NotFound", f"The image id '[{missing}]' does not exist", 400)
        if service == "ec2" and "Snapshot" in name:
            return _error_response(self, "InvalidSnapshot.NotFound", f"The snapshot '{missing}' does not exist.", 400)
        return _error_response(self, "InternalError", f"An internal error occurred ({missing}).", 500)


def _patched_get_account_id_from(access_key: str) -> str:
    if _STACK and access_key in _KEY_ACCOUNTS:
        return _KEY_ACCOUNTS[access_key][0]
    return _ORIGINALS["get_account_id_from"](access_key)


def _patched_assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
    role = _ORIGINALS["assume_role"](self, *args, **kwargs)
    if _STACK:
        _KEY_ACCOUNTS[role.access_key_id] = (role.account_id, role.arn)
    return role


# --------------------------------------------------------------------------- EC2 patch decorator


def _ec2_patch(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def handler(self: Any) -> Any:
            state = _active()
            if state is None:
                return _ORIGINALS[name](self)
            with _LOCK:
                return func(self, state, _ORIGINALS[name])

        handler.__name__ = name.split(".")[-1]
        return handler

    return decorator
