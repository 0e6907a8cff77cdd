"""What makes a migrated instance the same as its source, beyond type, network and
key: read from the source, passed to ``RunInstances``, and listed in the plan.

Carried (each is a ``RunInstances`` parameter):
- ``MetadataOptions``: an instance that requires IMDSv2 (``HttpTokens=required``)
  stays required; hop limit, endpoint, IPv6 endpoint and tags-in-metadata too.
- ``Placement.Tenancy`` (``default``/``dedicated``/``host``), with the host resource
  group and affinity; a dedicated *host id* is not carried: a host lives in one zone.
- ``EbsOptimized``; ``CreditSpecification`` (burstable types: ``standard`` or
  ``unlimited``); ``DisableApiTermination`` and ``DisableApiStop`` (protection).
- Volume tags, through ``TagSpecifications`` (``ResourceType=volume``), which puts
  the same tags on every volume: the tags all source volumes share are carried, and
  the plan says so when volumes differ.

AWS: "RunInstances" (API reference, Amazon EC2) for the parameters;
"Configure the instance metadata options for new instances" (EC2 User Guide) for
IMDSv2 on launch; "Burstable performance instances" for credit specifications.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Instance families whose CPU credits can be standard or unlimited.
BURSTABLE_PREFIXES = ("t2.", "t3.", "t3a.", "t4g.")
# The MetadataOptions keys RunInstances accepts (DescribeInstances adds "State").
METADATA_KEYS = ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags")

# Read-only calls of the migrate preflight for these settings.
SETTINGS_PREFLIGHT_PERMISSIONS = ("ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceCreditSpecifications")


@dataclass
class InstanceSettings:
    """The source instance's settings that RunInstances can carry."""

    metadata_options: dict[str, Any] = field(default_factory=dict)
    tenancy: str = "default"
    host_id: str | None = None
    host_resource_group_arn: str | None = None
    affinity: str | None = None
    ebs_optimized: bool = False
    cpu_credits: str | None = None
    disable_api_termination: bool = False
    disable_api_stop: bool = False
    volume_tags: dict[str, str] = field(default_factory=dict)  # common to every volume
    volume_tags_differ: bool = False

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "InstanceSettings":
        return cls(**(params or {}))

    def run_parameters(self) -> dict[str, Any]:
        """The RunInstances parameters that carry these settings (tags excluded)."""
        call: dict[str, Any] = {"EbsOptimized": self.ebs_optimized}
        metadata = {k: v for k, v in self.metadata_options.items() if k in METADATA_KEYS and v is not None}
        if metadata:
            call["MetadataOptions"] = metadata
        placement: dict[str, Any] = {}
        if self.tenancy and self.tenancy != "default":
            placement["Tenancy"] = self.tenancy
        if self.host_resource_group_arn:
            placement["HostResourceGroupArn"] = self.host_resource_group_arn
        if self.affinity and self.tenancy == "host":
            placement["Affinity"] = self.affinity
        if placement:
            call["Placement"] = placement
        if self.cpu_credits:
            call["CreditSpecification"] = {"CpuCredits": self.cpu_credits}
        if self.disable_api_termination:
            call["DisableApiTermination"] = True
        if self.disable_api_stop:
            call["DisableApiStop"] = True
        return call

    def carried_text(self) -> str:
        """One line for the plan: what the new instance keeps."""
        parts = [f"IMDS HttpTokens={self.metadata_options.get('HttpTokens', 'optional')}"]
        if self.metadata_options.get("HttpPutResponseHopLimit"):
            parts.append(f"hop limit {self.metadata_options['HttpPutResponseHopLimit']}")
        parts.append(f"tenancy {self.tenancy}")
        parts.append(f"EBS-optimized {'yes' if self.ebs_optimized else 'no'}")
        if self.cpu_credits:
            parts.append(f"CPU credits {self.cpu_credits}")
        protections = [name for name, on in (("termination", self.disable_api_termination), ("stop", self.disable_api_stop)) if on]
        parts.append("protection against " + " and ".join(protections) if protections else "no stop/termination protection")
        if self.volume_tags:
            parts.append(f"{len(self.volume_tags)} volume tags")
        return ", ".join(parts)

    def not_carried(self) -> list[str]:
        """What of these settings cannot be carried, in the approver's words."""
        missing = []
        if self.host_id:
            missing.append(f"the dedicated host `{self.host_id}` (a host is in one zone; the new instance needs a host in the target zone)")
        if self.volume_tags_differ:
            missing.append("volume tags that differ between volumes (only the tags every volume shares are set on the new volumes)")
        return missing


def _attribute(ec2: Any, instance_id: str, name: str, key: str) -> bool:
    return bool(ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name).get(key, {}).get("Value"))


def read_instance_settings(ec2: Any, instance: dict[str, Any], volumes: list[dict[str, Any]]) -> InstanceSettings:
    """The settings of ``instance`` (a DescribeInstances entry) and its ``volumes``
    (DescribeVolumes entries): two DescribeInstanceAttribute calls, and one
    DescribeInstanceCreditSpecifications for a burstable type."""
    instance_id = instance["InstanceId"]
    placement = instance.get("Placement") or {}
    credits = None
    if instance.get("InstanceType", "").startswith(BURSTABLE_PREFIXES):
        specs = ec2.describe_instance_credit_specifications(InstanceIds=[instance_id]).get("InstanceCreditSpecifications", [])
        credits = specs[0].get("CpuCredits") if specs else None
    tag_sets = [{t["Key"]: t["Value"] for t in v.get("Tags", []) if not t["Key"].startswith("aws:")} for v in volumes]
    common = dict(set.intersection(*(set(t.items()) for t in tag_sets))) if tag_sets else {}
    return InstanceSettings(
        metadata_options={k: v for k, v in (instance.get("MetadataOptions") or {}).items() if k in METADATA_KEYS},
        tenancy=placement.get("Tenancy") or "default",
        host_id=placement.get("HostId"),
        host_resource_group_arn=placement.get("HostResourceGroupArn"),
        affinity=placement.get("Affinity"),
        ebs_optimized=bool(instance.get("EbsOptimized")),
        cpu_credits=credits,
        disable_api_termination=_attribute(ec2, instance_id, "disableApiTermination", "DisableApiTermination"),
        disable_api_stop=_attribute(ec2, instance_id, "disableApiStop", "DisableApiStop"),
        volume_tags=common,
        volume_tags_differ=any(t != common for t in tag_sets),
    )
