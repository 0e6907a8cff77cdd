"""A temporary grant (a copy's) is retired by its retiring principal with the token
CreateGrant returned, at once, even while the grant is not visible yet; without a token
it falls back to RevokeGrant by id. The sandbox authorises RetireGrant by the grant, as
AWS does (KMS API Reference "RetireGrant"; Developer Guide "Retiring and revoking grants")."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from aws.actions import SHARE_GRANT_OPERATIONS, account_root, get_action, grant_name
from tests.aws.test_consistency import DEV, PROD, SRC, UID, make_ctx, module_sessions, slow_sandbox  # noqa: F401 (fixtures)


def temporary_grant(sandbox, sessions):
    key = sandbox.create_key(PROD, SRC)
    params = {"key_arn": key, "grantee_principal": account_root(DEV, SRC), "operations": list(SHARE_GRANT_OPERATIONS),
              "grant_name": grant_name(UID, DEV), "retiring_principal": f"arn:aws:iam::{PROD}:role/amibot"}
    return key, params, get_action("kms.create_grant").execute(make_ctx(sessions), PROD, SRC, params)


def test_the_undo_retires_a_grant_not_visible_yet_with_its_token(slow_sandbox, module_sessions):
    key, params, made = temporary_grant(slow_sandbox, module_sessions)
    assert made["grant_token"]
    ctx = make_ctx(module_sessions)
    ctx.consistency_window_seconds = 1  # without the token the undo would wait for the grant to show
    said = get_action("kms.create_grant").undo(ctx, PROD, SRC, params, made)
    assert said.startswith("retired KMS grant") and "RetireGrant" in said
    slow_sandbox.reveal()
    assert slow_sandbox.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"] == []


def test_without_a_token_the_undo_revokes_by_id_and_the_sandbox_authorises_retire_by_the_grant(sandbox, module_sessions):
    key, params, made = temporary_grant(sandbox, module_sessions)
    with pytest.raises(ClientError) as stranger:  # neither retiring principal, nor a grantee holding RetireGrant, nor the key's account
        module_sessions.client("kms", DEV, SRC).retire_grant(GrantToken=made["grant_token"])
    assert stranger.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as unknown:
        module_sessions.client("kms", PROD, SRC).retire_grant(GrantToken="not-a-grant-token")
    assert unknown.value.response["Error"]["Code"] == "NotFoundException"
    said = get_action("kms.create_grant").undo(make_ctx(module_sessions), PROD, SRC, params, {k: v for k, v in made.items() if k != "grant_token"})
    assert said.startswith("revoked KMS grant")
    assert sandbox.client("kms", PROD, SRC).list_grants(KeyId=key)["Grants"] == []
