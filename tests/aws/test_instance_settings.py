"""Migrate carries what RunInstances can of the source instance (issue 15 §4) and the
plan names what it cannot (aws/actions/instance_settings.py)."""

from __future__ import annotations

from aws.actions.instance_settings import InstanceSettings, read_instance_settings


class Ec2:
    """DescribeInstanceAttribute answers of one instance."""

    def describe_instance_attribute(self, InstanceId, Attribute):
        values = {"disableApiTermination": False, "disableApiStop": False, "instanceInitiatedShutdownBehavior": "terminate"}
        key = Attribute[0].upper() + Attribute[1:]
        return {"InstanceId": InstanceId, key: {"Value": values[Attribute]}}


INSTANCE = {
    "InstanceId": "i-1", "InstanceType": "m5.large", "SourceDestCheck": False,
    "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 1},
    "HibernationOptions": {"Configured": True},
    "MaintenanceOptions": {"AutoRecovery": "disabled"},
    "PrivateDnsNameOptions": {"HostnameType": "resource-name", "EnableResourceNameDnsARecord": True},
    "CapacityReservationSpecification": {"CapacityReservationPreference": "none"},
}


def test_migrate_carries_cpu_hibernation_maintenance_dns_shutdown_and_reservation():
    settings = InstanceSettings.from_params(read_instance_settings(Ec2(), INSTANCE, []).to_params())
    call = settings.run_parameters()
    assert call["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert call["HibernationOptions"] == {"Configured": True}
    assert call["MaintenanceOptions"] == {"AutoRecovery": "disabled"}
    assert call["PrivateDnsNameOptions"] == {"HostnameType": "resource-name", "EnableResourceNameDnsARecord": True}
    assert call["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert call["CapacityReservationSpecification"] == {"CapacityReservationPreference": "none"}
    assert "shutdown behaviour terminate" in settings.carried_text() and "hibernation configured" in settings.carried_text()
    # RunInstances has no SourceDestCheck: the plan names it, with the command.
    assert "SourceDestCheck" not in call
    assert any("--no-source-dest-check" in line for line in settings.not_carried())


def test_a_specific_capacity_reservation_is_named_not_carried():
    instance = {**INSTANCE, "SourceDestCheck": True, "CapacityReservationSpecification": {
        "CapacityReservationPreference": "capacity-reservations-only", "CapacityReservationTarget": {"CapacityReservationId": "cr-1"}}}
    settings = read_instance_settings(Ec2(), instance, [])
    assert "CapacityReservationSpecification" not in settings.run_parameters()
    assert [line for line in settings.not_carried() if "cr-1" in line] and not [line for line in settings.not_carried() if "source-dest" in line]
