"""Building a sandbox world: keys, images, a network and instances per account.

A mixin of :class:`~offline.sandbox.Sandbox`; it seeds moto's backends directly (keys,
images) or calls the sandbox's own boto3 clients (network, instances).
"""

from __future__ import annotations

from typing import Any

from offline.sandbox.ec2_lifecycle import _make_snapshots
from offline.sandbox.policy import _key_by_alias, _lookup_key
from offline.sandbox.state import DEFAULT_BASE_IMAGE_ID, _LOCK, _ec2_backends, _kms_backends


class SandboxWorld:
    """The seeding methods of :class:`~offline.sandbox.Sandbox`."""

    region: str

    # -- seeding -------------------------------------------------------------------
    def create_key(
        self, account_id: str, region: str | None = None, *, alias: str | None = None, policy: str | None = None,
        description: str = "amibot sandbox key", tags: dict[str, str] | None = None,
    ) -> str:
        """A customer-managed KMS key in that account; returns its ARN. ``policy``
        defaults to KMS's default policy (the owning account's root may do all);
        ``tags`` go on the key."""
        region = region or self.region
        with _LOCK:
            backend = _kms_backends()[account_id][region]
            key = backend.create_key(
                policy, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description,
                [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()] or None,
            )
            if alias:
                backend.create_alias(key.id, alias if alias.startswith("alias/") else f"alias/{alias}")
            return key.arn

    def aws_managed_ebs_key(self, account_id: str, region: str | None = None) -> str:
        """The account's AWS-managed ``alias/aws/ebs`` key (``KeyManager: AWS``),
        created on first use as AWS does; returns its ARN."""
        region = region or self.region
        with _LOCK:
            return _key_by_alias(_kms_backends()[account_id][region], "alias/aws/ebs").arn

    def create_image(
        self,
        account_id: str,
        region: str | None = None,
        *,
        name: str = "app-server",
        kms_key_arn: str | None = None,
        tags: dict[str, str] | None = None,
        snapshots: int = 1,
        description: str = "",
        public: bool = False,
    ) -> str:
        """Register an available AMI owned by ``account_id`` with ``snapshots`` EBS
        snapshots, encrypted with ``kms_key_arn`` (key id, alias or ARN; the snapshots
        show the key ARN) or unencrypted when None. ``tags`` go on the image."""
        from moto.ec2.models.amis import Ami
        from moto.ec2.utils import random_ami_id

        region = region or self.region
        with _LOCK:
            backend = _ec2_backends()[account_id][region]
            key_arn = None
            if kms_key_arn:
                hit = _lookup_key(kms_key_arn, account_id, region)
                key_arn = hit[1].arn if hit else kms_key_arn
            image = Ami(backend, random_ami_id(), name=name, description=description, public=public,
                        virtualization_type="hvm", architecture="x86_64")
            backend.amis[image.id] = image
            devices = ["/dev/xvda"] + [f"/dev/sd{c}" for c in "fghijklmnop"]
            _make_snapshots(
                backend,
                image,
                [
                    {"device": devices[i], "size": 8 if i == 0 else 20, "encrypted": key_arn is not None, "kms_key_id": key_arn}
                    for i in range(max(1, snapshots))
                ],
                lambda i: f"Created by CreateImage(i-0sandbox) for {image.id}",
            )
            if tags:
                image.add_tags(tags)
            return image.id

    def mark_image(
        self,
        image_id: str,
        *,
        product_codes: list[str] | None = None,
        usage_operation: str | None = None,
        platform_details: str | None = None,
        instance_store: bool = False,
        deprecated_at: str | None = None,
        archived: bool = False,
        shared_with: int = 0,
    ) -> None:
        """Give an image what makes AWS refuse to copy or share it: Marketplace
        ``product_codes`` (ids), a licensed ``usage_operation`` (e.g.
        ``RunInstances:0010`` for RHEL) and ``platform_details``, an instance store
        (S3) root device, a ``DeprecationTime`` (ISO 8601), its snapshots in the archive
        tier, or launch permissions for ``shared_with`` made-up accounts."""
        from offline.sandbox.state import _image_snapshots, _locate_image

        with _LOCK:
            _, _, _, image = _locate_image(image_id)
            if product_codes:
                image.product_codes = [{"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in product_codes]
            if usage_operation:
                image.usage_operation = usage_operation
            if platform_details:
                image.platform_details = platform_details
            if instance_store:
                image.root_device_type = "instance-store"
            if deprecated_at:
                image.deprecation_time = deprecated_at
            if archived:
                for snap in _image_snapshots(image):
                    snap.storage_tier = "archive"
            for n in range(shared_with):
                image.launch_permissions.append({"UserId": f"{900000000000 + n}"})

    def network(self, account_id: str, region: str | None = None) -> dict[str, Any]:
        """The account's sandbox VPC with a subnet in each of two AZs (created on first
        use): ``{"vpc_id": ..., "subnets": {az: subnet_id}, "security_group_id": ...}``."""
        region = region or self.region
        ec2 = self.client("ec2", account_id, region)
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:amibot-sandbox", "Values": ["network"]}])["Vpcs"]
        if vpcs:
            vpc_id = vpcs[0]["VpcId"]
            subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
            groups = ec2.describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["app"]}]
            )["SecurityGroups"]
            return {
                "vpc_id": vpc_id,
                "subnets": {s["AvailabilityZone"]: s["SubnetId"] for s in subnets},
                "security_group_id": groups[0]["GroupId"],
            }
        vpc_id = ec2.create_vpc(
            CidrBlock="10.20.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "amibot-sandbox", "Value": "network"}]}],
        )["Vpc"]["VpcId"]
        subnets = {}
        for index, suffix in enumerate("ab"):
            az = f"{region}{suffix}"
            subnets[az] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{index + 1}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(GroupName="app", Description="sandbox app servers", VpcId=vpc_id)["GroupId"]
        return {"vpc_id": vpc_id, "subnets": subnets, "security_group_id": group_id}

    def create_instance(
        self,
        account_id: str,
        region: str | None = None,
        *,
        subnet_id: str | None = None,
        availability_zone: str | None = None,
        tags: dict[str, str] | None = None,
        instance_type: str = "t3.micro",
        image_id: str = DEFAULT_BASE_IMAGE_ID,
        key_name: str | None = "app-key",
        security_group_ids: list[str] | None = None,
        instance_profile: str | None = None,
        kms_key_arn: str | None = None,
        **launch_settings: Any,
    ) -> str:
        """Launch a running instance in the account's sandbox network (first AZ unless
        ``subnet_id``/``availability_zone``), with a key pair, the ``app`` security
        group, optional instance profile (created if missing) and tags; ``kms_key_arn``
        encrypts its root volume; ``launch_settings`` are more RunInstances parameters
        (``MetadataOptions``, ``DisableApiTermination``…). Returns the instance id."""
        region = region or self.region
        net = self.network(account_id, region)
        if subnet_id is None:
            az = availability_zone or sorted(net["subnets"])[0]
            subnet_id = net["subnets"][az]
        ec2 = self.client("ec2", account_id, region)
        params: dict[str, Any] = {
            "ImageId": image_id,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": instance_type,
            "SubnetId": subnet_id,
            "SecurityGroupIds": security_group_ids or [net["security_group_id"]],
        }
        if key_name:
            if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name]}])["KeyPairs"]:
                ec2.create_key_pair(KeyName=key_name)
            params["KeyName"] = key_name
        if instance_profile:
            iam = self.client("iam", account_id, region)
            try:
                iam.get_instance_profile(InstanceProfileName=instance_profile)
            except iam.exceptions.NoSuchEntityException:
                iam.create_instance_profile(InstanceProfileName=instance_profile)
            params["IamInstanceProfile"] = {"Name": instance_profile}
        if tags:
            params["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        if kms_key_arn:
            params["BlockDeviceMappings"] = [
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": kms_key_arn}}
            ]
        instance_id = ec2.run_instances(**params, **launch_settings)["Instances"][0]["InstanceId"]
        # A seeded instance exists "from before": visible at once.
        self.reveal(instance_id)  # type: ignore[attr-defined]
        return instance_id
