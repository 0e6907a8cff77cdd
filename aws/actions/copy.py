"""Copying an AMI into an account and region.

``CopyImage`` is called *in the target account and destination region* (AWS copies
into the caller's account, in the region of the endpoint), always with
``Encrypted=True`` and a key the target owns, so the copy never depends on the
source's key. Around it: the read-only lookups the preflight needs (the destination
key, the copies in flight), the removal of what was shared only for the copy, and
the check from the target's side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError

from aws.actions.base import Action, ActionParams, Kept, StepContext, account_root, get_action, register
from aws.actions.disposable import DISPOSABLE, DISPOSABLE_TAG
from aws.actions.images import OWNER_PROOF_TAG, discard_unfinished_image, look_up_image, proves_ownership
from aws.actions.visibility import until_visible
from aws.sessions import AwsSessions

# AWS: at most 300 AMI copies in flight per destination region (and account).
MAX_COPIES_IN_FLIGHT = 300
# AWS: at most 50 user tags per resource; keys starting with "aws:" are reserved.
MAX_TAGS = 50
# AWS: an AMI name has 3 to 128 characters of these.
_AMI_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]")
MAX_NAME = 128
MAX_DESCRIPTION = 255

PROVENANCE_TAG_KEYS = (
    "amibot:source-ami",
    "amibot:source-account",
    "amibot:source-region",
    "amibot:request",
    "amibot:requester",
    "amibot:approvers",
    OWNER_PROOF_TAG,
    DISPOSABLE_TAG,  # until the copy is delivered (aws.actions.disposable)
)

# The read-only calls of the copy preflight (besides the image inspection), made
# through the target account's role. Declared on CopyImage below so the generated
# member-account policy contains them.
COPY_PREFLIGHT_PERMISSIONS = ("ec2:GetEbsDefaultKmsKeyId", "ec2:DescribeImages", "kms:DescribeKey", "kms:ListAliases", "kms:CreateGrant")


# --------------------------------------------------------------------------- preflight reads


@dataclass
class DestinationKey:
    """The key a copy will be encrypted with, as the target account sees it."""

    arn: str
    account_id: str
    region: str
    manager: str  # AWS | CUSTOMER
    state: str
    usage: str
    spec: str
    aliases: list[str] = field(default_factory=list)
    source: str = ""  # how it was chosen, in words: "named in the request", ...

    def label(self) -> str:
        """``alias/x (arn)`` or the ARN."""
        return f"{self.aliases[0]} ({self.arn})" if self.aliases else self.arn


def client_token(request_uid: str) -> str:
    """The CopyImage ClientToken: from the request's random uid (never its display id,
    which restarts when a database is replaced), at most 64 ASCII characters. The
    same token after a retry or a restart returns the same copy instead of a second."""
    return f"amibot-copy-{request_uid}"[:64]


def unit_client_token(request_uid: str, account_id: str, region: str) -> str:
    """The CopyImage ClientToken of one target of a distribution (at most 64 characters)."""
    return f"amibot-copy-{request_uid}-{account_id}-{region}"[:64]


def default_copy_name(source_name: str, request_id: str) -> str:
    """``<source name>-copy-<request id>`` within AMI name rules (3-128 characters of
    letters, digits, spaces and ( ) [ ] . / ' @ _ -)."""
    suffix = f"-copy-{request_id}"
    base = _AMI_NAME_BAD_CHARS.sub("-", source_name or "ami") or "ami"
    return (base[: MAX_NAME - len(suffix)] + suffix)[:MAX_NAME]


def ebs_default_key_id(sessions: AwsSessions, account_id: str, region: str, tag: str) -> str:
    """The account's default EBS key in the region (GetEbsDefaultKmsKeyId): an
    account-level fact (``aws.account_facts`` caches it for a minute)."""
    return sessions.client("ec2", account_id, region, tag).get_ebs_default_kms_key_id()["KmsKeyId"]


def resolve_destination_key(sessions: AwsSessions, account_id: str, region: str, key_ref: str | None, tag: str,
                            default_key_id: Callable[[], str] | None = None) -> DestinationKey:
    """Resolve the copy's key to an ARN through the target's own role in the
    destination region: ``key_ref`` (alias, id or ARN), else the account's default
    EBS key (``default_key_id``, else GetEbsDefaultKmsKeyId). KMS keys are regional,
    so a key of another region answers NotFoundException here. AWS errors are raised
    as they come."""
    kms = sessions.client("kms", account_id, region, tag)
    if key_ref is None:
        key_ref = default_key_id() if default_key_id is not None else ebs_default_key_id(sessions, account_id, region, tag)
    meta = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    try:
        aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=meta["KeyId"]).get("Aliases", [])]
    except ClientError:
        aliases = [key_ref] if key_ref.startswith("alias/") else []
    arn = meta["Arn"]
    return DestinationKey(
        arn=arn,
        account_id=meta.get("AWSAccountId") or arn.split(":")[4],
        region=arn.split(":")[3],
        manager=meta.get("KeyManager", "CUSTOMER"),
        state=meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled"),
        usage=meta.get("KeyUsage", "ENCRYPT_DECRYPT"),
        spec=meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT",
        aliases=aliases,
    )


