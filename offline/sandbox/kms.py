"""KMS patches: cross-account key use, CreateGrant, AWS-managed keys.

Every guarded operation is authorised by key policy or grant (:func:`_kms_guard`), checks
the key state and ``DryRun``, and is then replayed as the key's owner. CreateGrant
validates operations, may not widen a grant it was given through, and is idempotent by
``Name``. AWS-managed keys (``alias/aws/*``) cannot be re-policied, disabled or deleted.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from offline.sandbox.policy import (
    GRANT_OPERATIONS,
    _KMS_ARN,
    _aws_managed_policy,
    _caller_context,
    _effective_grants,
    _key_state_problem,
    _kms_allows,
    _lookup_key,
    _policy_decision,
)
from offline.sandbox.state import _LOCK, _ORIGINALS, _State, _active
from offline.sandbox.errors import _kms_error
from offline.sandbox.wire import _access_denied, _as_account, _caller_arn


def _shared_private_key(key_spec: str) -> Any:
    """moto makes a fresh asymmetric key pair for every KMS key (for Sign/Verify,
    which nothing here calls): 2048-bit RSA, about 40 ms each, most of what seeding
    a world costs. The sandbox makes one per key spec and every key shares it."""
    with _LOCK:
        found = _PRIVATE_KEYS.get(key_spec)
        if found is None:
            found = _PRIVATE_KEYS[key_spec] = _ORIGINALS["generate_private_key"](key_spec)
        return found


def _shared_key_pair() -> Any:
    """The same for EC2 key pairs (CreateKeyPair): one RSA pair for every key pair."""
    with _LOCK:
        found = _PRIVATE_KEYS.get("ec2-key-pair")
        if found is None:
            found = _PRIVATE_KEYS["ec2-key-pair"] = _ORIGINALS["random_rsa_key_pair"]()
        return dict(found)


_PRIVATE_KEYS: dict[str, Any] = {}


def _patched_create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
    alias = _ORIGINALS["create_alias"](self, target_key_id, alias_name)
    if alias_name.startswith("alias/aws/") and _active() is not None:
        # AWS-managed keys (aws/ebs, aws/s3, ...) are made by AWS, report KeyManager
        # AWS and carry a fixed policy that only lets the account use them through
        # the service. They cannot be shared with other accounts.
        key = self.keys[self.get_key_id(target_key_id)]
        service = alias_name.split("/", 2)[2]
        key.key_manager = "AWS"
        key.policy = _aws_managed_policy(self.account_id, self.region_name, service)
        if service == "ebs":
            key.description = "Default key that protects my EBS volumes when no other key is defined"
        else:
            key.description = f"Default key that protects my {service} data when no other key is defined"
    return alias


def _key_arn_tolerant(name: str) -> Callable[..., Any]:
    """AWS accepts a key ARN wherever a key id goes; these moto backend methods index
    ``self.keys`` with the raw argument and raise ``KeyError`` for an ARN."""

    def method(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        if _active() is not None and isinstance(key_id, str):
            key_id = self.get_key_id(key_id)
        return _ORIGINALS[name](self, key_id, *args, **kwargs)

    method.__name__ = name.split(".")[-1]
    return method


# --------------------------------------------------------------------------- patches: KMS


def _kms_key_for(resp: Any, key_id: str | None) -> tuple[str, Any, bool] | None:
    """(owner, key, foreign) for a KMS request's key, or None to let moto answer
    (missing key id, or a key of the caller's own account that moto will reject)."""
    if not key_id:
        return None
    caller, region = resp.current_account, resp.region
    m = _KMS_ARN.match(key_id)
    if m and m.group("account") != caller:
        hit = _lookup_key(key_id, caller, region)
        if hit is None:
            raise _kms_error("NotFoundException", f"Key '{key_id}' does not exist")
        return hit[0], hit[1], True
    try:
        hit = _lookup_key(key_id, caller, region)
    except Exception:
        hit = None
    if hit is None:
        return None
    return hit[0], hit[1], False


def _kms_guard(
    resp: Any,
    state: _State,
    action: str,
    key_param: str = "KeyId",
    *,
    check_state: bool = True,
    grants_count: bool = True,
    dry_run: bool = True,
    extra: Callable[[str, Any, bool], Any] | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[str | None, Any]:
    """Authorise a KMS call; returns (owner account to replay as, key) or (None, None)."""
    target = _kms_key_for(resp, resp._get_param(key_param))
    if target is None:
        return None, None
    owner, key, foreign = target
    caller = resp.current_account
    # Every key obeys its key policy, the account's own keys included: a key
    # without the usual statement for the account's root refuses its own account.
    if not _kms_allows(
        state, key, caller, action, principal_arn=_caller_arn(resp), grants_count=grants_count, extra_context=context
    ):
        raise _access_denied(resp, action, key)
    if check_state:
        problem = _key_state_problem(key)
        if problem:
            raise _kms_error(*problem)
    if extra is not None:
        shortcut = extra(owner, key, foreign)
        if shortcut is not None:
            return owner, shortcut
    if dry_run and resp._get_param("DryRun"):
        raise _kms_error(
            "DryRunOperationException", "The request would have succeeded, but the DryRun parameter was set.", 412
        )
    return owner, key


def _kms_patch(name: str, action: str, key_param: str = "KeyId", **guard: Any) -> Callable[..., Any]:
    def handler(self: Any) -> Any:
        original = _ORIGINALS[name]
        state = _active()
        if state is None:
            return original(self)
        owner, _ = _kms_guard(self, state, action, key_param, **guard)
        if owner is not None and owner != self.current_account:
            with _as_account(self, owner):
                return original(self)
        return original(self)

    handler.__name__ = name.split(".")[-1]
    return handler


def _create_grant(self: Any) -> Any:
    original = _ORIGINALS["KmsResponse.create_grant"]
    state = _active()
    if state is None:
        return original(self)
    operations = self._get_param("Operations") or []
    invalid = [op for op in operations if op not in GRANT_OPERATIONS]
    if invalid or not operations:
        raise _kms_error(
            "ValidationException",
            f"1 validation error detected: Value '{operations}' at 'operations' failed to satisfy constraint: "
            f"Member must satisfy constraint: [Member must satisfy enum value set: {sorted(GRANT_OPERATIONS)}]",
        )
    grantee = self._get_param("GranteePrincipal")
    name = self._get_param("Name")
    constraints = self._get_param("Constraints")
    retiring = self._get_param("RetiringPrincipal")
    if retiring is not None and not str(retiring).startswith("arn:"):
        # AWS (CreateGrant, RetiringPrincipal): "use the Amazon Resource Name (ARN) of an
        # AWS principal" (accounts, IAM users, roles, federated and assumed-role users).
        raise _kms_error("ValidationException", f"Invalid RetiringPrincipal: {retiring}: specify the ARN of an AWS principal")

    grant_context = {"kms:grantoperations": list(operations), "kms:granteeprincipal": grantee}

    def extra(owner: str, key: Any, foreign: bool) -> Any:
        caller = self.current_account
        if foreign:
            ctx = _caller_context(state, caller, _caller_arn(self), None)
            ctx.update(grant_context)
            if _policy_decision(key, caller, "CreateGrant", ctx) != "allow":
                # The right to create grants came from a grant: AWS lets a grantee
                # pass on at most the operations its own grants hold.
                held = set()
                for grant in _effective_grants(state, key, caller, _caller_arn(self)):
                    if "CreateGrant" in (grant.operations or []):
                        held.update(grant.operations or [])
                if not set(operations) <= held:
                    raise _access_denied(self, "CreateGrant", key)
        if name:
            # AWS: CreateGrant with a Name is idempotent; an identical request
            # returns the existing grant instead of a second one.
            for grant in key.grants.values():
                if (
                    grant.name == name
                    and grant.grantee_principal == grantee
                    and sorted(grant.operations or []) == sorted(operations)
                    and (grant.constraints or None) == (constraints or None)
                    and grant.retiring_principal == retiring
                ):
                    if self._get_param("DryRun"):
                        return None
                    return json.dumps({"GrantId": grant.id, "GrantToken": grant.token})
        return None

    with _LOCK:
        owner, result = _kms_guard(self, state, "CreateGrant", extra=extra, context=grant_context)
        if isinstance(result, str):
            return result
        if owner is not None and owner != self.current_account:
            with _as_account(self, owner):
                body = original(self)
        else:
            body = original(self)
        try:
            state.grant_created[json.loads(body)["GrantId"]] = state.clock()
        except (TypeError, ValueError, KeyError):
            pass
        return body


def _aws_managed_refusal(name: str, action: str) -> Callable[..., Any]:
    """AWS-managed keys cannot be managed by their account: no policy changes,
    no disabling, no deletion."""

    def handler(self: Any) -> Any:
        original = _ORIGINALS[name]
        state = _active()
        if state is None:
            return original(self)
        target = _kms_key_for(self, self._get_param("KeyId"))
        if target is not None:
            owner, key, foreign = target
            if key.key_manager == "AWS" and not foreign:
                raise _access_denied(self, action, key)
        return original(self)

    handler.__name__ = name.split(".")[-1]
    return handler


# "The policy size limit is 32 KiB (32768 bytes)" (KMS API Reference, PutKeyPolicy).
KEY_POLICY_MAX_BYTES = 32768


def _put_key_policy(self: Any) -> Any:
    """PutKeyPolicy: refused on AWS-managed keys, and over KMS's 32 KiB size limit
    (moto stores any size)."""
    original = _ORIGINALS["KmsResponse.put_key_policy"]
    state = _active()
    if state is None:
        return original(self)
    target = _kms_key_for(self, self._get_param("KeyId"))
    if target is not None:
        owner, key, foreign = target
        if key.key_manager == "AWS" and not foreign:
            raise _access_denied(self, "PutKeyPolicy", key)
    size = len((self._get_param("Policy") or "").encode())
    if size > KEY_POLICY_MAX_BYTES:
        raise _kms_error("LimitExceededException", f"Policy document is {size} bytes; the limit is {KEY_POLICY_MAX_BYTES} bytes.")
    return original(self)


def _same_principal(caller_arn: str, named: str | None) -> bool:
    from offline.sandbox.identity import identity_arn, principal_account

    caller = identity_arn(caller_arn) or ""
    if not named:
        return False
    if caller == named:
        return True
    # A role named with a path is the same role as its session's role/<name>.
    return (principal_account(caller) == principal_account(named) and ":role/" in caller and ":role/" in named
            and caller.rsplit("/", 1)[-1] == named.rsplit("/", 1)[-1])


def _retire_grant(self: Any) -> Any:
    """RetireGrant as AWS authorises it: by the grant, not by IAM — the grant's
    retiring principal, its grantee when the grant holds RetireGrant, or a principal
    of the account that owns the key; a token or id that names no grant is
    NotFoundException (moto retires nothing and answers success). AWS: KMS API
    Reference "RetireGrant"; Developer Guide "Retiring and revoking grants"."""
    original = _ORIGINALS["KmsResponse.retire_grant"]
    state = _active()
    if state is None:
        return original(self)
    from offline.sandbox.state import _kms_backends

    token, grant_id = self._get_param("GrantToken"), self._get_param("GrantId")
    caller_arn, caller = _caller_arn(self), self.current_account
    with _LOCK:
        found = None
        for account, _region, backend in list(_kms_backends().iter_backends()):
            for key in list(backend.keys.values()):
                for grant in list(key.grants.values()):
                    if (token and grant.token == token) or (not token and grant_id and grant.id == grant_id):
                        found = (account, key, grant)
        if found is None:
            raise _kms_error("NotFoundException", "Grant not found" if token else f"Grant id {grant_id} not found")
        owner, key, grant = found
        allowed = (
            _same_principal(caller_arn, grant.retiring_principal)
            or (_same_principal(caller_arn, grant.grantee_principal) and "RetireGrant" in (grant.operations or []))
            or caller == owner
        )
        if not allowed:
            raise _access_denied(self, "RetireGrant", key)
        key.grants.pop(grant.id, None)
    return json.dumps({})
