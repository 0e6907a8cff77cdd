"""What AWS refuses outright when copying, sharing or launching an AMI.

- CopyImage: a name already used by one of the caller's images in the destination
  region (``InvalidAMIName.Duplicate``); more than 300 copies in flight per
  destination region (``ResourceLimitExceeded``); an instance store-backed (S3) source
  copied encrypted or from another account; a source with billing product codes
  (Marketplace ``ProductCodes`` or a licensed ``UsageOperation``) from another account
  ("Images with EC2 BillingProduct codes cannot be copied to another AWS account");
  a source whose snapshots are in the archive tier.
- RunInstances from an AMI whose snapshots are in the archive tier.
- ModifyImageAttribute adding launch permissions past 1,000 entities.
- The KMS operations EBS performs for the caller, on both keys: CopyImage needs
  ``Decrypt``, ``ReEncryptFrom``, ``DescribeKey`` and ``CreateGrant`` on the source key
  and ``GenerateDataKeyWithoutPlaintext``, ``ReEncryptTo``, ``CreateGrant`` and
  ``DescribeKey`` on the destination key; RunInstances needs ``Decrypt``,
  ``CreateGrant``, ``DescribeKey`` and ``GenerateDataKeyWithoutPlaintext`` on the
  snapshot key ("Requirements for Amazon EBS encryption",
  https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html).

The error codes and messages for instance store, archive and the 1,000 limit are the
sandbox's own wording (AWS documents the rule, not the message).
"""

from __future__ import annotations

from typing import Any, Callable

from offline.sandbox.state import _State, _image_snapshots
from offline.sandbox.wire import _ec2_patch

MAX_COPIES_IN_FLIGHT = 300
MAX_SHARING_ENTITIES = 1000
COPY_SOURCE_KEY_OPERATIONS = ("Decrypt", "ReEncryptFrom", "DescribeKey", "CreateGrant")
COPY_DESTINATION_KEY_OPERATIONS = ("GenerateDataKeyWithoutPlaintext", "ReEncryptTo", "CreateGrant", "DescribeKey")
LAUNCH_KEY_OPERATIONS = ("Decrypt", "CreateGrant", "DescribeKey", "GenerateDataKeyWithoutPlaintext")


def _error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def billing_coded(ami: Any) -> bool:
    """Marketplace product codes, or a licensed platform (UsageOperation other than
    plain ``RunInstances``)."""
    usage = getattr(ami, "usage_operation", None) or "RunInstances"
    return bool(getattr(ami, "product_codes", None)) or usage != "RunInstances"


def refuse_archived(ami: Any) -> None:
    """AWS cannot use a snapshot in the archive tier until it is restored."""
    for snap in _image_snapshots(ami):
        if getattr(snap, "storage_tier", "standard") == "archive":
            raise _error(
                "IncorrectState",
                f"Snapshot {snap.id} is in the archive tier and cannot be used until it is restored.",
            )


def refuse_duplicate_name(backend: Any, caller: str, name: str | None) -> None:
    """AWS: AMI names are unique per account and region (CopyImage, CreateImage)."""
    if not name:
        return
    for ami in list(backend.amis.values()):
        if ami.name == name and ami.owner_id == caller and ami.state != "deregistered":
            raise _error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")


def refuse_copy(state: _State, backend: Any, caller: str, source_owner: str, source: Any, *, encrypted: bool, name: str | None) -> None:
    """Raise what AWS answers CopyImage for these, before the copy starts."""
    refuse_duplicate_name(backend, caller, name)
    in_flight = sum(1 for image_id in state.pending if image_id in backend.amis)
    if in_flight >= MAX_COPIES_IN_FLIGHT:
        raise _error(
            "ResourceLimitExceeded",
            f"You have reached your quota of {MAX_COPIES_IN_FLIGHT} for the number of concurrent AMI copies.",
        )
    cross_account = source_owner != caller
    if getattr(source, "root_device_type", "ebs") == "instance-store" and (encrypted or cross_account):
        raise _error("InvalidRequest", "Instance store-backed AMIs cannot be encrypted or copied to another AWS account.")
    if cross_account and billing_coded(source):
        raise _error("InvalidRequest", "Images with EC2 BillingProduct codes cannot be copied to another AWS account.")
    refuse_archived(source)


def _entity(perm: dict[str, str]) -> str | None:
    return perm.get("UserId") or perm.get("Group") or perm.get("OrganizationArn") or perm.get("OrganizationalUnitArn")


@_ec2_patch("AmisResponse.modify_image_attribute")
def _modify_image_attribute(self: Any, state: _State, original: Callable[..., Any]) -> Any:
    """At most 1,000 sharing entities per AMI (``all`` aside)."""
    ami = self.ec2_backend.amis.get(self._get_param("ImageId"))
    if ami is not None:
        adds = list((self._get_param("LaunchPermission") or {}).get("Add", []) or [])
        if self._get_param("OperationType") == "add":
            adds += [{"UserId": u} for u in self._get_param("UserIds", []) or []]
        present = {_entity(p) for p in ami.launch_permissions if _entity(p) and _entity(p) != "all"}
        new = {_entity(p) for p in adds if _entity(p) and _entity(p) != "all"} - present
        if new and _aws_managed_snapshots(ami, self.region):
            # AWS: "You can't share AMIs that are backed by snapshots that are encrypted
            # with the default AWS managed key" (Share an AMI with specific AWS accounts).
            raise _error("InvalidParameter", "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
        if new and len(present) + len(new) > MAX_SHARING_ENTITIES:
            raise _error(
                "ResourceLimitExceeded",
                f"An AMI can be shared with at most {MAX_SHARING_ENTITIES} accounts, organizations and organizational units.",
            )
    before = {p.get("UserId") for p in ami.launch_permissions} if ami is not None else set()
    result = original(self)
    if ami is not None:
        from offline.sandbox.lags import note_granted

        note_granted(self, state, ami.id, [p["UserId"] for p in ami.launch_permissions if p.get("UserId") and p.get("UserId") not in before])
    return result


def _aws_managed_snapshots(ami: Any, region: str) -> bool:
    """Whether a snapshot of the AMI is encrypted with an AWS-managed key (aws/ebs)."""
    from offline.sandbox.policy import _lookup_key

    for snapshot in _image_snapshots(ami):
        if snapshot is None or not getattr(snapshot, "encrypted", False):
            continue
        key_id = getattr(snapshot, "kms_key_id", None)
        hit = _lookup_key(key_id, snapshot.owner_id, region) if key_id else None
        if key_id is None or (hit is not None and hit[1].key_manager == "AWS"):
            return True
    return False
