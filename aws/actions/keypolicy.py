"""Key-policy statements for organisation and OU shares.

A KMS grant names one principal; it cannot name an Organization. An encrypted AMI
shared with an Organization or OU therefore needs a key-policy statement whose
principal is ``"*"`` narrowed by ``aws:PrincipalOrgID`` (and, for an OU,
``aws:PrincipalOrgPaths``), allowing exactly the operations a launch needs.

``PutKeyPolicy`` replaces the whole policy and can lock people out of the key, so
these actions never touch any statement but their own (found by ``Sid``, which
carries the request's uid), never set ``BypassPolicyLockoutSafetyCheck`` (so KMS
itself refuses a policy that would lock the caller out), and refuse to write when
people changed the policy since the approver saw it. Writes to one key are
serialised (:class:`KeyPolicyLock`) and merged into the policy re-read right before
``PutKeyPolicy``, so concurrent org shares of one key all keep their statements; a
policy over KMS's 32 KiB limit is refused before it is sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ContextManager, Iterator, Protocol

from aws.actions.base import Action, ActionParams, register
from aws.actions.holdings import key_statement_resource, kept_sentence
from aws.errors import AwsFailure

POLICY_NAME = "default"  # KMS keys have exactly one policy, named "default"

# The tag an operator puts on a key to let amibot add org-share statements to its
# policy; the generated IAM policy allows PutKeyPolicy only on keys tagged so.
ORG_SHARE_TAG = "amibot:org-share"

# "The policy size limit is 32 KiB (32768 bytes)" (KMS API Reference, PutKeyPolicy).
KEY_POLICY_MAX_BYTES = 32768

# Exactly the operations a member account needs to launch from the AMI
# (design.md §1.3, the same as the grant to an account), as IAM action names.
ORG_KEY_POLICY_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom")
# Split in two statements: the crypto operations only when EC2 makes the request for
# the member (kms:ViaService), and CreateGrant only for an AWS resource
# (kms:GrantIsForAWSResource), so no member can mint a grant for itself or anyone else.
ORG_CRYPTO_ACTIONS = ("kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom")
ORG_GRANT_ACTIONS = ("kms:CreateGrant",)


class KeyPolicyLock(Protocol):
    """Serialises the read-modify-write of one key's policy across requests.

    ``hold(key_arn)`` is a context manager held from GetKeyPolicy to PutKeyPolicy.
    The default is in-process; a deployment with several processes backs it with the
    store (a lease per key) through :func:`use_key_policy_lock`."""

    def hold(self, key_arn: str) -> ContextManager[None]: ...


class InProcessKeyPolicyLock:
    """One lock per key ARN, within this process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key_arn: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key_arn, threading.Lock())
        with lock:
            yield


_LOCK: KeyPolicyLock = InProcessKeyPolicyLock()


def use_key_policy_lock(lock: KeyPolicyLock) -> None:
    """Replace the key-policy lock (e.g. with one backed by the store)."""
    global _LOCK
    _LOCK = lock


def key_policy_lock() -> KeyPolicyLock:
    """The lock every key-policy write holds."""
    return _LOCK


class KeyPolicyTooLarge(AwsFailure):
    """The policy with amibot's statement would exceed KMS's 32 KiB limit; nothing was written."""

    def __init__(self, key_arn: str, size: int):
        super().__init__(
            "AmibotKeyPolicyTooLarge",
            f"the key policy of {key_arn} would be {size:,} bytes with amibot's statements; KMS allows {KEY_POLICY_MAX_BYTES:,}",
            cause="A KMS key policy may not exceed 32 KiB (32,768 bytes), and PutKeyPolicy would refuse it.",
            fix="Remove statements nobody needs from the key policy (old amibot org shares: `/ami unshare … to org`), or share with accounts by name (grants do not grow the policy).",
        )


