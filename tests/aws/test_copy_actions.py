"""The copy actions against the sandbox: ``ec2.copy_image`` (ClientToken, tags,
encryption with the target's key, undo), ``plan.remove_temporary``, ``verify.copy``,
the preflight reads, and the words of a copy that fails later.

Everything is checked from the account that would look: the copy from the target,
what was shared from the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws.actions import Kept, SHARE_GRANT_OPERATIONS, StepContext, StepWaiting, account_root, get_action
from aws.actions.copy import (
    client_token,
    copies_in_flight,
    copy_tags,
    default_copy_name,
    resolve_destination_key,
)
from aws.errors import AwsFailure, translate
from aws.sessions import AccountAccess, AwsSessions
from offline import rehearsal

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, DST = rehearsal.REGION, rehearsal.OTHER_REGION
UID = "0123456789abcdef"


@dataclass
class World:
    cmk_arn: str
    encrypted_image: str
    dev_cmk_arn: str
    dev_cmk_other_region_arn: str


@pytest.fixture
def world(sandbox):
    """The part of the rehearsal world a copy touches (no network or instance: fast)."""
    cmk = sandbox.create_key(PROD, SRC, alias="alias/ami-shared")
    return World(
        cmk_arn=cmk,
        encrypted_image=sandbox.create_image(PROD, SRC, name="payments-api-2026.11", kms_key_arn=cmk, tags={"app": "payments", "owner": "platform"}),
        dev_cmk_arn=sandbox.create_key(DEV, SRC, alias="alias/ami-dev"),
        dev_cmk_other_region_arn=sandbox.create_key(DEV, DST, alias="alias/ami-dev"),
    )


@pytest.fixture(scope="module")
def module_sessions(sandbox_session):
    # One AwsSessions for the module: a boto3 session loads the EC2 model once (the
    # slow part); the sandbox keeps assumed-role credentials mapped across resets.
    return AwsSessions({a: AccountAccess(a, f"arn:aws:iam::{a}:role/amibot") for a in (PROD, DEV)})


@pytest.fixture
def sessions(sandbox, module_sessions):
    return module_sessions


def make_ctx(sessions: AwsSessions, previous: dict[str, Any] | None = None, uid: str = UID, steps: dict | None = None) -> StepContext:
    """A StepContext as the worker builds it; checkpoints are kept in ``ctx.saved``."""
    ctx = StepContext(sessions=sessions, request_uid=uid, session_tag=f"R-7-{uid}", request_id="R-7", requester="U0BOB",
                      approvers=["U0ALICE", "U0DEVOPS"], sleep=lambda s: None, steps=steps or {})
    ctx.previous = dict(previous or {})
    ctx.saved = []  # type: ignore[attr-defined]

    def checkpoint(result: dict[str, Any]) -> None:
        ctx.saved.append(dict(result))  # type: ignore[attr-defined]
        ctx.previous = {**ctx.previous, **result}

    ctx.checkpoint = checkpoint
    return ctx


def share_for_copy(sandbox, image_id: str, key_arn: str | None, *, snapshot: bool = True, grant: bool = True) -> None:
    """What the temporary steps leave in place: launch and snapshot permission, a grant."""
    ec2 = sandbox.client("ec2", PROD, SRC)
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DEV}]})
    if snapshot:
        for snap in snapshots_of(sandbox, PROD, SRC, image_id):
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", CreateVolumePermission={"Add": [{"UserId": DEV}]})
    if key_arn and grant:
        sandbox.client("kms", PROD, SRC).create_grant(KeyId=key_arn, GranteePrincipal=account_root(DEV, "us-east-1"), Operations=list(SHARE_GRANT_OPERATIONS), Name=f"amibot-{UID}-{DEV}")


def snapshots_of(sandbox, account: str, region: str, image_id: str) -> list[str]:
    image = sandbox.client("ec2", account, region).describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def copy_params(world, image_id: str | None = None, key_arn: str | None = None, name: str | None = None) -> dict[str, Any]:
    return {
        "source_image_id": image_id or world.encrypted_image,
        "source_region": SRC,
        "source_account_id": PROD,
        "source_name": "payments-api-2026.11",
        "source_tags": {"app": "payments", "owner": "platform"},
        "kms_key_arn": key_arn or world.dev_cmk_other_region_arn,
        "name": name,
    }


def dev_images(sandbox, region: str = DST) -> list[dict[str, Any]]:
    return sandbox.client("ec2", DEV, region).describe_images(Owners=["self"])["Images"]


def copy_action():
    return get_action("ec2.copy_image")


# -- CopyImage ---------------------------------------------------------------------------


def test_running_the_copy_step_twice_makes_one_image(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    first = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    # A retry that lost every checkpoint (the worst case): the same ClientToken gets
    # the same image back from AWS.
    again = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    assert again["image_id"] == first["image_id"]
    assert [i["ImageId"] for i in dev_images(sandbox)] == [first["image_id"]]
    assert first["call"]["ClientToken"] == client_token(UID) == f"amibot-copy-{UID}"


def test_a_restart_continues_the_checkpointed_copy_without_calling_copyimage(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    ctx = make_ctx(sessions)
    first = copy_action().execute(ctx, DEV, DST, copy_params(world))
    # The call was checkpointed before it was sent, then the image id after it.
    assert ctx.saved[0] == {"call": first["call"], "sent_at": ctx.saved[0]["sent_at"]}
    assert ctx.saved[-1]["image_id"] == first["image_id"]
    calls = sandbox.calls("CopyImage")
    resumed = copy_action().execute(make_ctx(sessions, previous=ctx.saved[-1]), DEV, DST, copy_params(world))
    assert resumed["image_id"] == first["image_id"]
    assert sandbox.calls("CopyImage") == calls


def test_other_parameters_with_the_same_token_are_refused_in_plain_words(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    with pytest.raises(ClientError) as raised:
        copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world, name="another-name"))
    failure = translate(raised.value)
    assert failure.code == "IdempotentParameterMismatch"
    assert "ClientToken" in failure.plain() and "Fix:" in failure.plain()
    assert len(dev_images(sandbox)) == 1


def test_the_copy_is_owned_by_the_target_and_encrypted_with_its_key(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    dev = sandbox.client("ec2", DEV, DST)
    image = dev.describe_images(ImageIds=[result["image_id"]])["Images"][0]
    assert image["OwnerId"] == DEV and image["State"] == "available"
    snaps = dev.describe_snapshots(SnapshotIds=snapshots_of(sandbox, DEV, DST, result["image_id"]))["Snapshots"]
    assert snaps and all(s["Encrypted"] and s["KmsKeyId"] == world.dev_cmk_other_region_arn and s["OwnerId"] == DEV for s in snaps)
    assert result["call"]["Encrypted"] is True and result["call"]["SourceRegion"] == SRC


def test_source_tags_and_provenance_are_on_the_image_and_its_snapshots(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    dev = sandbox.client("ec2", DEV, DST)
    expected = {
        "app": "payments", "owner": "platform",
        "amibot:source-ami": world.encrypted_image, "amibot:source-account": PROD, "amibot:source-region": SRC,
        "amibot:request": "R-7", "amibot:requester": "U0BOB", "amibot:approvers": "U0ALICE,U0DEVOPS",
        # the proof an undo that finds the copy by name needs (its ClientToken)
        "amibot:client-token": result["call"]["ClientToken"],
        # deletable by the role until the copy is delivered (aws.actions.disposable)
        "amibot:disposable": "true",
    }
    image = dev.describe_images(ImageIds=[result["image_id"]])["Images"][0]
    assert {t["Key"]: t["Value"] for t in image["Tags"]} == expected
    for snap in dev.describe_snapshots(SnapshotIds=snapshots_of(sandbox, DEV, DST, result["image_id"]))["Snapshots"]:
        assert {t["Key"]: t["Value"] for t in snap["Tags"]} == expected
    assert image["Name"] == "payments-api-2026.11-copy-R-7"


def test_copy_tags_respect_aws_limits():
    source = {"aws:cloudformation:stack-name": "x", "amibot:source-ami": "old", **{f"k{i}": str(i) for i in range(60)}}
    tags = copy_tags(source, {"amibot:source-ami": "ami-new", "amibot:request": "R-1"})
    keys = [t["Key"] for t in tags]
    assert len(tags) == 50 and "aws:cloudformation:stack-name" not in keys
    assert {t["Key"]: t["Value"] for t in tags}["amibot:source-ami"] == "ami-new"


def test_default_name_follows_ami_name_rules():
    assert default_copy_name("web server {v2}", "R-12") == "web server -v2--copy-R-12"
    long = default_copy_name("x" * 128, "R-12345")
    assert len(long) == 128 and long.endswith("-copy-R-12345")


def test_undo_deregisters_an_unfinished_copy_and_deletes_its_snapshots(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    sandbox.hold_pending(True)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    snaps = snapshots_of(sandbox, DEV, DST, result["image_id"])
    said = copy_action().undo(make_ctx(sessions), DEV, DST, copy_params(world), result)
    assert "deregistered the unfinished copy" in said and "pending" in said
    assert dev_images(sandbox) == []
    dev = sandbox.client("ec2", DEV, DST)
    assert not [s for s in dev.describe_snapshots(OwnerIds=["self"])["Snapshots"] if s["SnapshotId"] in snaps]


def test_undo_deregisters_a_failed_copy(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn, grant=False)  # no key access: the copy fails
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    assert dev_images(sandbox)[0]["State"] == "failed"
    said = copy_action().undo(make_ctx(sessions), DEV, DST, copy_params(world), result)
    assert "(failed)" in said and dev_images(sandbox) == []


def test_undo_keeps_an_available_copy_and_says_so(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    with pytest.raises(Kept) as kept:  # reported under "Remains", never deleted
        copy_action().undo(make_ctx(sessions), DEV, DST, copy_params(world), result)
    assert "finished copy" in str(kept.value) and result["image_id"] in str(kept.value)
    assert [i["ImageId"] for i in dev_images(sandbox)] == [result["image_id"]]


def test_undo_finds_a_copy_whose_id_was_never_recorded(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    sandbox.hold_pending(True)
    ctx = make_ctx(sessions)
    copy_action().execute(ctx, DEV, DST, copy_params(world))
    said = copy_action().undo(make_ctx(sessions), DEV, DST, copy_params(world), ctx.saved[0])
    assert "deregistered" in said and dev_images(sandbox) == []


# -- plan.remove_temporary ------------------------------------------------------------------


def test_remove_temporary_undoes_exactly_the_done_temporary_steps(sandbox, sessions, world):
    image, cmk = world.encrypted_image, world.cmk_arn
    prod_ec2 = sandbox.client("ec2", PROD, SRC)
    snaps = snapshots_of(sandbox, PROD, SRC, image)
    # Launch permission for a third account existed before: it is not ours to remove.
    prod_ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": "333333333333"}]})
    ctx = make_ctx(sessions)
    specs = {
        1: ("ec2.add_launch_permission", {"image_id": image, "account_ids": [DEV, "333333333333"]}),
        2: ("ec2.add_snapshot_permission", {"snapshot_ids": snaps, "account_ids": [DEV]}),
        3: ("kms.create_grant", {"key_arn": cmk, "grantee_principal": account_root(DEV, "us-east-1"), "operations": list(SHARE_GRANT_OPERATIONS), "grant_name": f"amibot-{UID}-{DEV}"}),
    }
    steps = {}
    for seq, (action, params) in specs.items():
        result = get_action(action).execute(ctx, PROD, SRC, params)
        steps[seq] = {"action": action, "account_id": PROD, "region": SRC, "params": params, "result": result, "state": "done"}
    steps[4] = {"action": "ec2.add_launch_permission", "account_id": PROD, "region": SRC, "params": {"image_id": image, "account_ids": ["444444444444"]}, "result": {}, "state": "pending"}

    remover = make_ctx(sessions, steps=steps)
    out = get_action("plan.remove_temporary").execute(remover, PROD, SRC, {"steps": [1, 2, 3, 4]})

    assert len(out["removed"]) == 3
    assert prod_ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == [{"UserId": "333333333333"}]
    for snap in snaps:
        assert prod_ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    assert sandbox.client("kms", PROD, SRC).list_grants(KeyId=cmk)["Grants"] == []
    # Running it again (a restart, with what it checkpointed) is harmless and asks AWS nothing again.
    again = get_action("plan.remove_temporary").execute(make_ctx(sessions, previous=remover.saved[-1], steps=steps), PROD, SRC, {"steps": [1, 2, 3]})
    assert again["removed"] == out["removed"]


# -- verify.copy ------------------------------------------------------------------------------


def test_verify_copy_passes_for_a_copy_with_the_targets_key(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    ctx = make_ctx(sessions)
    ctx.results = {5: result}
    out = get_action("verify.copy").execute(ctx, DEV, DST, {"image_from_step": 5, "kms_key_arn": world.dev_cmk_other_region_arn, "source_image_id": world.encrypted_image})
    assert out["owner"] == DEV and result["image_id"] in out["outcome"]


def test_verify_copy_fails_in_plain_words_when_the_key_is_not_the_targets(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    # Copied with dev's default EBS key instead of the planned CMK.
    ebs = sandbox.aws_managed_ebs_key(DEV, DST)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world, key_arn=ebs))
    ctx = make_ctx(sessions)
    ctx.results = {5: result}
    with pytest.raises(AwsFailure) as raised:
        get_action("verify.copy").execute(ctx, DEV, DST, {"image_from_step": 5, "kms_key_arn": world.dev_cmk_other_region_arn})
    assert "not encrypted with" in raised.value.plain() and "Fix:" in raised.value.plain()


# -- preflight reads --------------------------------------------------------------------------


def test_destination_key_resolves_alias_default_and_refuses_another_region(sandbox, sessions, world):
    key = resolve_destination_key(sessions, DEV, DST, "alias/ami-dev", "t")
    assert key.arn == world.dev_cmk_other_region_arn and key.account_id == DEV and key.region == DST and key.manager == "CUSTOMER"
    default = resolve_destination_key(sessions, DEV, DST, None, "t")
    assert default.manager == "AWS" and default.arn == sandbox.aws_managed_ebs_key(DEV, DST)
    us_key_id = world.dev_cmk_arn.rsplit("/", 1)[1]  # dev's key in us-east-1, named by id
    with pytest.raises(ClientError) as raised:
        resolve_destination_key(sessions, DEV, DST, us_key_id, "t")
    assert "keys are regional" in translate(raised.value).plain()


def test_copies_in_flight_counts_the_targets_pending_images(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    assert copies_in_flight(sessions, DEV, DST, "t") == 0
    sandbox.hold_pending(True)
    copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    copy_action().execute(make_ctx(sessions, uid="fedcba9876543210"), DEV, DST, copy_params(world, name="second-copy"))
    sandbox.reveal()  # time passes: new copies become visible (eventual consistency)
    assert copies_in_flight(sessions, DEV, DST, "t") == 2
    assert copies_in_flight(sessions, DEV, SRC, "t") == 0


# -- a copy that fails later reads well --------------------------------------------------------


def wait_step(ctx: StepContext, params: dict[str, Any]) -> dict[str, Any]:
    return get_action("ec2.wait_image_available").execute(ctx, DEV, DST, params)


def test_a_copy_without_key_access_fails_later_naming_the_source_key(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn, grant=False)
    sandbox.hold_pending(True)
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world))
    ctx = make_ctx(sessions)
    ctx.results = {5: result}
    params = {"image_from_step": 5, "poll_seconds": 5, "source_key_arns": [world.cmk_arn]}
    with pytest.raises(StepWaiting):
        wait_step(ctx, params)
    assert sandbox.complete(result["image_id"]) == "failed"
    with pytest.raises(AwsFailure) as raised:
        wait_step(ctx, params)
    words = raised.value.plain()
    assert world.cmk_arn in words and "grant" in words and "Fix:" in words


def test_a_copy_with_a_key_of_another_region_fails_later_in_plain_words(sandbox, sessions, world):
    share_for_copy(sandbox, world.encrypted_image, world.cmk_arn)
    # KmsKeyId is validated asynchronously: the call succeeds, the image fails.
    result = copy_action().execute(make_ctx(sessions), DEV, DST, copy_params(world, key_arn=world.dev_cmk_arn))
    ctx = make_ctx(sessions)
    ctx.results = {5: result}
    with pytest.raises(AwsFailure) as raised:
        wait_step(ctx, {"image_from_step": 5, "source_key_arns": [world.cmk_arn]})
    words = raised.value.plain()
    assert "keys are regional" in words and "destination key" in words and "Fix:" in words


def test_undo_by_name_leaves_an_image_that_is_not_this_requests(sandbox, sessions, world):
    # The copy was never sent (a crash before CopyImage), but a person's image with the
    # chosen name exists in the target: found by name, it must not be deregistered.
    ctx = make_ctx(sessions)
    call = copy_action().call(ctx, copy_params(world))
    theirs = sandbox.create_image(DEV, DST, name=call["Name"], tags={"owner": "someone-else"})
    with pytest.raises(Kept) as kept:
        copy_action().undo(make_ctx(sessions), DEV, DST, copy_params(world), {"call": call})
    assert theirs in str(kept.value) and "amibot:client-token" in str(kept.value)
    assert [i["ImageId"] for i in dev_images(sandbox)] == [theirs]
