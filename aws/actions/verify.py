"""A real test launch of an AMI in the account that will use it.

``verify.target_access`` (aws/actions/share.py) proves from the target that the AMI
is visible and its keys answer ``DescribeKey`` / ``CreateGrant DryRun``. This action
goes one step further, on request (``/ami copy ... verify``): it launches the
smallest suitable instance from the image in the target account, waits for it to
run and pass its status checks, then terminates it. It is the only check that sees
the classic failure of a shared encrypted AMI whose key the account cannot use: the
instance is created and at once ``terminated`` with ``Client.InternalError``.

``RunInstances`` with ``DryRun`` is deliberately *not* used as evidence: AWS checks
IAM only on a dry run, never KMS, so a dry run succeeds for exactly the image this
action exists to catch.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.actions.base import Action, ActionParams, StepContext, StepWaiting, image_of, register
from aws.actions.disposable import DISPOSABLE_TAG
from aws.actions.visibility import until_visible, within_window
from aws.errors import MISSING, AwsFailure, explain, read_outcome

PURPOSE_TAG = "amibot:purpose"
REQUEST_TAG = "amibot:request"
TOKEN_TAG = "amibot:client-token"

# The smallest general-purpose type per architecture. t3/t4g are Nitro (ENA
# required); t2 is the fallback for x86_64 images built without ENA support.
INSTANCE_TYPES = {"x86_64": "t3.micro", "arm64": "t4g.micro", "i386": "t2.micro"}
NON_ENA_X86_TYPE = "t2.micro"

# EC2 StateReason codes of an instance AWS stopped, not amibot.
KEY_PROBLEM_REASON = "Client.InternalError"


def instance_type_for(image: dict[str, Any]) -> str:
    """The smallest instance type that can boot ``image`` (a DescribeImages entry)."""
    architecture = image.get("Architecture") or "x86_64"
    if architecture not in INSTANCE_TYPES:
        raise AwsFailure(
            "UnsupportedArchitecture",
            f"{image.get('ImageId')} is built for {architecture}",
            cause=f"amibot has no test-launch instance type for {architecture} images (mac images need a dedicated host).",
            fix="Verify this image by hand, or ask without `verify`.",
            operation="RunInstances",
        )
    return INSTANCE_TYPES[architecture]


def client_token(request_uid: str, account_id: str, region: str, image_id: str, instance_type: str, subnet_id: str) -> str:
    """RunInstances' ClientToken for one test launch: derived from the request's
    random uid and the launch's parameters, so a restarted step gets back the same
    instance from AWS instead of launching a second one (ClientToken ≤ 64 ASCII)."""
    digest = hashlib.sha256(f"{account_id}|{region}|{image_id}|{instance_type}|{subnet_id}".encode()).hexdigest()[:16]
    return f"amibot-{request_uid}-verify-{digest}"[:64]


@register
class VerifyByTestLaunch(Action):
    """Launch the AMI for real in the target account, check it runs, terminate it.

    params: ``image_id`` or ``image_from_step`` (the seq of a step whose result holds
    ``image_id``, e.g. the copy); ``subnet_id`` (the account's ``verify_subnets`` entry
    for the region; else a default subnet of the default VPC); optional
    ``instance_type``, ``key_arns`` (named in the failure message),
    ``poll_seconds`` (default 15) and ``status_timeout_seconds`` (default 900).
    Raises StepWaiting while the instance starts and its status checks initialise.
    """

    name = "verify.test_launch"
    permissions = (
        "ec2:DescribeImages",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeInstanceTypeOfferings",
        "ec2:RunInstances",
        "ec2:CreateTags",  # TagSpecifications on RunInstances need it
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:TerminateInstances",
        # Launching from an encrypted AMI: EC2 uses the snapshot's key (and the
        # account's EBS key) on the caller's behalf, so the caller's IAM must allow
        # these on the key ARN (aws.iam limits them to calls made through EC2).
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKeyWithoutPlaintext",
    )

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The image (``image_id``, or made by step ``image_from_step``), where to launch it, how to wait."""

        image_id: str | None = None
        image_from_step: int | None = None
        subnet_id: str | None = None
        instance_type: str | None = None
        key_arns: list[str] = field(default_factory=list)
        poll_seconds: float = 15
        status_timeout_seconds: float | None = None  # None: 900 s (plans leave it out)

    @classmethod
    def describe(cls, params, *, account, region, of: str = "image"):
        """``of``: ``image`` (named), ``copy`` (made by this plan) or ``earlier copy``."""
        where = f"subnet {params.subnet_id} (`verify_subnets`)" if params.subnet_id else "a default subnet of the default VPC"
        if of == "earlier copy":
            return f"Test launch as `{account.alias}` in {region} of the copy, wait for its status checks, then TerminateInstances"
        launched = f"of {params.image_id} (smallest instance type for it)" if of == "image" else "(smallest instance type for the copy)"
        return f"Test launch as `{account.alias}` in {region}: RunInstances {launched} in {where}, wait for its status checks, then TerminateInstances"

    def run(self, ctx, account_id, region, params):
        ec2 = ctx.client("ec2", account_id, region)
        image_id = image_of(params, ctx.results)
        done = dict(ctx.previous)
        if done.get("verified"):
            # A restart after the check passed: make sure the instance is gone.
            _terminate(ctx, ec2, done.get("instance_id"), done.get("launched_at"))
            return done
        if not done.get("instance_id"):
            done = self._launch(ctx, ec2, account_id, region, image_id, params)
        try:
            return self._follow(ctx, ec2, account_id, region, image_id, params, done)
        except StepWaiting:
            raise
        except Exception:
            # A failed step is not undone by the worker: never leave a test
            # instance running behind a failure.
            try:
                _terminate(ctx, ec2, done["instance_id"], done.get("launched_at"))
            except Exception as error:  # the original failure is the one to report
                ctx.log(f"could not terminate test instance {done['instance_id']}: {error}")
            raise

    def revert(self, ctx, account_id, region, params, result):
        instance_id = result.get("instance_id")
        if not instance_id:
            return None
        ec2 = ctx.client("ec2", account_id, region)
        if _terminate(ctx, ec2, instance_id, result.get("launched_at")):
            return f"terminated test instance {instance_id}"
        return None

    # -- launching ---------------------------------------------------------------
    def _launch(self, ctx: StepContext, ec2: Any, account_id: str, region: str, image_id: str, params: "VerifyByTestLaunch.Params") -> dict[str, Any]:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
        if not images:
            raise explain("InvalidAMIID.NotFound", f"{image_id} is not visible from {account_id} in {region}", "DescribeImages")
        image = images[0]
        instance_type = params.instance_type or instance_type_for(image)
        subnet_id = params.subnet_id or _default_subnet(ec2, account_id, region, instance_type)
        try:
            instance = self._run(ctx, ec2, account_id, region, image_id, instance_type, subnet_id)
        except ClientError as error:
            err = error.response["Error"]
            # Nitro types (t3) need ENA; an older x86_64 image without it boots on t2.
            if params.instance_type or err.get("Code") != "InvalidParameterCombination" or "ENA" not in err.get("Message", "") and "Elastic Network Adapter" not in err.get("Message", ""):
                raise
            instance_type = NON_ENA_X86_TYPE
            instance = self._run(ctx, ec2, account_id, region, image_id, instance_type, subnet_id)
        done = {
            "instance_id": instance["InstanceId"],
            "instance_type": instance_type,
            "subnet_id": subnet_id,
            "image_id": image_id,
            "launched_at": ctx.clock(),
        }
        ctx.checkpoint(done)
        ctx.log(f"test instance {done['instance_id']} ({instance_type}) launched from {image_id} in {subnet_id}")
        return done

    def _run(self, ctx: StepContext, ec2: Any, account_id: str, region: str, image_id: str, instance_type: str, subnet_id: str) -> dict[str, Any]:
        token = client_token(ctx.request_uid, account_id, region, image_id, instance_type, subnet_id)
        # A crash between RunInstances and the checkpoint: find the instance by its
        # token tag (AWS also answers a repeated ClientToken with the same instance,
        # but the sandbox does not model that).
        for reservation in ec2.describe_instances(Filters=[{"Name": f"tag:{TOKEN_TAG}", "Values": [token]}])["Reservations"]:
            for instance in reservation["Instances"]:
                return instance
        tags = [
            {"Key": REQUEST_TAG, "Value": ctx.request_id or ctx.request_uid},
            {"Key": PURPOSE_TAG, "Value": "verification"},
            {"Key": DISPOSABLE_TAG, "Value": "true"},  # what the role may terminate
            {"Key": TOKEN_TAG, "Value": token},
            {"Key": "Name", "Value": f"amibot test launch {ctx.request_id or ctx.request_uid}"},
        ]
        # No DryRun first: a dry run checks IAM only, never the KMS key (see module doc).
        return ec2.run_instances(
            ImageId=image_id,
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            ClientToken=token,
            # No public address: the test needs the instance to boot, not to be reachable.
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet_id, "AssociatePublicIpAddress": False, "DeleteOnTermination": True}],
            # If the image shuts itself down, it goes away rather than lingering stopped.
            InstanceInitiatedShutdownBehavior="terminate",
            MetadataOptions={"HttpTokens": "required"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        )["Instances"][0]

    # -- following it ------------------------------------------------------------
    def _follow(self, ctx: StepContext, ec2: Any, account_id: str, region: str, image_id: str, params: "VerifyByTestLaunch.Params", done: dict[str, Any]) -> dict[str, Any]:
        instance_id = done["instance_id"]
        poll = float(params.poll_seconds)
        timeout = float(params.status_timeout_seconds or 900)
        timed_out = time.time() - float(done.get("launched_at", time.time())) > timeout
        # Right after RunInstances the instance may not be visible yet: look again briefly.
        instance = until_visible(ctx, done.get("launched_at"), lambda: _describe(ec2, instance_id), f"test instance {instance_id}", result=done, poll_seconds=poll)
        state = (instance or {}).get("State", {}).get("Name", "pending")
        if state == "pending" and timed_out:
            raise AwsFailure(
                "LaunchTimeout",
                f"test instance {instance_id} still not running after {int(timeout)} s",
                cause=f"The test instance from {image_id} did not start in time.",
                fix="Look at the instance in the EC2 console of that account; ask again later.",
                operation="RunInstances",
            )
        if state == "pending":
            # Also when DescribeInstances does not know the new id yet (EC2 is
            # eventually consistent right after RunInstances).
            raise StepWaiting(f"test instance {instance_id} starting", retry_after=poll, result=done)
        if state in ("shutting-down", "terminated", "stopping", "stopped"):
            reason = instance.get("StateReason") or {}
            code = reason.get("Code") or "Client.UnknownShutdown"
            message = reason.get("Message") or f"test instance {instance_id} is {state}"
            if code == KEY_PROBLEM_REASON:
                failure = explain(code, message, "RunInstances")
                keys = params.key_arns or []
                if keys:
                    failure.fix = f"{failure.fix} Key(s): {', '.join(keys)}."
                failure.cause = f"Test instance {instance_id} from {image_id} in {account_id} terminated at once. {failure.cause}"
                raise failure
            raise AwsFailure(
                code,
                message,
                cause=f"Test instance {instance_id} from {image_id} stopped before it passed its status checks ({state}).",
                fix="Launch the image by hand in that account and look at the instance's system log.",
                operation="RunInstances",
            )
        # running: both status checks must pass (moto reports ok at once; AWS takes minutes).
        statuses = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)["InstanceStatuses"]
        system = (statuses[0].get("SystemStatus") or {}).get("Status") if statuses else None
        own = (statuses[0].get("InstanceStatus") or {}).get("Status") if statuses else None
        if system == "ok" and own == "ok":
            done = {**done, "verified": True, "status_checks": "ok"}
            ctx.checkpoint(done)  # before terminating: a restart then only makes sure it is gone
            _terminate(ctx, ec2, instance_id, done.get("launched_at"))
            done["terminated"] = True
            return done
        if "impaired" in (system, own):
            which = "system" if system == "impaired" else "instance"
            raise AwsFailure(
                "StatusCheckFailed",
                f"{which} status check of {instance_id} is impaired",
                cause=f"An instance from {image_id} starts but fails its {which} status check: the image does not boot properly (kernel, drivers, or the instance type).",
                fix="Check the instance's system log when launching the image by hand; fix the image, then ask again.",
                operation="DescribeInstanceStatus",
            )
        if timed_out:
            raise AwsFailure(
                "StatusCheckTimeout",
                f"status checks of {instance_id} still {own or 'unknown'}/{system or 'unknown'} after {int(timeout)} s",
                cause=f"An instance from {image_id} runs but did not pass its status checks in time.",
                fix="Launch the image by hand and check its system log; ask again if it was a slow boot.",
                operation="DescribeInstanceStatus",
            )
        raise StepWaiting(f"test instance {instance_id} running, status checks {own or 'initializing'}", retry_after=max(poll, 30.0), result=done)