class KeyPolicyChanged(AwsFailure):
    """The key policy is not the one the approver saw; nothing was written."""

    def __init__(self, key_arn: str):
        super().__init__(
            "AmibotKeyPolicyChanged",
            f"the key policy of {key_arn} changed after the plan was approved",
            cause="Someone changed the key policy after the approver saw it; amibot writes only the policy that was approved.",
            fix="Ask again: the new plan shows the current policy before and after.",
        )


def statement_sid(request_uid: str, organization_id: str, ou_id: str | None = None) -> str:
    """The Sid of the statement for one organisation or OU: ``amibot-<org or OU id>``,
    one per principal set whatever the number of requests (a key reached KMS's 32 KiB
    after about 25 shares when each request added its own). The requests relying on
    it are its holdings in the store (aws.actions.holdings): an undo or unshare
    removes it only when the last one lets go. Unshare finds amibot's statements by
    the ``amibot-`` prefix and the org/OU suffix (older keys: ``amibot-<uid>-<id>``).
    ``request_uid`` is no longer part of it (kept in the signature for callers)."""
    return f"amibot-{ou_id or organization_id}"


def org_paths_pattern(organization_id: str, ou_id: str) -> str:
    """``o-…/r-*/ou-…/*``: principals in the OU and in every OU below it (the root
    id is not in the config, and OU ids are unique within an organisation)."""
    return f"{organization_id}/r-*/{ou_id}/*"


def grant_statement_sid(request_uid: str, organization_id: str, ou_id: str | None = None) -> str:
    """The Sid of the CreateGrant statement for one organisation or OU:
    ``amibot-grant-<org or OU id>`` (merged as :func:`statement_sid`; it ends like it,
    so unshare finds it the same way)."""
    return f"amibot-grant-{ou_id or organization_id}"


def _org_condition(organization_id: str, ou_id: str | None) -> dict[str, Any]:
    condition: dict[str, Any] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    if ou_id:
        # aws:PrincipalOrgPaths is multi-valued: it needs a ForAnyValue operator.
        condition["ForAnyValue:StringLike"] = {"aws:PrincipalOrgPaths": [org_paths_pattern(organization_id, ou_id)]}
    return condition


def org_statement(sid: str, organization_id: str, ou_id: str | None = None, *, region: str) -> dict[str, Any]:
    """The statement that lets principals of the organisation (or OU) have EC2 use
    the key for them (launching in ``region``): the crypto operations, only through
    EC2 (``kms:ViaService``). Never CreateGrant: see :func:`org_grant_statement`."""
    condition = _org_condition(organization_id, ou_id)
    condition["StringEquals"]["kms:ViaService"] = f"ec2.{region}.amazonaws.com"
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": list(ORG_CRYPTO_ACTIONS),
        "Resource": "*",
        "Condition": condition,
    }


def org_grant_statement(sid: str, organization_id: str, ou_id: str | None = None) -> dict[str, Any]:
    """CreateGrant for principals of the organisation (or OU) only when an AWS
    service creates the grant for a resource (``kms:GrantIsForAWSResource``): EC2
    does when it attaches the volumes of a launch; a member calling CreateGrant
    itself, for any grantee and any operations, is refused."""
    condition = _org_condition(organization_id, ou_id)
    condition["Bool"] = {"kms:GrantIsForAWSResource": "true"}
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": list(ORG_GRANT_ACTIONS),
        "Resource": "*",
        "Condition": condition,
    }


def policy_size(policy: dict[str, Any]) -> int:
    """The size KMS counts: the bytes of the policy text amibot writes."""
    return len(render(policy).encode())


def amibot_sids(policy: dict[str, Any]) -> list[str]:
    """Sids of statements amibot added (prefix ``amibot-``)."""
    return [sid for sid in sids(policy) if sid.startswith("amibot-")]


