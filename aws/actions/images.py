"""Waiting for an image to become available, with batched polling.

AWS sends no progress events (EventBridge "EC2 AMI State Change" covers only the end
states), so progress needs polling. ``ImageStatusCache.refresh`` makes one
``DescribeImages`` and one ``DescribeSnapshots`` per account and region for every
image being waited on, however many requests are in flight; ``WaitImageAvailable``
reads the cache (or asks AWS itself when the cache has nothing fresh).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from aws.actions.base import Action, ActionParams, Kept, StepContext, StepWaiting, image_of, register
from aws.errors import MISSING, RETRY, AwsFailure, explain, read_outcome, translate
from aws.sessions import AwsSessions


@dataclass(frozen=True)
class ImageStatus:
    """What AWS says of an image now."""

    state: str  # pending | available | failed | ... | missing | unreadable (AWS did not answer)
    progress: int | None  # percent, from the snapshots' Progress (the slowest one)
    reason: str | None  # StateReason message when failed; AWS's words when unreadable
    snapshot_ids: tuple[str, ...] = ()
    at: float = 0.0


POLL_PERMISSIONS = ("ec2:DescribeImages", "ec2:DescribeSnapshots")


def find_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    """The image, or None if it does not exist (or is deregistered: a deregistered
    image can linger in DescribeImages for a while, and is nobody's to reuse)."""
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as error:
        if read_outcome(error) == MISSING:
            return None
        raise
    return images[0] if images and images[0].get("State") != "deregistered" else None


def look_up_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    """For undo after a recent create: the image; ``{}`` when AWS answers that it
    is gone (deregistered, or an empty answer); None when AWS does not know the id
    (``InvalidAMIID.NotFound``: right after a create, "not visible yet")."""
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as error:
        if read_outcome(error) == MISSING:
            return None
        raise
    if not images or images[0].get("State") == "deregistered":
        return {}
    return images[0]


# The image states that end a wait, for DescribeImages' ``state`` filter (EC2 API
# Reference, DescribeImages, Filter.N ``state``; the values are the ImageState enum:
# pending | available | invalid | deregistered | transient | failed | error | disabled).
# ``pending`` and ``transient`` are left out: a copy still going is not in the answer.
NOT_PENDING = ("available", "failed", "invalid", "deregistered", "error", "disabled")


def poll_images(client: Any, image_ids: list[str], *, finished_only: dict[str, int | None] | None = None,
                marked: tuple[str, str] | None = None) -> dict[str, ImageStatus]:
    """One DescribeImages and one DescribeSnapshots (by id) for many images.

    With ``finished_only`` (image id → the progress last read), DescribeImages asks
    only for images no longer pending (the ``state`` filter) and DescribeSnapshots is
    not called: the answer is small however many copies are in flight. With ``marked``
    too (a tag every waited-on image got at creation: ``amibot:disposable = true``),
    that look names no ids at all — the account's own images with the tag, no longer
    pending — so the question is as small as the answer, whatever the number of
    copies (and an id not visible yet cannot fail the batch). An image absent
    from that answer is reported ``pending`` at its last progress — which is only true
    because the filter left it out: a deregistered image that AWS already answers
    empty for looks the same, so the caller must also look without the filter now
    and then (``ImageStatusCache``: once a minute per account-region).

    What a failed read means is decided by ``aws.errors.read_outcome``: only
    ``InvalidAMIID.*`` makes an image ``missing``; a throttle, a 5xx or no answer makes
    it ``unreadable`` (ask again: nothing is known), any other error is raised."""
    statuses: dict[str, ImageStatus] = {}
    found: dict[str, dict[str, Any]] = {}
    unreadable: dict[str, str] = {}
    filters = [{"Name": "state", "Values": list(NOT_PENDING)}] if finished_only is not None else None

    def describe(ids: list[str]) -> None:
        answer = client.describe_images(ImageIds=ids, Filters=filters) if filters else client.describe_images(ImageIds=ids)
        for image in answer["Images"]:
            found[image["ImageId"]] = image

    if image_ids and filters and marked is not None:
        wanted = set(image_ids)
        tagged = [*filters, {"Name": f"tag:{marked[0]}", "Values": [marked[1]]}]
        try:
            for page in client.get_paginator("describe_images").paginate(Owners=["self"], Filters=tagged):
                found.update({i["ImageId"]: i for i in page["Images"] if i["ImageId"] in wanted})
        except (ClientError, BotoCoreError) as error:
            if read_outcome(error) != RETRY:
                raise
            unreadable.update({i: _words(error) for i in image_ids})
    elif image_ids:
        try:
            describe(list(image_ids))
        except (ClientError, BotoCoreError) as error:
            outcome = read_outcome(error)
            if outcome == RETRY:
                unreadable.update({i: _words(error) for i in image_ids})
            elif outcome != MISSING:
                raise
            else:
                # One unknown id fails the whole batch: fall back to asking one by one.
                for image_id in image_ids:
                    try:
                        describe([image_id])
                    except (ClientError, BotoCoreError) as one:
                        single = read_outcome(one)
                        if single == RETRY:
                            unreadable[image_id] = _words(one)
                        elif single != MISSING:
                            raise
    snapshot_ids = [m["Ebs"]["SnapshotId"] for i in found.values() for m in i.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    progress: dict[str, int] = {}
    if snapshot_ids and finished_only is None:
        try:
            for snap in client.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
                progress[snap["SnapshotId"]] = int(str(snap.get("Progress") or "0").rstrip("%") or 0)
        except ClientError:
            pass  # progress is a nicety; the image state is what matters
    now = time.time()
    for image_id in image_ids:
        image = found.get(image_id)
        if image_id in unreadable:
            statuses[image_id] = ImageStatus("unreadable", None, unreadable[image_id], (), now)
            continue
        if image is None and finished_only is not None:
            statuses[image_id] = ImageStatus("pending", finished_only.get(image_id), None, (), now)
            continue
        if image is None:
            statuses[image_id] = ImageStatus("missing", None, None, (), now)
            continue
        snaps = tuple(m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId"))
        percents = [progress[s] for s in snaps if s in progress]
        statuses[image_id] = ImageStatus(
            state=image["State"],
            progress=100 if image["State"] == "available" else (min(percents) if percents else None),
            reason=(image.get("StateReason") or {}).get("Message"),
            snapshot_ids=snaps,
            at=now,
        )
    return statuses


def _words(error: Exception) -> str:
    failure = translate(error)
    return f"{failure.code}: {failure.aws_message}"


class ImageStatusCache:
    """Latest status of every image being waited on, refreshed in batches.

    A full look (DescribeImages without a filter, and DescribeSnapshots for progress)
    is made at most once every ``full_every`` seconds per account-region — progress is
    shown at most once a minute anyway, and the full look is what notices an image
    that is gone. In between, a refresh that is told each image's last progress asks
    only for the images that are no longer pending (``poll_images(finished_only=…)``)."""

    def __init__(self, max_age: float = 30.0, full_every: float = 60.0, marked: tuple[str, str] | None = None):
        self.max_age = max_age
        self.marked = marked  # the light look by tag (see poll_images); None: by ids
        self.full_every = full_every
        self._lock = threading.Lock()
        self._statuses: dict[tuple[str, str, str], ImageStatus] = {}
        self._full_at: dict[tuple[str, str], float] = {}  # account-region -> when its last full look was (caller's clock)

    def refresh(self, sessions: AwsSessions, waiting: Iterable[tuple[str, str, str]], tag: str = "poller", *,
                recorded: dict[tuple[str, str, str], int | None] | None = None, now: float | None = None) -> int:
        """Poll every (account, region, image) in ``waiting`` with one call pair per
        account and region. ``recorded`` (each image's progress as its wait recorded it)
        and ``now`` (the caller's clock) allow the light look between full ones; an
        image not in ``recorded`` makes the look full. Returns how many DescribeImages
        calls were made."""
        groups: dict[tuple[str, str], list[str]] = {}
        for account, region, image_id in waiting:
            groups.setdefault((account, region), []).append(image_id)
        for (account, region), image_ids in groups.items():
            client = sessions.client("ec2", account, region, tag)
            ids = sorted(set(image_ids))
            light = None
            if recorded is not None and now is not None and now - self._full_at.get((account, region), float("-inf")) < self.full_every \
                    and all((account, region, i) in recorded for i in ids):
                light = {i: recorded[(account, region, i)] for i in ids}
            statuses = poll_images(client, ids, finished_only=light, marked=self.marked if light is not None else None)
            if light is None and now is not None and not any(s.state == "unreadable" for s in statuses.values()):
                self._full_at[(account, region)] = now
            for image_id, status in statuses.items():
                with self._lock:
                    self._statuses[(account, region, image_id)] = status
        return len(groups)

    def get(self, account: str, region: str, image_id: str) -> ImageStatus | None:
        with self._lock:
            status = self._statuses.get((account, region, image_id))
        if status and time.time() - status.at <= self.max_age:
            return status
        return None

    def forget(self, account: str, region: str, image_id: str) -> None:
        with self._lock:
            self._statuses.pop((account, region, image_id), None)


# The tag that proves an image is a given request's: the request's own ClientToken
# (or label), set at creation with TagSpecifications. An image found only by its name
# is never deleted without it: a person may have made one with that name.
OWNER_PROOF_TAG = "amibot:client-token"


def image_tags(image: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def proves_ownership(image: dict[str, Any], token: str) -> bool:
    """Whether the image carries this request's ownership proof tag."""
    return image_tags(image).get(OWNER_PROOF_TAG) == token


def discard_unfinished_image(ec2: Any, image: dict[str, Any], label: str, where: str) -> str:
    """Deregister an image that never became available and delete its snapshots
    (AWS leaves a deregistered image's snapshots behind, and they are ours).
    A finished image is never deleted: someone may need it, so ``Kept`` is raised."""
    image_id = image["ImageId"]
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    if image.get("State") == "available":
        raise Kept(
            f"the finished {label} {image_id} `{image.get('Name', '')}` in {where} with snapshots {', '.join(snapshot_ids) or 'none'} "
            "(kept: it is available and may be needed; deregister it and delete the snapshots when it is not wanted)"
        )
    ec2.deregister_image(ImageId=image_id)
    deleted, left = [], []
    for snapshot_id in snapshot_ids:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
            deleted.append(snapshot_id)
        except ClientError as error:
            if read_outcome(error) != MISSING:  # InvalidSnapshot.NotFound: already deleted
                left.append(f"{snapshot_id} ({error.response['Error']['Code']})")
    said = f"deregistered the unfinished {label} {image_id} ({image.get('State')}) in {where}"
    if deleted:
        said += f" and deleted its snapshots {', '.join(deleted)}"
    if left:
        said += f"; could not delete snapshots {', '.join(left)}: delete them by hand"
    return said


@register
class WaitImageAvailable(Action):
    """Wait until an image made by an earlier step is ``available``.

    params: ``image_from_step`` (the seq of the step whose result holds ``image_id``)
    or ``image_id``. Raises StepWaiting while pending; fails with AWS's reason when the
    image fails (a bad KMS key shows up here, asynchronously)."""

    name = "ec2.wait_image_available"
    permissions = POLL_PERMISSIONS
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The image (``image_id``, or made by step ``image_from_step``), how often to
        look, and the source keys a failure may name."""

        image_id: str | None = None
        image_from_step: int | None = None
        poll_seconds: float = 30
        source_key_arns: list[str] | None = None

    @classmethod
    def describe(cls, params, *, account, region, copy: bool = False):
        """``copy``: the image is a copy (its snapshots' progress is shown too)."""
        if copy:
            return f"Wait until the copy is `available` (DescribeImages and DescribeSnapshots progress every {params.poll_seconds} s)"
        return f"Wait until that image is `available` (DescribeImages every {params.poll_seconds} s)"

    @staticmethod
    def unchanged(recorded: dict[str, Any], status: ImageStatus) -> bool:
        """Whether ``status`` (a fresh batched poll) says nothing the step's recorded
        result does not: still pending at the same progress, and seen last time. Running
        the step again would record the same thing, so the scheduler leaves it be. A
        finished, failed, deregistered, missing or unreadable image, a new percentage,
        or a step that recorded nothing yet is a change."""
        return (
            status.state in ("pending", "transient")
            and "image_id" in recorded
            and "progress" in recorded
            and not recorded.get("misses")
            and recorded.get("progress") == status.progress
        )

    def created_at(self, ctx: StepContext, params: "WaitImageAvailable.Params") -> float | None:
        """When the step that made the image got AWS's answer (None: not known)."""
        if params.image_from_step:
            return (ctx.results.get(int(params.image_from_step)) or {}).get("created_at")
        return None

    def run(self, ctx, account_id, region, params):
        from aws.actions.visibility import gone_after_misses, until_visible, within_window

        image_id = image_of(params, ctx.results)
        status = ctx.image_status.get(account_id, region, image_id) if ctx.image_status else None
        if status is None:
            status = poll_images(ctx.client("ec2", account_id, region), [image_id])[image_id]
        created_at = self.created_at(ctx, params)
        if status.state == "missing" and within_window(ctx, created_at):
            # Just created: AWS may not show it yet (eventual consistency), it is not gone.
            ec2 = ctx.client("ec2", account_id, region)

            def look() -> ImageStatus | None:
                fresh = poll_images(ec2, [image_id])[image_id]
                return None if fresh.state == "missing" else fresh

            status = until_visible(
                ctx, created_at, look, f"image {image_id}", result={"image_id": image_id, "progress": None},
                poll_seconds=float(params.poll_seconds),
            ) or status
            if ctx.image_status:
                ctx.image_status.forget(account_id, region, image_id)
        if status.state == "unreadable":
            # No answer (throttled, a 5xx): nothing is known, the copy may be running.
            raise StepWaiting(f"{image_id}: AWS did not answer ({status.reason}); asking again", retry_after=float(params.poll_seconds),
                              result={"image_id": image_id, "progress": ctx.previous.get("progress")})
        if status.state == "missing":
            misses = gone_after_misses(ctx, created_at)
            if misses is not None:
                raise StepWaiting(f"{image_id} not found ({misses} time(s) in a row); asking again before concluding it is gone",
                                  retry_after=float(params.poll_seconds), result={"image_id": image_id, "progress": None, "misses": misses})
        if status.state == "available":
            return {"image_id": image_id, "state": "available", "snapshot_ids": list(status.snapshot_ids)}
        if status.state in ("pending", "transient"):
            percent = f"{status.progress}%" if status.progress is not None else "starting"
            raise StepWaiting(f"{image_id} {percent}", retry_after=float(params.poll_seconds), result={"image_id": image_id, "progress": status.progress, "misses": 0})
        if status.state == "missing":
            raise AwsFailure("InvalidAMIID.NotFound", f"{image_id} no longer exists in {account_id} {region}", cause="The image disappeared while amibot was waiting for it (deregistered?).", fix="Check the account's images; start a new request if needed.")
        failure = explain("ImageFailed", status.reason or f"image is {status.state}")
        reason = (status.reason or "").lower()
        # Optional params name the keys involved, so the words can say which one failed.
        source_keys = [k for k in params.source_key_arns or [] if k.lower() in reason]
        if source_keys:
            failure.cause = (
                f"The account could not use the source AMI's KMS key {source_keys[0]} to read its snapshots "
                "(no grant or key-policy statement for it, a grant not in effect yet, or the key is disabled)."
            )
            failure.fix = "Check the source key is enabled and the account has a grant on it (amibot adds one for a copy); then ask again."
        elif "kms" in reason or "key" in reason:
            failure.cause = "AWS could not use the KMS key for the copy (keys are regional, must be enabled and usable by the account)."
            failure.fix = "Check the destination key exists in that region, is enabled, and the target account may use it; then ask again."
        elif failure.cause is None:
            failure.cause = f"AWS gave up on {image_id}: it is `{status.state}`."
            failure.fix = "Ask again; if it fails again, AWS's reason below is what to look into."
        raise failure
