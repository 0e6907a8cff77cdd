"""Installing the sandbox into moto: every patch, once per process (idempotent).

Each patched method keeps moto's original in ``_ORIGINALS`` and hands the call to it
when no sandbox is started or the sandbox rule does not apply.
"""

from __future__ import annotations

from typing import Any, Callable

from offline.sandbox.consistency import (
    _create_grant as _consistent_create_grant,
    _describe_instances,
    _list_grants,
    _revoke_grant,
    _terminate_instances,
)
from offline.sandbox.copy_rules import _modify_image_attribute
from offline.sandbox.ec2_images import (
    _copy_image,
    _create_image,
    _deregister_image,
    _describe_image_attribute,
    _describe_images,
    _get_ebs_default_kms_key_id,
    _patched_bdm_property,
)
from offline.sandbox.ec2_instances import _describe_instance_credit_specifications, _run_instances
from offline.sandbox.ec2_snapshots import _describe_snapshots, _modify_snapshot_attribute, _patched_progress_property
from offline.sandbox.kms import (
    _aws_managed_refusal,
    _create_grant,
    _retire_grant,
    _key_arn_tolerant,
    _kms_patch,
    _patched_create_alias,
    _put_key_policy,
    _shared_key_pair,
    _shared_private_key,
)
from offline.sandbox.lags import _describe_instance_status
from offline.sandbox.state import _LOCK, _ORIGINALS
from offline.sandbox.wire import _patched_assume_role, _patched_call_action, _patched_get_account_id_from


_INSTALLED = False


def _install() -> None:
    """Install every patch once per process (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        import moto.iam.models as iam_models
        import moto.ec2.models.key_pairs as key_pair_models
        import moto.kms.models as kms_models
        from moto.core.responses import BaseResponse
        from moto.ec2.models.amis import Ami
        from moto.ec2.models.elastic_block_store import Snapshot
        from moto.ec2.responses.amis import AmisResponse
        from moto.ec2.responses.elastic_block_store import ElasticBlockStore
        from moto.ec2.responses.instances import InstanceResponse
        from moto.kms.models import KmsBackend
        from moto.kms.responses import KmsResponse
        from moto.sts.models import STSBackend

        classes = {
            "AmisResponse": AmisResponse,
            "ElasticBlockStore": ElasticBlockStore,
            "InstanceResponse": InstanceResponse,
            "KmsResponse": KmsResponse,
        }

        _ORIGINALS["call_action"] = BaseResponse.call_action
        BaseResponse.call_action = _patched_call_action
        _ORIGINALS["get_account_id_from"] = iam_models.get_account_id_from
        iam_models.get_account_id_from = _patched_get_account_id_from
        _ORIGINALS["assume_role"] = STSBackend.assume_role
        STSBackend.assume_role = _patched_assume_role
        _ORIGINALS["block_device_mappings"] = Ami.__dict__["block_device_mappings"]
        Ami.block_device_mappings = property(_patched_bdm_property)
        _ORIGINALS["progress"] = Snapshot.__dict__["progress"]
        Snapshot.progress = property(_patched_progress_property)
        _ORIGINALS["generate_private_key"] = kms_models.generate_private_key
        kms_models.generate_private_key = _shared_private_key
        _ORIGINALS["random_rsa_key_pair"] = key_pair_models.random_rsa_key_pair
        key_pair_models.random_rsa_key_pair = _shared_key_pair
        _ORIGINALS["create_alias"] = KmsBackend.create_alias
        KmsBackend.create_alias = _patched_create_alias

        for method in ("disable_key", "enable_key", "cancel_key_deletion", "schedule_key_deletion"):
            _ORIGINALS[f"KmsBackend.{method}"] = getattr(KmsBackend, method)
            setattr(KmsBackend, method, _key_arn_tolerant(f"KmsBackend.{method}"))

        ec2_handlers = {
            "AmisResponse.describe_images": _describe_images,
            "AmisResponse.describe_image_attribute": _describe_image_attribute,
            "AmisResponse.copy_image": _copy_image,
            "AmisResponse.create_image": _create_image,
            "AmisResponse.deregister_image": _deregister_image,
            "ElasticBlockStore.describe_snapshots": _describe_snapshots,
            "ElasticBlockStore.modify_snapshot_attribute": _modify_snapshot_attribute,
            "InstanceResponse.run_instances": _run_instances,
            "InstanceResponse.describe_instance_credit_specifications": _describe_instance_credit_specifications,
            "AmisResponse.modify_image_attribute": _modify_image_attribute,
            "InstanceResponse.describe_instances": _describe_instances,
            "InstanceResponse.describe_instance_status": _describe_instance_status,
            "InstanceResponse.terminate_instances": _terminate_instances,
        }
        kms_handlers: dict[str, Callable[..., Any]] = {
            "KmsResponse.describe_key": _kms_patch("KmsResponse.describe_key", "DescribeKey", check_state=False, dry_run=False),
            "KmsResponse.list_grants": _kms_patch("KmsResponse.list_grants", "ListGrants", check_state=False, grants_count=False, dry_run=False),
            "KmsResponse.revoke_grant": _kms_patch("KmsResponse.revoke_grant", "RevokeGrant", check_state=False, grants_count=False),
            "KmsResponse.encrypt": _kms_patch("KmsResponse.encrypt", "Encrypt"),
            "KmsResponse.decrypt": _kms_patch("KmsResponse.decrypt", "Decrypt"),
            "KmsResponse.generate_data_key": _kms_patch("KmsResponse.generate_data_key", "GenerateDataKey"),
            "KmsResponse.generate_data_key_without_plaintext": _kms_patch(
                "KmsResponse.generate_data_key_without_plaintext", "GenerateDataKeyWithoutPlaintext"
            ),
            "KmsResponse.create_grant": _create_grant,
            "KmsResponse.retire_grant": _retire_grant,
            "KmsResponse.put_key_policy": _put_key_policy,
            "KmsResponse.disable_key": _aws_managed_refusal("KmsResponse.disable_key", "DisableKey"),
            "KmsResponse.schedule_key_deletion": _aws_managed_refusal("KmsResponse.schedule_key_deletion", "ScheduleKeyDeletion"),
        }
        for qualified, handler in {**ec2_handlers, **kms_handlers}.items():
            cls_name, method = qualified.split(".")
            cls = classes[cls_name]
            _ORIGINALS[qualified] = getattr(cls, method)
            setattr(cls, method, handler)
        # Eventual consistency wraps the KMS handlers above (new grants hidden for a while).
        for method, wrap in (("list_grants", _list_grants), ("create_grant", _consistent_create_grant), ("revoke_grant", _revoke_grant)):
            key = f"KmsResponse.{method}.consistency"
            _ORIGINALS[key] = getattr(KmsResponse, method)
            setattr(KmsResponse, method, wrap(key))
        # moto has no GetEbsDefaultKmsKeyId at all (nothing to keep as the original).
        ElasticBlockStore.get_ebs_default_kms_key_id = _get_ebs_default_kms_key_id
        # Additions kept in modules of their own: block public access, role trust,
        # launch-template versions, retiring images.
        from offline.sandbox import ec2_allowed_images, ec2_block_public_access, ec2_launch_templates, ec2_retire, sts_roles

        ec2_block_public_access.install()
        sts_roles.install()
        ec2_launch_templates.install()
        ec2_retire.install()  # after the image handlers it wraps
        ec2_allowed_images.install()  # Allowed AMIs: wraps DescribeImages last
        _INSTALLED = True