def without_amibot(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as people wrote it: without amibot's statements."""
    return without_sids(policy, amibot_sids(policy))


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements as a list (a single statement may be a bare object)."""
    found = policy.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def sids(policy: dict[str, Any]) -> list[str]:
    """The Sids of the policy's statements, in order (statements without one skipped)."""
    return [s["Sid"] for s in statements(policy) if isinstance(s, dict) and s.get("Sid")]


def with_statement(policy: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    """The policy with ``statement`` added (or replacing the statement with its Sid);
    every other statement and key unchanged, in order."""
    kept = [s for s in statements(policy) if not (isinstance(s, dict) and s.get("Sid") == statement["Sid"])]
    return {**policy, "Statement": kept + [statement]}


def without_sids(policy: dict[str, Any], removed: list[str]) -> dict[str, Any]:
    """The policy without the statements whose Sid is in ``removed``; the rest unchanged."""
    return {**policy, "Statement": [s for s in statements(policy) if not (isinstance(s, dict) and s.get("Sid") in removed)]}


def same_policy(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Semantically equal (JSON value equality; a bare statement equals a list of one)."""
    return {**a, "Statement": statements(a)} == {**b, "Statement": statements(b)}


def policy_digest(text: str) -> str:
    """A short fingerprint of a policy text, shown when the policy is summarised."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render(policy: dict[str, Any]) -> str:
    """The policy as written by amibot (and shown to the approver)."""
    return json.dumps(policy, indent=2)


def _get(kms: Any, key_arn: str) -> str:
    return kms.get_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME)["Policy"]


def _put(kms: Any, key_arn: str, text: str) -> None:
    # BypassPolicyLockoutSafetyCheck stays False: KMS refuses a policy that would
    # stop the caller from changing the policy again.
    kms.put_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME, Policy=text)


def _restore_text(remaining: dict[str, Any], candidates: list[str]) -> str:
    """The text to write for ``remaining``: a recorded earlier text when it says the
    same (so an unshare restores the policy byte for byte), else a rendering."""
    for text in candidates:
        try:
            if text and same_policy(json.loads(text), remaining):
                return text
        except ValueError:
            continue
    return render(remaining)


@register
class AddKeyPolicyStatement(Action):
    """Add one statement (by Sid) to a key policy, leaving every other statement as is.

    params: ``key_arn``, ``statement`` (with its ``Sid``), ``expected_policy`` (the
    policy text the approver saw; the write is refused when the policy without this
    statement differs from it). Result: ``sid``, ``policy_before`` (the exact text
    read), ``added``."""

    name = "kms.add_key_policy_statement"
    # ListResourceTags: the preflight checks the key is tagged amibot:org-share=true.
    permissions = ("kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ListResourceTags")

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The statement to add to ``key_arn``'s policy, and the policy the approver saw."""

        image_id: str | None = None
        key_arn: str
        statement: dict[str, Any]
        expected_policy: str | None = None
        organization_id: str | None = None
        ou_id: str | None = None

    @classmethod
    def describe(cls, params, *, account, region, key_label: str, allows: str):
        """``key_label``: the key as the plan names it; ``allows``: what the statement lets whom do."""
        return (
            f"PutKeyPolicy on key {key_label}: add statement `{params.statement['Sid']}`: {allows}; every other statement "
            "unchanged (the policy before and after is listed under the plan). Refused if people change the policy before it runs"
        )

    def holdings(self, account_id, region, params):
        """The statement, by its Sid."""
        return [key_statement_resource(params.key_arn, params.statement["Sid"])]

    def run(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        key_arn, statement = params.key_arn, params.statement
        sid = statement["Sid"]
        # Serialised per key: two requests adding statements to one key must not
        # each write the policy they read, or one statement is lost.
        with key_policy_lock().hold(key_arn):
            text = _get(kms, key_arn)
            policy = json.loads(text)
            current = next((s for s in statements(policy) if isinstance(s, dict) and s.get("Sid") == sid), None)
            # The text before this request: recorded by an earlier attempt that crashed
            # after PutKeyPolicy, else what is there now.
            before = ctx.previous.get("policy_before") or (text if current is None else _restore_text(without_sids(policy, [sid]), []))
            _check_expected(params, policy, key_arn)
            # Held before the write: another request's undo or unshare keeps the
            # statement while this request relies on it (aws.actions.holdings).
            # created: this request wrote it (now, or before a crash that checkpointed).
            created = current is None or bool(ctx.previous.get("policy_before"))
            for holding in self.holdings(account_id, region, params):
                ctx.holdings.hold(holding, created=created)
            if current == statement:
                return {"sid": sid, "policy_before": before, "added": False, "created": created}
            ctx.checkpoint({"sid": sid, "policy_before": before})
            # Re-read right before writing and merge into what is there now (another
            # process may have written since: its statements are kept).
            latest = json.loads(_get(kms, key_arn))
            _check_expected(params, latest, key_arn)
            updated = with_statement(latest, statement)
            size = policy_size(updated)
            if size > KEY_POLICY_MAX_BYTES:
                raise KeyPolicyTooLarge(key_arn, size)
            _put(kms, key_arn, render(updated))
        return {"sid": sid, "policy_before": before, "added": True, "created": True}

    def revert(self, ctx, account_id, region, params, result):
        sid = result.get("sid") or params.statement["Sid"]
        release = ctx.holdings.release(key_statement_resource(params.key_arn, sid), created=bool(result.get("created", True)))
        if not release.remove:
            return kept_sentence(f"key-policy statement `{sid}`", [(params.key_arn, release)]) if release.kept_for else None
        kms = ctx.client("kms", account_id, region)
        with key_policy_lock().hold(params.key_arn):
            policy = json.loads(_get(kms, params.key_arn))
            if sid not in sids(policy):
                return None
            _put(kms, params.key_arn, _restore_text(without_sids(policy, [sid]), [result.get("policy_before", "")]))
        return f"removed key-policy statement `{sid}` from {params.key_arn} (the rest of the policy is as before)"


def _check_expected(params: AddKeyPolicyStatement.Params, policy: dict[str, Any], key_arn: str) -> None:
    """Refuse when people changed the policy since the approver saw it. amibot's own
    statements (other requests') are not such a change: they are merged, not refused."""
    expected = params.expected_policy
    if expected is not None and not same_policy(without_amibot(policy), without_amibot(json.loads(expected))):
        raise KeyPolicyChanged(key_arn)


@register
class RemoveKeyPolicyStatements(Action):
    """Remove amibot's statements (by Sid) from a key policy; everything else stays.

    params: ``key_arn``, ``sids``, optional ``restore_texts`` (policy texts recorded
    before the statements were added: when what remains says the same, that exact
    text is written back). Result: ``removed``, ``policy_before``."""

    name = "kms.remove_key_policy_statements"
    permissions = ("kms:GetKeyPolicy", "kms:PutKeyPolicy")
    undoable = False  # an unshare that fails half way must not give access back

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The statements to remove from ``key_arn``'s policy, and texts to restore."""

        key_arn: str
        sids: list[str]
        restore_texts: list[str] = field(default_factory=list)

    @classmethod
    def describe(cls, params, *, account, region, key_label: str, origins: list[str]):
        """``origins``: per statement, who added it."""
        return (
            f"PutKeyPolicy on key {key_label}: remove statement{'s' if len(params.sids) > 1 else ''} " + "; ".join(origins)
            + "; every other statement unchanged (the policy before and after is listed under the plan)"
        )

    def run(self, ctx, account_id, region, params):
        kms = ctx.client("kms", account_id, region)
        with key_policy_lock().hold(params.key_arn):
            text = _get(kms, params.key_arn)
            policy = json.loads(text)
            kept, kept_sids = [], []
            present = []
            for sid in params.sids:
                release = ctx.holdings.end(key_statement_resource(params.key_arn, sid))
                if not release.remove:
                    kept.append((f"`{sid}`", release))
                    kept_sids.append(sid)
                elif sid in sids(policy):
                    present.append(sid)
            if present:
                _put(kms, params.key_arn, _restore_text(without_sids(policy, present), list(params.restore_texts or [])))
        result = {"removed": present, "policy_before": text}
        if kept:
            result["kept_sids"] = kept_sids
            result["summary"] = kept_sentence(f"key-policy statement on {params.key_arn}", kept)
        return result
