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
- ``CpuOptions`` (core count and threads per core: per-core licences),
  ``HibernationOptions``, ``MaintenanceOptions`` (``AutoRecovery``),
  ``PrivateDnsNameOptions``, ``InstanceInitiatedShutdownBehavior`` and
  ``CapacityReservationSpecification`` (its preference, or a reservation resource
  group; a specific reservation id is not carried: a reservation is in one zone).

Named in the plan as not carried: ``SourceDestCheck`` turned off (a NAT or router
instance): RunInstances has no such parameter, so the plan gives the
``modify-instance-attribute --no-source-dest-check`` command for the new instance.

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

# The CpuOptions and PrivateDnsNameOptions keys RunInstances accepts.
CPU_KEYS = ("CoreCount", "ThreadsPerCore", "AmdSevSnp")
DNS_KEYS = ("HostnameType", "EnableResourceNameDnsARecord", "EnableResourceNameDnsAAAARecord")

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
    cpu_options: dict[str, Any] = field(default_factory=dict)  # CoreCount, ThreadsPerCore (AmdSevSnp)
    hibernation: bool = False
    auto_recovery: str | None = None  # MaintenanceOptions.AutoRecovery: default | disabled
    private_dns_name_options: dict[str, Any] = field(default_factory=dict)
    shutdown_behavior: str | None = None  # InstanceInitiatedShutdownBehavior: stop | terminate
    capacity_reservation: dict[str, Any] = field(default_factory=dict)  # CapacityReservationSpecification as described
    source_dest_check: bool = True

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
        cpu = {k: v for k, v in self.cpu_options.items() if k in CPU_KEYS and v is not None}
        if cpu:
            call["CpuOptions"] = cpu
        if self.hibernation:
            call["HibernationOptions"] = {"Configured": True}
        if self.auto_recovery:
            call["MaintenanceOptions"] = {"AutoRecovery": self.auto_recovery}
        dns = {k: v for k, v in self.private_dns_name_options.items() if k in DNS_KEYS and v is not None}
        if dns:
            call["PrivateDnsNameOptions"] = dns
        if self.shutdown_behavior:
            call["InstanceInitiatedShutdownBehavior"] = self.shutdown_behavior
        reservation = self._carried_reservation()
        if reservation:
            call["CapacityReservationSpecification"] = reservation
        return call

    def _carried_reservation(self) -> dict[str, Any]:
        target = self.capacity_reservation.get("CapacityReservationTarget") or {}
        if target.get("CapacityReservationId"):
            return {}  # one zone's reservation: named in not_carried
        if target.get("CapacityReservationResourceGroupArn"):
            return {"CapacityReservationTarget": {"CapacityReservationResourceGroupArn": target["CapacityReservationResourceGroupArn"]}}
        preference = self.capacity_reservation.get("CapacityReservationPreference")
        return {"CapacityReservationPreference": preference} if preference else {}

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
        if self.cpu_options.get("CoreCount"):
            parts.append(f"CPU {self.cpu_options['CoreCount']} cores x {self.cpu_options.get('ThreadsPerCore', 1)} threads")
        if self.hibernation:
            parts.append("hibernation configured")
        if self.auto_recovery:
            parts.append(f"auto-recovery {self.auto_recovery}")
        if self.private_dns_name_options.get("HostnameType"):
            parts.append(f"hostname type {self.private_dns_name_options['HostnameType']}")
        if self.shutdown_behavior:
            parts.append(f"shutdown behaviour {self.shutdown_behavior}")
        reservation = self._carried_reservation()
        if reservation:
            parts.append("capacity reservation " + (reservation.get("CapacityReservationPreference") or "resource group"))
        return ", ".join(parts)

    def not_carried(self) -> list[str]:
        """What of these settings cannot be carried, in the approver's words."""
        missing = []
        if self.host_id:
            missing.append(f"the dedicated host `{self.host_id}` (a host is in one zone; the new instance needs a host in the target zone)")
        if self.volume_tags_differ:
            missing.append("volume tags that differ between volumes (only the tags every volume shares are set on the new volumes)")
        if not self.source_dest_check:
            missing.append(
                "source/destination check turned off (a NAT or router instance): RunInstances cannot set it; after the migration run "
                "`aws ec2 modify-instance-attribute --instance-id <new instance> --no-source-dest-check`"
            )
        reserved = (self.capacity_reservation.get("CapacityReservationTarget") or {}).get("CapacityReservationId")
        if reserved:
            missing.append(f"the capacity reservation `{reserved}` (a reservation is in one zone; target one in the new instance's zone)")
        return missing


def _attribute(ec2: Any, instance_id: str, name: str, key: str) -> Any:
    return ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name).get(key, {}).get("Value")


def read_instance_settings(ec2: Any, instance: dict[str, Any], volumes: list[dict[str, Any]]) -> InstanceSettings:
    """The settings of ``instance`` (a DescribeInstances entry) and its ``volumes``
    (DescribeVolumes entries): three DescribeInstanceAttribute calls, and one
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
        disable_api_termination=bool(_attribute(ec2, instance_id, "disableApiTermination", "DisableApiTermination")),
        disable_api_stop=bool(_attribute(ec2, instance_id, "disableApiStop", "DisableApiStop")),
        volume_tags=common,
        volume_tags_differ=any(t != common for t in tag_sets),
        cpu_options=dict(instance.get("CpuOptions") or {}),
        hibernation=bool((instance.get("HibernationOptions") or {}).get("Configured")),
        auto_recovery=(instance.get("MaintenanceOptions") or {}).get("AutoRecovery"),
        private_dns_name_options=dict(instance.get("PrivateDnsNameOptions") or {}),
        shutdown_behavior=_attribute(ec2, instance_id, "instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior"),
        capacity_reservation=dict(instance.get("CapacityReservationSpecification") or {}),
        source_dest_check=instance.get("SourceDestCheck", True) is not False,
    )