def check_key_usable(sessions: AwsSessions, account_id: str, region: str, key_arn: str, tag: str) -> None:
    """``CreateGrant`` with ``DryRun`` from the target on its own CMK: EBS creates a
    grant on the key for each copied snapshot, so the role must be allowed to (by IAM
    and the key policy). Raises the AWS error when it is not; DryRunOperationException
    means it would have worked."""
    kms = sessions.client("kms", account_id, region, tag)
    try:
        kms.create_grant(KeyId=key_arn, GranteePrincipal=account_root(account_id, region), Operations=["Decrypt"], DryRun=True)
    except ClientError as error:
        if error.response["Error"]["Code"] != "DryRunOperationException":
            raise


def copies_in_flight(sessions: AwsSessions, account_id: str, region: str, tag: str) -> int:
    """How many images the account has ``pending`` in the region: copies (and new
    images) in flight, counted against AWS's 300 concurrent copies per region."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    count = 0
    kwargs: dict[str, Any] = {"Owners": ["self"], "Filters": [{"Name": "state", "Values": ["pending"]}]}
    while True:
        page = ec2.describe_images(**kwargs)
        count += len(page.get("Images", []))
        if not page.get("NextToken"):
            return count
        kwargs["NextToken"] = page["NextToken"]


def image_named(sessions: AwsSessions, account_id: str, region: str, name: str, tag: str) -> str | None:
    """The id of the account's image called ``name`` in the region, if any (AMI names
    are unique per account and region: CopyImage would fail on a duplicate)."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0]["ImageId"] if images else None


# --------------------------------------------------------------------------- tags


def copy_tags(source_tags: dict[str, str], provenance: dict[str, str]) -> list[dict[str, str]]:
    """The copy's tags: the source's own (AWS does not carry tags across accounts)
    plus provenance. Provenance wins over a source tag of the same key; ``aws:`` keys
    are reserved by AWS and dropped; at most 50 (the provenance tags always kept)."""
    tags = dict(provenance)
    for key, value in source_tags.items():
        if len(tags) >= MAX_TAGS:
            break
        if key.lower().startswith("aws:") or key in tags or key == DISPOSABLE_TAG:
            continue
        tags[key] = value
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def provenance_tags(ctx: StepContext, params: "CopyImage.Params") -> dict[str, str]:
    """Where the copy came from and who asked and approved (tag values ≤ 256)."""
    return {
        "amibot:source-ami": params.source_image_id,
        "amibot:source-account": params.source_account_id,
        "amibot:source-region": params.source_region,
        "amibot:request": ctx.request_id or ctx.request_uid,
        "amibot:requester": ctx.requester,
        "amibot:approvers": ",".join(ctx.approvers)[:256],
        # Proof that the copy is this request's, for an undo that finds it by name.
        OWNER_PROOF_TAG: client_token(ctx.request_uid),
        # What the role may delete, until the last step delivers the copy.
        **DISPOSABLE,
    }


# --------------------------------------------------------------------------- actions