def _default_subnet(ec2: Any, account_id: str, region: str, instance_type: str) -> str:
    """A default subnet of the account's default VPC, in an AZ that offers the type."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    subnets = []
    if vpcs:
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    if not subnets:
        raise AwsFailure(
            "NoVerificationSubnet",
            f"account {account_id} has no default VPC in {region}",
            cause=f"A test launch needs a subnet: account {account_id} has no default VPC (with default subnets) in {region} and no verification subnet is configured.",
            fix=f'Set `verify_subnets = {{ "{region}" = "subnet-…" }}` for that account in the config (a private subnet is enough), or ask without `verify`.',
            operation="RunInstances",
        )
    subnets.sort(key=lambda s: s["AvailabilityZone"])
    # Small types are not offered in every AZ (e.g. t3.micro in us-east-1e).
    try:
        offered = {
            o["Location"]
            for o in ec2.describe_instance_type_offerings(LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}])["InstanceTypeOfferings"]
        }
    except ClientError:
        offered = set()
    for subnet in subnets:
        if subnet["AvailabilityZone"] in offered:
            return subnet["SubnetId"]
    return subnets[0]["SubnetId"]


def _describe(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if read_outcome(error) == MISSING:  # InvalidInstanceID.NotFound (aws.errors decides)
            return None
        raise
    for reservation in reservations:
        for instance in reservation["Instances"]:
            return instance
    return None


def _terminate(ctx: StepContext, ec2: Any, instance_id: str | None, launched_at: float | None) -> bool:
    """Terminate the test instance and confirm it (``shutting-down`` or
    ``terminated``); True once confirmed. Right after RunInstances AWS may answer
    InvalidInstanceID.NotFound (eventual consistency): for an instance launched within
    the consistency window that means "not visible yet", never "already gone", so
    this keeps trying until AWS confirms the termination. Raises if it cannot.
    False when it was already terminated before this call."""
    if not instance_id:
        return False
    sent = []

    def attempt() -> dict[str, Any] | None:
        instance = _describe(ec2, instance_id)
        if instance is not None and instance["State"]["Name"] in ("shutting-down", "terminated"):
            return instance
        try:
            ec2.terminate_instances(InstanceIds=[instance_id])
        except ClientError as error:
            if read_outcome(error) == MISSING:  # InvalidInstanceID.NotFound (aws.errors decides)
                return None  # not visible yet, if launched moments ago
            raise
        sent.append(True)
        instance = _describe(ec2, instance_id)
        if instance is not None and instance["State"]["Name"] in ("shutting-down", "terminated"):
            return instance
        return None

    confirmed = until_visible(ctx, launched_at, attempt, f"test instance {instance_id}", wait_in_place=ctx.consistency_window_seconds)
    if confirmed is None and within_window(ctx, launched_at):
        raise AwsFailure(
            "TestInstanceNotTerminated",
            f"could not confirm the termination of test instance {instance_id}",
            cause=f"amibot launched test instance {instance_id} and could not confirm its termination.",
            fix=f"Terminate {instance_id} by hand in the EC2 console (tag amibot:purpose = verification).",
            operation="TerminateInstances",
        )
    return confirmed is not None and bool(sent)
