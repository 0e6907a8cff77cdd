"""The read-only preflight of a migration: the instance to migrate (its volumes,
keys and settings) and the subnets of the target zone. Every AWS call lives under
``aws/``; the migration's actions are in ``aws.actions.migrate``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.actions.inspect import KeyFacts
from aws.actions.instance_settings import InstanceSettings, read_instance_settings
from aws.errors import AwsFailure
from aws.sessions import AwsSessions


@dataclass
class VolumeFacts:
    """One EBS volume of the instance and its encryption."""

    device: str
    volume_id: str
    size: int
    encrypted: bool
    kms_key_arn: str | None


@dataclass
class SubnetFacts:
    """A subnet a migrated instance could be launched in."""

    subnet_id: str
    availability_zone: str
    vpc_id: str
    cidr: str
    free_addresses: int
    name: str = ""


@dataclass
class InstanceFacts:
    """What the migrate preflight saw of an instance, shown to the approver."""

    instance_id: str
    name: str
    state: str
    instance_type: str
    availability_zone: str
    vpc_id: str | None
    vpc_cidr: str | None
    subnet_id: str | None
    private_ip: str | None
    security_groups: list[dict[str, str]]  # [{"GroupId", "GroupName"}]
    key_name: str | None
    iam_instance_profile_arn: str | None
    tags: dict[str, str]
    root_device_type: str
    volumes: list[VolumeFacts] = field(default_factory=list)
    keys: list[KeyFacts] = field(default_factory=list)  # one per distinct volume key
    settings: InstanceSettings = field(default_factory=InstanceSettings)  # carried by RunInstances


def inspect_instance(sessions: AwsSessions, account_id: str, region: str, instance_id: str, tag: str) -> InstanceFacts:
    """Read the instance, its volumes and their keys, and its VPC, as its account sees them."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    kms = sessions.client("kms", account_id, region, tag)
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r.get("Instances", [])]
    if not instances:
        raise AwsFailure("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist", operation="DescribeInstances")
    instance = instances[0]
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("VolumeId")]
    volumes: list[VolumeFacts] = []
    keys: dict[str, KeyFacts] = {}
    described = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"] if volume_ids else []
    if volume_ids:
        for volume in described:
            device = next((a["Device"] for a in volume.get("Attachments", []) if a.get("InstanceId") == instance_id), "")
            key_id = volume.get("KmsKeyId") if volume.get("Encrypted") else None
            if key_id and key_id not in keys:
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
                aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=meta["KeyId"]).get("Aliases", [])]
                keys[key_id] = KeyFacts(arn=meta["Arn"], manager=meta["KeyManager"], state=meta["KeyState"], aliases=aliases)
            volumes.append(VolumeFacts(device, volume["VolumeId"], int(volume.get("Size", 0)), bool(volume.get("Encrypted")), keys[key_id].arn if key_id else None))
    vpc_id = instance.get("VpcId")
    vpc_cidr = None
    if vpc_id:
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        vpc_cidr = vpcs[0].get("CidrBlock") if vpcs else None
    profile = instance.get("IamInstanceProfile") or {}
    return InstanceFacts(
        instance_id=instance_id,
        name=tags.get("Name", ""),
        state=instance["State"]["Name"],
        instance_type=instance["InstanceType"],
        availability_zone=instance.get("Placement", {}).get("AvailabilityZone", ""),
        vpc_id=vpc_id,
        vpc_cidr=vpc_cidr,
        subnet_id=instance.get("SubnetId"),
        private_ip=instance.get("PrivateIpAddress"),
        security_groups=[{"GroupId": g["GroupId"], "GroupName": g.get("GroupName", "")} for g in instance.get("SecurityGroups", [])],
        key_name=instance.get("KeyName"),
        iam_instance_profile_arn=profile.get("Arn"),
        tags=tags,
        root_device_type=instance.get("RootDeviceType", "ebs"),
        volumes=volumes,
        keys=list(keys.values()),
        settings=read_instance_settings(ec2, instance, described),
    )


def _subnet_facts(subnet: dict[str, Any]) -> SubnetFacts:
    return SubnetFacts(
        subnet_id=subnet["SubnetId"],
        availability_zone=subnet["AvailabilityZone"],
        vpc_id=subnet["VpcId"],
        cidr=subnet.get("CidrBlock", ""),
        free_addresses=int(subnet.get("AvailableIpAddressCount", 0)),
        name=next((t["Value"] for t in subnet.get("Tags", []) if t["Key"] == "Name"), ""),
    )


def subnets_in_zone(sessions: AwsSessions, account_id: str, region: str, vpc_id: str, zone: str, tag: str) -> list[SubnetFacts]:
    """The VPC's subnets in one Availability Zone."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "availability-zone", "Values": [zone]}])["Subnets"]
    return [_subnet_facts(s) for s in subnets]


def describe_subnet(sessions: AwsSessions, account_id: str, region: str, subnet_id: str, tag: str) -> SubnetFacts | None:
    """One subnet by id, or None when the account has no such subnet in that region."""
    ec2 = sessions.client("ec2", account_id, region, tag)
    try:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            return None
        raise
    return _subnet_facts(subnets[0]) if subnets else None


def instance_profile_roles(sessions: AwsSessions, account_id: str, region: str, profile_arn: str, tag: str) -> list[str]:
    """The role ARNs of an instance profile (what RunInstances passes to EC2:
    iam:PassRole is authorised on them)."""
    iam = sessions.client("iam", account_id, region, tag)
    name = profile_arn.rsplit("/", 1)[-1]
    return [r["Arn"] for r in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"].get("Roles", [])]