@register
class CopyImage(Action):
    """Start the copy, in the target account and destination region.

    params: ``source_image_id``, ``source_region``, ``source_account_id``,
    ``source_name``, ``source_tags``, ``kms_key_arn`` (resolved in the preflight),
    ``name`` (None: ``<source name>-copy-<request id>``).

    The call (name, tags, token) is decided once and checkpointed before CopyImage is
    sent, then the new image id is checkpointed: a retry or a restart sends the same
    call with the same ClientToken, and AWS answers with the same image instead of
    starting a second copy."""

    name = "ec2.copy_image"
    permissions = (
        "ec2:CopyImage",
        "ec2:CreateTags",  # AWS: TagSpecifications on CopyImage need CreateTags
        "ec2:DescribeImages",
        "ec2:DeregisterImage",  # undo of an unfinished copy
        "ec2:DeleteSnapshot",
        # EBS uses the keys on the caller's behalf: the source key (cross-account,
        # through the grant) and the destination key need these in the role's policy.
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKeyWithoutPlaintext",
        *COPY_PREFLIGHT_PERMISSIONS,
    )

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The source AMI (and what the preflight saw of it), the key and name of the copy."""

        source_image_id: str
        source_region: str
        source_account_id: str
        source_name: str = ""
        source_tags: dict[str, str] = field(default_factory=dict)
        kms_key_arn: str
        name: str | None = None
        region_tag: str | None = None
        client_token: str | None = None  # one per target in a distribution; else the request's

    @classmethod
    def describe(cls, params, *, account, region, request_uid: str, key_aliases: list[str], shown_name: str, source_tag_keys: list[str]):
        """``key_aliases``: the destination key's aliases; ``shown_name``: the copy's
        name as shown; ``source_tag_keys``: the source's tag keys as shown (escaped by the caller)."""
        token = params.client_token or client_token(request_uid)
        return (
            f"CopyImage as `{account.alias}` in {region}: SourceImageId={params.source_image_id}, SourceRegion={params.source_region}, "
            f"Encrypted=true, KmsKeyId={params.kms_key_arn}" + (f" ({', '.join(key_aliases)})" if key_aliases else "")
            + f", Name={shown_name}, ClientToken=`{token}`, TagSpecifications (image and snapshot): "
            + (", ".join(source_tag_keys) + " from the source + " if source_tag_keys else "")
            + ", ".join(f"`{k}`" for k in PROVENANCE_TAG_KEYS) + f", `region={region}`"
        )

    def call(self, ctx: StepContext, params: "CopyImage.Params | dict[str, Any]") -> dict[str, Any]:
        """The exact CopyImage parameters for this request."""
        params = self.typed(params)
        name = params.name or default_copy_name(params.source_name, ctx.request_id or ctx.request_uid[:8])
        provenance = provenance_tags(ctx, params)
        if params.region_tag:
            # The owner, region, app, version convention: the copy says where it lives.
            provenance["region"] = params.region_tag
        tags = copy_tags(params.source_tags or {}, provenance)
        description = (
            f"Copy of {params.source_image_id} ({params.source_account_id} {params.source_region}) "
            f"made by amibot {ctx.request_id}"
        )[:MAX_DESCRIPTION]
        return {
            "SourceImageId": params.source_image_id,
            "SourceRegion": params.source_region,
            "Name": name,
            "Description": description,
            # AWS: an encrypted source is never copied unencrypted; amibot encrypts
            # every copy, with the target's key, so the copy does not depend on the source key.
            "Encrypted": True,
            "KmsKeyId": params.kms_key_arn,
            # One token per target in a distribution (params.client_token): each
            # target's copy is idempotent on its own.
            "ClientToken": params.client_token or client_token(ctx.request_uid),
            # AWS does not carry tags across accounts (CopyImageTags works only
            # within one): set them atomically on the image and its snapshots.
            "TagSpecifications": [
                {"ResourceType": "image", "Tags": tags},
                {"ResourceType": "snapshot", "Tags": tags},
            ],
        }

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        call = ctx.previous.get("call")
        if not call:
            call = self.call(ctx, params)
            # sent_at: an undo that finds no recorded image id looks for the copy by
            # name, and keeps looking while a copy sent then may not be visible yet.
            ctx.checkpoint({"call": call, "sent_at": ctx.clock()})
        image_id = ctx.previous.get("image_id")
        # A copy started moments ago may not be visible yet (eventual consistency):
        # it is there, so wait for it rather than send CopyImage again.
        if not image_id or not until_visible(ctx, ctx.previous.get("created_at"), lambda: look_up_image(ec2, image_id), f"copy {image_id}"):
            # Same ClientToken and parameters as any earlier attempt: one copy.
            created_at = ctx.clock()
            try:
                image_id = ec2.copy_image(**call)["ImageId"]
            except ClientError:
                # AWS answered with an error: no copy was started, nothing to look for.
                ctx.checkpoint({"call": call, "sent_at": None})
                raise
            ctx.checkpoint({"call": call, "image_id": image_id, "created_at": created_at})
        return {
            "call": call,
            "image_id": image_id,
            # When CopyImage answered: for a while after, "not found" means "not visible yet".
            "created_at": ctx.previous.get("created_at") or ctx.clock(),
            "name": call["Name"],
            "kms_key_arn": call["KmsKeyId"],
            "summary": f"copy `{image_id}` (`{call['Name']}`) started in {account_id} {region}, encrypted with {call['KmsKeyId']}",
        }

    def revert(self, ctx, account_id, region, params, result):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = result.get("image_id")
        name = (result.get("call") or {}).get("Name")
        if not image_id and name:
            # CopyImage may have been sent without its answer being recorded (a
            # crash): find the copy by its name, unique per account and region.
            def by_name() -> str | None:
                found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
                mine = [i for i in found if proves_ownership(i, client_token(ctx.request_uid))]
                if found and not mine:
                    raise Kept(
                        f"an image named `{name}` in {account_id} {region} ({found[0]['ImageId']}) was left alone: "
                        f"it does not carry this request's {OWNER_PROOF_TAG} tag, so nothing proves it is this copy"
                    )
                return mine[0]["ImageId"] if mine else None

            image_id = until_visible(ctx, result.get("sent_at"), by_name, f"copy `{name}`", wait_in_place=ctx.consistency_window_seconds)
        if not image_id:
            return None
        # A copy started moments ago may not be visible yet: it is still there (and
        # running) until AWS shows it, so keep asking through the consistency window.
        image = until_visible(
            ctx, result.get("created_at"), lambda: look_up_image(ec2, image_id), f"copy {image_id}",
            wait_in_place=ctx.consistency_window_seconds,
        )
        if not image:
            return None
        # AWS: deregistering a pending copy stops it; a finished copy is kept.
        return discard_unfinished_image(ec2, image, "copy", f"{account_id} {region}")


