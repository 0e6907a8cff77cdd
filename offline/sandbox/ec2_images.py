"""EC2 images: DescribeImages, DescribeImageAttribute, CopyImage, CreateImage,
DeregisterImage, GetEbsDefaultKmsKeyId and images' block device mappings.

Cross-account and cross-region copies with their snapshot permissions, encryption,
tags, ClientToken and asynchronous key failures; CreateImage with one snapshot per
instance volume.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from offline.sandbox.consistency import _hidden_from, _note_new
from offline.sandbox.copy_rules import COPY_DESTINATION_KEY_OPERATIONS, COPY_SOURCE_KEY_OPERATIONS, refuse_copy, refuse_duplicate_name
from offline.sandbox.ec2_lifecycle import (
    _default_ebs_key_arn,
    _make_snapshots,
    _register_new_image,
    _tags_from_specs,
    _tick,
)
from offline.sandbox.policy import _kms_allows, _lookup_key
from offline.sandbox.state import (
    _LOCK,
    _ORIGINALS,
    _State,
    _active,
    _ec2_backends,
    _find_image,
    _image_snapshots,
    _known_regions,
    _region_backends,
)
from offline.sandbox.visibility import _can_launch, _can_restore, _foreign_view, _shared_with
from offline.sandbox.wire import _caller_arn, _ec2_patch


def _patched_bdm_property(self: Any) -> list[dict[str, Any]]:
    bdm = self.__dict__.get("_sbx_bdm")
    if bdm is None or _active() is None:
        result = _ORIGINALS["block_device_mappings"].fget(self)
        if _active() is not None:
            result[0]["Ebs"]["Encrypted"] = bool(getattr(self.ebs_snapshot, "encrypted", False))
        return result
    return [
        {
            "DeviceName": device,
            "Ebs": {
                "SnapshotId": snap.id,
                "VolumeSize": snap.volume.size,
                "DeleteOnTermination": True,
                "VolumeType": "gp3",
                "Encrypted": bool(snap.encrypted),
            },
        }
        for device, snap in bdm
    ]


@_ec2_patch("AmisResponse.describe_images")
def _describe_images(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
    from moto.ec2.utils import generic_filter

    self.error_on_dryrun()
    _tick(state)
    caller, region = self.current_account, self.region
    ami_ids = self._get_param("ImageIds", []) or []
    owners = self._get_param("Owners", []) or []
    exec_users = self._get_param("ExecutableUsers", []) or []
    filters = self._filters_from_querystring()
    own = self.ec2_backend
    images: list[Any] = list(own.amis.values())
    seen = {ami.id for ami in images}
    # Owners=self: other accounts' images cannot be in the answer; skip reading them.
    own_only = bool(owners) and all(o in ("self", caller) for o in owners)
    for acct, be in ([] if own_only else _region_backends(_ec2_backends(), region)):
        if acct == caller:
            continue
        for ami in list(be.amis.values()):
            if ami.id not in seen and _can_launch(state, ami, caller):
                images.append(_foreign_view(ami))
                seen.add(ami.id)
    if state.born:
        # Eventual consistency: a new image is not visible for a while.
        images = [ami for ami in images if not _hidden_from(self, state, ami.id)]
    if ami_ids:
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        from offline.sandbox.lags import permission_lagging

        wanted = set(ami_ids)  # a set: a poll of hundreds of copies asks for hundreds of ids
        images = [ami for ami in images if ami.id in wanted and not permission_lagging(self, state, ami.id, caller)]
        found = {ami.id for ami in images}
        missing = [i for i in ami_ids if i not in found and i not in own.deleted_amis]
        if missing:
            raise InvalidAMIIdError(missing)
    if exec_users:
        def executable(ami: Any) -> bool:
            for user in exec_users:
                if user == "all" and ami.is_public:
                    return True
                if user in ("self", caller) and _shared_with(state, ami, caller):
                    return True
                if {"UserId": user} in ami.launch_permissions:
                    return True
            return False

        images = [ami for ami in images if executable(ami)]
    if owners:
        wanted = {caller if o == "self" else o for o in owners}
        images = [ami for ami in images if ami.owner_id in wanted or (ami.owner_alias and ami.owner_alias in wanted)]
    if filters:
        states = filters.get("state")
        if states and not any(c in v for v in states for c in "*?"):
            # Narrowed by exact state first (AWS answers from an index): moto's general
            # filter matches every value of every image with fnmatch, which made the
            # sandbox's answer, not the bot, most of a light poll's time.
            wanted_states = set(states)
            images = [ami for ami in images if getattr(ami, "state", None) in wanted_states]
        images = generic_filter(filters, images)
    return ActionResult({"Images": images})


@_ec2_patch("AmisResponse.describe_image_attribute")
def _describe_image_attribute(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError

    ami_id = self._get_param("ImageId")
    if ami_id in self.ec2_backend.amis:
        return original(self)
    found = _find_image(self.region, ami_id)
    if found and _can_launch(state, found[2], self.current_account):
        # AWS: only the owner may read an AMI's attributes.
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{ami_id}")
    raise InvalidAMIIdError(ami_id)


@_ec2_patch("AmisResponse.copy_image")
def _copy_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError, InvalidParameterDependency
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    caller, region = self.current_account, self.region
    source_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    encrypted = str(self._get_param("Encrypted", False)).lower() == "true"
    kms_key_id = self._get_param("KmsKeyId")
    token = self._get_param("ClientToken")
    tag_specs = self._get_param("TagSpecifications", []) or []
    copy_tags = str(self._get_param("CopyImageTags", False)).lower() == "true"

    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    tags = _tags_from_specs(tag_specs, {"image", "snapshot"})
    self.error_on_dryrun()

    # ClientToken: AWS answers a retry with the same token and parameters with the
    # first call's image, and refuses the token with other parameters.
    fingerprint = json.dumps(
        [source_id, source_region, name, description, encrypted, kms_key_id, tags, copy_tags], sort_keys=True
    )
    if token:
        previous = state.tokens.get((caller, region, token))
        if previous is not None:
            if previous[0] != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous request(s) (ClientToken {token}).",
                )
            return ActionResult({"ImageId": previous[1]})

    if source_region not in _known_regions():
        raise EC2ClientError("InvalidParameterValue", f"Invalid value '{source_region}' for SourceRegion.")
    found = _find_image(source_region, source_id)
    if found is None or not _can_launch(state, found[2], caller):
        raise InvalidAMIIdError(source_id)
    source_owner, _, source = found
    refuse_copy(state, _ec2_backends()[caller][region], caller, source_owner, source, encrypted=encrypted, name=name)
    source_snaps = _image_snapshots(source)
    if source_owner != caller:
        for snap in source_snaps:
            if not _can_restore(snap, caller):
                raise EC2ClientError("InvalidRequest", "You do not have permission to access the storage of this ami")

    # AWS: a copy of an encrypted snapshot is always encrypted; the key is KmsKeyId or
    # the destination account's default EBS key.
    source_encrypted = any(s.encrypted for s in source_snaps)
    dest_encrypted = encrypted or source_encrypted
    key_ref = kms_key_id if kms_key_id else (_default_ebs_key_arn(caller, region) if dest_encrypted else None)
    resolved = _lookup_key(key_ref, caller, region) if key_ref else None
    shown_key = resolved[1].arn if resolved else key_ref

    backend = _ec2_backends()[caller][region]
    image = Ami(backend, random_ami_id(), source_ami=source, name=name, description=description)
    backend.amis[image.id] = image
    task = int(time.time()) % 100000
    _make_snapshots(
        backend,
        image,
        [
            {
                "device": device,
                "size": snap.volume.size,
                "encrypted": dest_encrypted,
                "kms_key_id": shown_key,
                "tags": tags.get("snapshot"),
            }
            for (device, snap) in (source.__dict__.get("_sbx_bdm") or [(source.root_device_name, source.ebs_snapshot)])
        ],
        lambda i: (
            f"Copied for DestinationAmi {image.id} from SourceAmi {source_id} for SourceSnapshot "
            f"{source_snaps[i].id}. Task created on {task:,}."
        ),
    )
    image_tags: dict[str, str] = {}
    if copy_tags and source_owner == caller:
        # AWS copies user-defined tags only within an account.
        image_tags.update({t["key"]: t["value"] for t in source.get_tags()})
    image_tags.update(tags.get("image", {}))
    if image_tags:
        image.add_tags(image_tags)

    principal = _caller_arn(self)
    source_keys = []
    for snap in source_snaps:
        if snap.encrypted:
            source_keys.append((snap.id, snap.kms_key_id or _default_ebs_key_arn(source_owner, source_region)))

    def check() -> tuple[str, str] | None:
        for snap_id, key_arn in source_keys:
            hit = _lookup_key(key_arn, source_owner, source_region)
            if hit is None:
                return "Client.InvalidKMSKey.NotFound", f"The KMS key {key_arn} that encrypts snapshot {snap_id} of {source_id} does not exist."
            key = hit[1]
            if key.key_state != "Enabled":
                return "Client.InvalidKMSKey.InvalidState", f"The KMS key {key.arn} that encrypts snapshot {snap_id} of {source_id} is {key.key_state.lower()}."
            denied = [op for op in COPY_SOURCE_KEY_OPERATIONS if not _kms_allows(state, key, caller, op, principal_arn=principal, via_service_region=source_region)]
            if denied:
                return (
                    "Client.InvalidKMSKey.AccessDenied",
                    f"Account {caller} is not allowed to use the KMS key {key.arn} (kms:{', kms:'.join(denied)}) that encrypts snapshot {snap_id} of {source_id}.",
                )
        if dest_encrypted:
            hit = _lookup_key(key_ref, caller, region)
            if hit is None:
                return "Client.InvalidKMSKey.NotFound", f"The KMS key {key_ref} does not exist in {region} for account {caller}."
            key = hit[1]
            if key.key_state != "Enabled":
                return "Client.InvalidKMSKey.InvalidState", f"The KMS key {key.arn} is {key.key_state.lower()}."
            denied = [op for op in COPY_DESTINATION_KEY_OPERATIONS if not _kms_allows(state, key, caller, op, principal_arn=principal, via_service_region=region)]
            if denied:
                return "Client.InvalidKMSKey.AccessDenied", f"Account {caller} is not allowed to use the KMS key {key.arn} (kms:{', kms:'.join(denied)})."
        return None

    _register_new_image(state, image, check)
    _note_new(state, [image.id, *(snap.id for snap in _image_snapshots(image))], self)
    if token:
        state.tokens[(caller, region, token)] = (fingerprint, image.id)
    return ActionResult({"ImageId": image.id})


@_ec2_patch("AmisResponse.create_image")
def _create_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    specs = self._get_param("TagSpecifications", []) or []
    tags = _tags_from_specs(specs, {"image", "snapshot"})
    refuse_duplicate_name(self.ec2_backend, self.current_account, self._get_param("Name"))
    # moto raises NotImplementedError for snapshot tag specifications: hand it only
    # the image ones and tag the snapshots here.
    self.params["TagSpecifications"] = [s for s in specs if s.get("ResourceType") == "image"]
    result = original(self)
    image_id = result.result["ImageId"]
    backend = self.ec2_backend
    image = backend.amis[image_id]
    instance = backend.get_instance(self._get_param("InstanceId"))
    volumes = []
    for device, bdt in sorted(instance.block_device_mapping.items()):
        volume = backend.volumes.get(getattr(bdt, "volume_id", None))
        if volume is not None:
            volumes.append((device, volume))
    if not volumes:
        volumes = [(image.root_device_name, None)]
    _make_snapshots(
        backend,
        image,
        [
            {
                "device": device,
                "size": volume.size if volume else 8,
                "encrypted": bool(volume and volume.encrypted),
                "kms_key_id": (volume.kms_key_id if volume and volume.encrypted else None),
                "tags": tags.get("snapshot"),
            }
            for device, volume in volumes
        ],
        lambda i: f"Created by CreateImage({instance.id}) for {image_id}",
    )
    _register_new_image(state, image, None)
    _note_new(state, [image.id, *(snap.id for snap in _image_snapshots(image))], self)
    return result


@_ec2_patch("AmisResponse.deregister_image")
def _deregister_image(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    state.pending.pop(self._get_param("ImageId"), None)
    return original(self)


def _get_ebs_default_kms_key_id(self: Any) -> Any:
    """GetEbsDefaultKmsKeyId, which moto lacks: the key set with
    ModifyEbsDefaultKmsKeyId, else the account's ``aws/ebs`` key, as AWS answers."""
    from moto.core.responses import ActionResult

    if _active() is None:
        raise NotImplementedError("The get_ebs_default_kms_key_id action has not been implemented")
    with _LOCK:
        return ActionResult({"KmsKeyId": _default_ebs_key_arn(self.current_account, self.region)})