@register
class RemoveTemporary(Action):
    """Remove what earlier steps of this request added only for its duration (the
    launch permission, snapshot permission and KMS grant a cross-account copy needs),
    by calling those steps' own ``undo`` with their recorded results: exactly what was
    added, nothing a person had before.

    params: ``steps``, the seqs of those steps. Safe to run again (each undo is)."""

    name = "plan.remove_temporary"
    permissions = ("ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute", "kms:RevokeGrant")
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The seqs of the steps whose additions to remove."""

        steps: list[int]

    @classmethod
    def describe(cls, params, *, account, region, grants: bool, kept_by: Any = None):
        """``grants``: KMS grants are among the additions; ``kept_by``: the one target
        of a copy (its copy is its own), or None for a distribution's targets."""
        if kept_by is not None:
            return (
                f"Remove what steps {', '.join(map(str, params.steps))} added for the copy: ModifyImageAttribute (remove launch "
                f"permission), ModifySnapshotAttribute (remove createVolumePermission)"
                + (", RevokeGrant" if grants else "")
                + f" — only what this request added; `{kept_by.alias}` keeps its own copy"
            )
        return (
            f"Remove what steps {params.steps[0]}-{params.steps[-1]} added for the copies (launch permission, createVolumePermission"
            + (", grants" if grants else "") + ") once every target is finished, failed or not — only what this request added"
        )

    def run(self, ctx, account_id, region, params):
        removed: list[str] = list(ctx.previous.get("removed") or [])
        # Checkpointed per step: a restart does not ask again about a grant it revoked
        # (a NotFound inside the window would be "not visible yet", waited out).
        undone: list[int] = list(ctx.previous.get("undone_steps") or [])
        for seq in params.steps:
            step = ctx.steps.get(int(seq))
            if not step or step.get("state") != "done" or int(seq) in undone:
                continue
            said = get_action(step["action"]).undo(ctx, step["account_id"], step["region"], step["params"], step.get("result") or {})
            if said:
                removed.append(said)
            undone.append(int(seq))
            ctx.checkpoint({"removed": removed, "undone_steps": undone})
        return {"removed": removed, "undone_steps": undone, "summary": "; ".join(removed) if removed else "nothing temporary was left in place"}
