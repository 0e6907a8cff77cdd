"""The five scenarios of design.md §1 against two real AWS accounts (opt-in).

The sandbox is written from the same beliefs as the code, so only real AWS can show
a belief is wrong. These tests prepare each request exactly as the bot does
(``bot.grammar`` → ``bot.verbs.registry.prepare``: preflight and plan) and run its plan
through the same registered actions (``aws.actions``) the worker runs, step by step,
waiting on ``StepWaiting`` as the worker does. No Slack, no database.

Off by default: they run only with ``-m real_aws`` *and* the environment below, so
``make test`` never touches an AWS account even where credentials are set::

    AMIBOT_REAL_SOURCE_ROLE_ARN   role the bot assumes in the source account (owns the AMI)
    AMIBOT_REAL_TARGET_ROLE_ARN   role the bot assumes in the target account
    AMIBOT_REAL_AMI               an AMI of the source account in AMIBOT_REAL_REGION,
                                  unencrypted or encrypted with a customer-managed key
    AMIBOT_REAL_REGION            default us-east-1
    AMIBOT_REAL_OTHER_REGION      destination of the cross-region copy; default us-west-2
    AMIBOT_REAL_TARGET_KMS        target CMK for the same-region copy (default: the
                                  target's default EBS key)
    AMIBOT_REAL_TARGET_KMS_OTHER  target CMK in the other region (same default)
    AMIBOT_REAL_SOURCE_KMS        source CMK: when the AMI is unencrypted, the
                                  "share encrypted" scenario first copies it in the
                                  source account with this key (else that scenario skips)
    AMIBOT_REAL_TARGET_SUBNET     subnet for the target's test launches (else its default VPC)
    AMIBOT_REAL_INSTANCE          an instance of the source account to migrate (with
                                  no-reboot; the instance itself is never changed)
    AMIBOT_REAL_TIMEOUT_MINUTES   per plan; default 60 (cross-region copies are slow)
    AMIBOT_REAL_BILLING_AMI       optional: an AMI of the source account carrying a billing
                                  product code (an image of a Windows or RHEL instance):
                                  its copy to the target must be refused before anyone
                                  is asked (docs/aws-rules.md; else that scenario skips)
    AMIBOT_REAL_CLEANUP_ROLES     comma-separated role ARNs (one per account) that remove what
                                  amibot's role may not delete (delivered copies, migrated
                                  instances); else the caller's own credentials
    AMIBOT_REAL_LAUNCH_ROLES      comma-separated role ARNs of the target account that
                                  launch instances (config ``launch_roles``): the encrypted
                                  share asks IAM about them (SimulatePrincipalPolicy)

The runner's own credentials (boto3's usual chain) must be allowed to assume both
roles; the roles need the member-account policy of ``amibot iam-policy``.

Everything a scenario creates is removed in ``finally`` blocks, also when it fails:
the steps' own ``undo`` (launch and snapshot permissions, grants, unfinished copies),
then what undo keeps on purpose (finished copies and migration images are
deregistered and their snapshots deleted; test and migrated instances terminated),
then a sweep by the ``amibot:request`` tag. A scenario that leaves anything behind
fails and names it.

``AMIBOT_REAL_SANDBOX=1 pytest -m real_aws tests/real_aws`` plays the same code
against the sandbox instead (a check of this harness, not of AWS); the default suite
does that too (``test_harness_rehearsed_on_the_sandbox``), so the harness cannot rot
unnoticed between real runs.
"""

from __future__ import annotations

import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from aws.actions import StepContext, StepWaiting, get_action
from aws.actions.inspect import inspect_image
from aws.sessions import AccountAccess, AwsSessions
from bot.errors import PreflightError

REQUESTER = "U0REALAWS"
REQUIRED = ("AMIBOT_REAL_SOURCE_ROLE_ARN", "AMIBOT_REAL_TARGET_ROLE_ARN", "AMIBOT_REAL_AMI")
# Actions whose results name something they created and that undo keeps on purpose.
CREATES_IMAGE = ("ec2.copy_image", "ec2.create_image_from_instance")
CREATES_INSTANCE = ("ec2.launch_migrated_instance", "verify.test_launch")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RealSettings:
    """Where the scenarios run, from the environment."""

    source_role: str
    target_role: str
    ami: str
    region: str = "us-east-1"
    other_region: str = "us-west-2"
    target_kms: str | None = None
    target_kms_other: str | None = None
    source_kms: str | None = None
    target_subnet: str | None = None
    instance: str | None = None
    billing_ami: str | None = None
    timeout_seconds: float = 3600.0
    step_sleep: Callable[[float], None] = time.sleep
    launch_roles: tuple[str, ...] = ()
    # Who removes what amibot's role may no longer delete (a delivered copy, a migrated
    # instance: aws.actions.disposable): per account, a role ARN, else the caller's own credentials.
    cleanup_roles: dict[str, str] = field(default_factory=dict)

    @property
    def source_id(self) -> str:
        return self.source_role.split(":")[4]

    @property
    def target_id(self) -> str:
        return self.target_role.split(":")[4]

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ = os.environ) -> "RealSettings | None":
        if not all(env.get(name) for name in REQUIRED):
            return None
        return cls(
            source_role=env["AMIBOT_REAL_SOURCE_ROLE_ARN"],
            target_role=env["AMIBOT_REAL_TARGET_ROLE_ARN"],
            ami=env["AMIBOT_REAL_AMI"],
            region=env.get("AMIBOT_REAL_REGION") or "us-east-1",
            other_region=env.get("AMIBOT_REAL_OTHER_REGION") or "us-west-2",
            target_kms=env.get("AMIBOT_REAL_TARGET_KMS") or None,
            target_kms_other=env.get("AMIBOT_REAL_TARGET_KMS_OTHER") or None,
            source_kms=env.get("AMIBOT_REAL_SOURCE_KMS") or None,
            target_subnet=env.get("AMIBOT_REAL_TARGET_SUBNET") or None,
            instance=env.get("AMIBOT_REAL_INSTANCE") or None,
            billing_ami=env.get("AMIBOT_REAL_BILLING_AMI") or None,
            timeout_seconds=float(env.get("AMIBOT_REAL_TIMEOUT_MINUTES") or 60) * 60,
            launch_roles=tuple(r.strip() for r in (env.get("AMIBOT_REAL_LAUNCH_ROLES") or "").split(",") if r.strip()),
            cleanup_roles={r.split(":")[4]: r for r in (env.get("AMIBOT_REAL_CLEANUP_ROLES") or "").split(",") if r.strip()},
        )


def config_toml(settings: RealSettings) -> str:
    """A bot config for the two accounts (aliases ``src`` and ``dst``)."""
    subnet = f'verify_subnets = {{ "{settings.region}" = "{settings.target_subnet}" }}\n' if settings.target_subnet else ""
    if settings.launch_roles:
        subnet += "launch_roles = [" + ", ".join(f'"{r}"' for r in settings.launch_roles) + "]\n"
    return f"""
[bot]
default_region = "{settings.region}"
poll_interval_seconds = 15

[accounts.src]
id = "{settings.source_id}"
role_arn = "{settings.source_role}"
owners = ["U0SRCOWNER"]

[accounts.dst]
id = "{settings.target_id}"
role_arn = "{settings.target_role}"
owners = ["U0DSTOWNER"]
{subnet}"""


@dataclass
class World:
    """The settings, the bot's config and sessions for them."""

    settings: RealSettings
    config: Any
    sessions: AwsSessions
    cleanup: Any  # .client(service, account, region, tag): AwsSessions, or the sandbox's administrator

    @classmethod
    def build(cls, settings: RealSettings) -> "World":
        from bot.config import parse_config

        config = parse_config(config_toml(settings), {}, source="<real_aws settings>")
        sessions = AwsSessions(
            {
                settings.source_id: AccountAccess(settings.source_id, settings.source_role),
                settings.target_id: AccountAccess(settings.target_id, settings.target_role),
            },
            base_session=lambda: boto3.Session(),  # looked up per call (see shared_service_models)
        )
        cleanup = AwsSessions(
            {a: AccountAccess(a, settings.cleanup_roles.get(a)) for a in (settings.source_id, settings.target_id)},
            base_session=lambda: boto3.Session(),
        )
        return cls(settings, config, sessions, cleanup)

    def client(self, service: str, account_id: str, region: str | None = None) -> Any:
        return self.sessions.client(service, account_id, region or self.settings.region, "real-aws-check")

    def cleanup_client(self, service: str, account_id: str, region: str | None = None) -> Any:
        """A client for the cleanup of what amibot's role may not delete."""
        return self.cleanup.client(service, account_id, region or self.settings.region, "real-aws-cleanup")


# --------------------------------------------------------------------------- running a plan


@dataclass
class PlanRun:
    """One request: prepared as the bot prepares it, its steps run as the worker runs
    them (``execute`` again after ``StepWaiting``, with what was checkpointed), and
    everything it made removed by :meth:`cleanup`."""

    world: World
    text: str
    uid: str = field(default_factory=lambda: secrets.token_hex(8))
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    prepared: Any = None

    def __post_init__(self) -> None:
        from bot.grammar import parse_command
        from bot.verbs.common import PlanningContext
        from bot.verbs.registry import prepare

        self.request_id = f"R-real-{self.uid[:6]}"
        planning = PlanningContext(config=self.world.config, sessions=self.world.sessions, uid=self.uid, requester=REQUESTER)
        self.prepared = prepare(planning, parse_command(self.text))
        for seq, planned in enumerate(self.prepared.steps, start=1):
            self.add_step(planned.action, planned.account_id, planned.region, planned.params, seq=seq)

    def add_step(self, action: str, account_id: str, region: str, params: dict[str, Any], seq: int | None = None) -> int:
        """Append a step (e.g. a test launch the plan does not include)."""
        seq = seq or max(self.steps, default=0) + 1
        self.steps[seq] = {"action": action, "account_id": account_id, "region": region, "params": params, "result": {}, "state": "pending"}
        return seq

    def context(self, seq: int) -> StepContext:
        step = self.steps[seq]

        def checkpoint(result: dict[str, Any]) -> None:
            step["result"].update(result)
            step["state"] = "started"

        return StepContext(
            sessions=self.world.sessions,
            request_uid=self.uid,
            session_tag=f"{self.request_id}-{self.uid}",
            checkpoint=checkpoint,
            sleep=self.world.settings.step_sleep,
            log=lambda text: print(f"{self.request_id} step {seq}: {text}"),
            previous=dict(step["result"]),
            request_id=self.request_id,
            requester=REQUESTER,
            approvers=["U0SRCOWNER", "U0DSTOWNER"],
            results={s: dict(v["result"]) for s, v in self.steps.items()},
            steps={s: dict(v) for s, v in self.steps.items()},
        )

    def run(self) -> dict[int, dict[str, Any]]:
        """Run every pending step in order; returns the results by seq."""
        deadline = time.monotonic() + self.world.settings.timeout_seconds
        for seq in sorted(self.steps):
            step = self.steps[seq]
            if step["state"] == "done":
                continue
            while True:
                try:
                    result = get_action(step["action"]).execute(self.context(seq), step["account_id"], step["region"], step["params"])
                except StepWaiting as waiting:
                    step["result"].update(waiting.result)
                    step["state"] = "started"
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{self.request_id} step {seq} {step['action']} still waiting: {waiting.progress}")
                    print(f"{self.request_id} step {seq}: {waiting.progress}")
                    self.world.settings.step_sleep(min(max(waiting.retry_after, 5.0), 60.0))
                    continue
                step["result"].update(result)
                step["state"] = "done"
                if step["action"] == "plan.remove_temporary":
                    # What the worker's settle_copy records: those steps are undone.
                    for undone in step["params"].get("steps", []):
                        self.steps[int(undone)]["state"] = "undone"
                break
        return {seq: step["result"] for seq, step in self.steps.items()}

    def result_of(self, action: str) -> dict[str, Any]:
        return next(step["result"] for step in self.steps.values() if step["action"] == action)

    def cleanup(self, protected: set[str]) -> list[str]:
        """Remove everything this request made; returns what could not be removed."""
        problems: list[str] = []
        # 1. The steps' own undo, newest first (also for steps that started and never
        #    finished: an unfinished copy is deregistered by its undo).
        for seq in sorted(self.steps, reverse=True):
            step = self.steps[seq]
            if step["state"] not in ("done", "started"):
                continue
            action = get_action(step["action"])
            if action.undoable:
                try:
                    said = action.undo(self.context(seq), step["account_id"], step["region"], step["params"], step["result"])
                    if said:
                        print(f"{self.request_id} cleanup: {said}")
                except Exception as error:  # Kept (a finished image, a launched instance) is handled below
                    print(f"{self.request_id} cleanup: undo of step {seq} {step['action']}: {error}")
            step["state"] = "undone"
        # 2. What undo keeps on purpose: instances first, then images and snapshots.
        for step in self.steps.values():
            instance_id = step["result"].get("instance_id")
            if step["action"] in CREATES_INSTANCE and instance_id and instance_id not in protected:
                problems += terminate(self.world.cleanup_client("ec2", step["account_id"], step["region"]), instance_id)
        for step in self.steps.values():
            image_id = step["result"].get("image_id")
            if step["action"] in CREATES_IMAGE and image_id and image_id not in protected:
                problems += delete_image(self.world.cleanup_client("ec2", step["account_id"], step["region"]), image_id)
        # 3. Anything else tagged with this request, in every account and region it touched.
        places = {(step["account_id"], step["region"]) for step in self.steps.values()}
        for account_id, region in sorted(places):
            problems += sweep(self.world.cleanup_client("ec2", account_id, region), self.request_id, protected)
        return problems


def terminate(ec2: Any, instance_id: str) -> list[str]:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
            return []
        return [f"instance {instance_id}: {error}"]
    states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
    if states and states[0] not in ("shutting-down", "terminated"):
        try:
            ec2.terminate_instances(InstanceIds=[instance_id])
            print(f"cleanup: terminated {instance_id}")
        except ClientError as error:
            return [f"instance {instance_id}: {error}"]
    return []


def delete_image(ec2: Any, image_id: str) -> list[str]:
    """Deregister an image and delete its snapshots (AWS keeps them otherwise)."""
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return []
        return [f"image {image_id}: {error}"]
    if not images:
        return []
    snapshots = [m["Ebs"]["SnapshotId"] for m in images[0].get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    problems = []
    try:
        ec2.deregister_image(ImageId=image_id)
        print(f"cleanup: deregistered {image_id}")
    except ClientError as error:
        return [f"image {image_id}: {error}"]
    for snapshot_id in snapshots:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
            print(f"cleanup: deleted {snapshot_id}")
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
                problems.append(f"snapshot {snapshot_id}: {error}")
    return problems


def sweep(ec2: Any, request_id: str, protected: set[str]) -> list[str]:
    """Terminate instances and delete images still tagged with this request."""
    problems: list[str] = []
    # Tag filters accept wildcards: migrate tags "R-…-<uid>", the others "R-…".
    tag_filter = [{"Name": "tag:amibot:request", "Values": [request_id, f"{request_id}-*"]}]
    for reservation in ec2.describe_instances(Filters=tag_filter)["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["InstanceId"] not in protected:
                problems += terminate(ec2, instance["InstanceId"])
    for image in ec2.describe_images(Owners=["self"], Filters=tag_filter)["Images"]:
        if image["ImageId"] not in protected:
            problems += delete_image(ec2, image["ImageId"])
    for snapshot in ec2.describe_snapshots(OwnerIds=["self"], Filters=tag_filter)["Snapshots"]:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
                problems.append(f"snapshot {snapshot['SnapshotId']}: {error}")
    return problems


@contextmanager
def cleaned_up(world: World, *runs: PlanRun) -> Iterator[None]:
    """Clean every run up in ``finally``; a clean-up problem fails a passing test
    (and is printed when the test already failed, so the first error stays visible)."""
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        protected = {world.settings.ami} | ({world.settings.instance} if world.settings.instance else set())
        problems: list[str] = []
        for run in reversed(runs):
            problems += run.cleanup(protected)
        if problems:
            print("LEFT BEHIND:\n" + "\n".join(problems))
            if not failed:
                pytest.fail("cleanup left resources behind:\n" + "\n".join(problems))


# --------------------------------------------------------------------------- checks


def sees_image(world: World, account_id: str, region: str, image_id: str) -> bool:
    try:
        return bool(world.client("ec2", account_id, region).describe_images(ImageIds=[image_id])["Images"])
    except ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return False
        raise


def grant_names(world: World, key_arn: str) -> set[str]:
    kms = world.client("kms", world.settings.source_id, key_arn.split(":")[3])
    return {g.get("Name", "") for g in kms.list_grants(KeyId=key_arn)["Grants"]}


def source_facts(world: World, image_id: str) -> Any:
    return inspect_image(world.sessions, world.settings.source_id, world.settings.region, image_id, tag="real-aws-check")


def assert_copy_belongs_to_target(world: World, run: PlanRun, region: str) -> str:
    copy_id = run.result_of("ec2.copy_image")["image_id"]
    checked = run.result_of("verify.copy")  # the plan's own check from the target's side
    assert checked["owner"] == world.settings.target_id
    ec2 = world.client("ec2", world.settings.target_id, region)
    image = ec2.describe_images(ImageIds=[copy_id])["Images"][0]
    assert image["OwnerId"] == world.settings.target_id and image["State"] == "available" and not image.get("Public")
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags.get("amibot:source-ami") == world.settings.ami and tags.get("amibot:request") == run.request_id
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if m.get("Ebs", {}).get("SnapshotId")]
    for snapshot in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert snapshot["Encrypted"] and snapshot["KmsKeyId"] == checked["kms_key_arn"], "encrypted with the target's own key"
        assert snapshot["OwnerId"] == world.settings.target_id
        # Tagged at creation: the member policy lets amibot delete only what carries it.
        assert {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}.get("amibot:request") == run.request_id
    # The temporary share is gone (unless the target could see the AMI before).
    shares = [step for step in run.steps.values() if step["action"] == "ec2.add_launch_permission"]
    if shares and shares[0]["result"].get("added"):
        assert not sees_image(world, world.settings.target_id, world.settings.region, world.settings.ami)
    return copy_id


# --------------------------------------------------------------------------- scenarios


def scenario_share(world: World) -> None:
    """1. Share: launch permission for the target; the target sees the AMI; the
    share's own check from the target passes; undo removes it again."""
    s = world.settings
    run = PlanRun(world, f"share {s.ami} from src:{s.region} to dst")
    with cleaned_up(world, run):
        run.run()
        assert sees_image(world, s.target_id, s.region, s.ami)
        permissions = world.client("ec2", s.source_id).describe_image_attribute(ImageId=s.ami, Attribute="launchPermission")["LaunchPermissions"]
        assert {"UserId": s.target_id} in permissions
        added = run.result_of("ec2.add_launch_permission")["added"]
        run.cleanup({s.ami})
        if added:
            assert not sees_image(world, s.target_id, s.region, s.ami), "undo removed the launch permission"


def scenario_share_encrypted(world: World) -> None:
    """2. Share encrypted: a named grant on the CMK to the target's root with exactly
    the five operations; then a real test launch from the target (the launch that
    ends in Client.InternalError without the grant) passes and is terminated; undo
    revokes the grant. An unencrypted AMI is first copied in the source account with
    AMIBOT_REAL_SOURCE_KMS (amibot's own fix for an AMI that cannot be shared as is)."""
    s = world.settings
    facts = source_facts(world, s.ami)
    encrypt_run = None
    if not facts.keys:
        if not s.source_kms:
            pytest.skip("AMIBOT_REAL_AMI is unencrypted and AMIBOT_REAL_SOURCE_KMS is not set: nothing encrypted to share")
        name = f"amibot-real-encrypted-{secrets.token_hex(3)}"
        encrypt_run = PlanRun(world, f'copy {s.ami} from src:{s.region} to src:{s.region} kms {s.source_kms} name "{name}"')
    with cleaned_up(world, *([encrypt_run] if encrypt_run else [])):
        image_id = s.ami
        if encrypt_run:
            encrypt_run.run()
            image_id = encrypt_run.result_of("ec2.copy_image")["image_id"]
            facts = source_facts(world, image_id)
        assert facts.keys and all(k.manager == "CUSTOMER" for k in facts.keys)
        share_run = PlanRun(world, f"share {image_id} from src:{s.region} to dst")
        grant = f"amibot-{share_run.uid}-{s.target_id}"
        with cleaned_up(world, share_run):
            launch = share_run.add_step(
                "verify.test_launch", s.target_id, s.region,
                {"image_id": image_id, "subnet_id": s.target_subnet, "key_arns": [k.arn for k in facts.keys], "poll_seconds": 15},
            )
            share_run.run()
            assert share_run.result_of("kms.create_grant")["grant_id"]
            if s.launch_roles:
                # IAM answered for each launch role (the answer itself is the target's business).
                answers = share_run.result_of("verify.launch_roles")["roles"]
                assert [a["role_arn"] for a in answers] == list(s.launch_roles)
                assert not [a for a in answers if a["error"]], answers
            for key in facts.keys:
                assert grant in grant_names(world, key.arn)
            tested = share_run.steps[launch]["result"]
            assert tested["verified"] and tested["terminated"]
            share_run.cleanup({s.ami})
            for key in facts.keys:
                assert grant not in grant_names(world, key.arn), "undo revoked the grant"


def scenario_copy(world: World, *, cross_region: bool) -> None:
    """4/5. Copy into the target account (optionally into another region), encrypted
    with the target's key, tags carried, temporary share removed; in the same region
    also a test launch of the copy (``verify``)."""
    s = world.settings
    region = s.other_region if cross_region else s.region
    kms = s.target_kms_other if cross_region else s.target_kms
    text = f"copy {s.ami} from src:{s.region} to dst:{region}" + (f" kms {kms}" if kms else "") + ("" if cross_region else " verify")
    run = PlanRun(world, text)
    with cleaned_up(world, run):
        run.run()
        assert_copy_belongs_to_target(world, run, region)
        if not cross_region:
            tested = run.result_of("verify.test_launch")
            assert tested["verified"] and tested["terminated"]


def scenario_refused_before_asking(world: World) -> None:
    """A billing-coded AMI is not copied to another account: refused in the
    preflight, with AWS's words and the fix (docs/aws-rules.md), nothing created."""
    s = world.settings
    if not s.billing_ami:
        pytest.skip("set AMIBOT_REAL_BILLING_AMI to check the billing-code refusal")
    with pytest.raises(PreflightError) as refused:
        PlanRun(world, f"copy {s.billing_ami} from src:{s.region} to dst:{s.region}")
    assert "Images with EC2 BillingProduct codes cannot be copied to another AWS account" in str(refused.value)
    assert "CopyingAMIs.html" in str(refused.value)


def scenario_migrate(world: World) -> None:
    """1 (migrate). Image of the instance (no reboot), a new instance in another AZ of
    the same VPC with the same type, security groups and key pair; the source is
    left as it was. Cleanup terminates the new instance and deletes the image."""
    s = world.settings
    if not s.instance:
        pytest.skip("AMIBOT_REAL_INSTANCE is not set")
    ec2 = world.client("ec2", s.source_id)
    source = ec2.describe_instances(InstanceIds=[s.instance])["Reservations"][0]["Instances"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [source["VpcId"]]}])["Subnets"]
    zones = sorted({n["AvailabilityZone"] for n in subnets} - {source["Placement"]["AvailabilityZone"]})
    if not zones:
        pytest.skip(f"the VPC of {s.instance} has subnets in one AZ only")
    run = PlanRun(world, f"migrate {s.instance} from src:{s.region} to {zones[0]} no-reboot")
    with cleaned_up(world, run):
        run.run()
        launched = run.result_of("ec2.launch_migrated_instance")
        new = ec2.describe_instances(InstanceIds=[launched["instance_id"]])["Reservations"][0]["Instances"][0]
        assert new["Placement"]["AvailabilityZone"] == zones[0] and new["VpcId"] == source["VpcId"]
        assert new["InstanceType"] == source["InstanceType"] and new.get("KeyName") == source.get("KeyName")
        assert {g["GroupId"] for g in new["SecurityGroups"]} == {g["GroupId"] for g in source["SecurityGroups"]}
        after = ec2.describe_instances(InstanceIds=[s.instance])["Reservations"][0]["Instances"][0]
        assert after["State"]["Name"] == source["State"]["Name"], "the source instance is left as it was"


# --------------------------------------------------------------------------- the tests


def _selected(request: pytest.FixtureRequest) -> bool:
    return "real_aws" in (request.config.getoption("markexpr", default="") or "")


@pytest.fixture(scope="module")
def real(request: pytest.FixtureRequest) -> World:
    if not _selected(request):
        pytest.skip("real AWS is opt-in: pytest -m real_aws tests/real_aws (see README)")
    if os.environ.get("AMIBOT_REAL_SANDBOX") == "1":
        sandbox = request.getfixturevalue("sandbox_session")
        return World.build(rehearsal_settings(sandbox))
    settings = RealSettings.from_env()
    if settings is None:
        pytest.skip("set " + ", ".join(REQUIRED) + " to play the scenarios against real AWS")
    if settings.source_id == settings.target_id:
        pytest.skip("the source and target roles must be in two different accounts")
    return World.build(settings)


@pytest.mark.real_aws
def test_real_share(real):
    scenario_share(real)


@pytest.mark.real_aws
def test_real_share_encrypted(real):
    scenario_share_encrypted(real)


@pytest.mark.real_aws
def test_real_copy_cross_account(real):
    scenario_copy(real, cross_region=False)


@pytest.mark.real_aws
def test_real_copy_cross_account_and_region(real):
    scenario_copy(real, cross_region=True)


@pytest.mark.real_aws
def test_real_migrate(real):
    scenario_migrate(real)


@pytest.mark.real_aws
def test_real_billing_coded_copy_refused(real):
    scenario_refused_before_asking(real)


# --------------------------------------------------------------------------- the harness, on the sandbox


def rehearsal_settings(sandbox: Any) -> RealSettings:
    """A sandbox world shaped like the real one: an unencrypted AMI and a CMK in the
    source account, CMKs in both regions in the target, an instance to migrate."""
    from aws.actions.launchroles import required_statement
    from aws.iam import member_account_policy

    source, target, region, other = "111111111111", "222222222222", "us-east-1", "eu-west-1"
    sandbox.reset()
    source_kms = sandbox.create_key(source, region, alias="alias/real-source")
    instance = sandbox.create_instance(source, region, availability_zone=f"{region}a", tags={"Name": "web-1"})
    billing_ami = sandbox.create_image(source, region, name="rhel-base")
    sandbox.mark_image(billing_ami, usage_operation="RunInstances:0010", platform_details="Red Hat Enterprise Linux")
    # As a real run requires: the roles hold the policy `amibot iam-policy` prints
    # (the sandbox enforces it), and the target has a launching role to ask IAM about.
    for account in (source, target):
        sandbox.attach_role_policy(account, "amibot", member_account_policy())
    launcher = sandbox.attach_role_policy(target, "app-deployer", required_statement(["*"], region))
    return RealSettings(
        source_role=f"arn:aws:iam::{source}:role/amibot",
        target_role=f"arn:aws:iam::{target}:role/amibot",
        ami=sandbox.create_image(source, region, name="base-al2023", tags={"app": "base"}),
        region=region,
        other_region=other,
        target_kms=sandbox.create_key(target, region, alias="alias/real-target"),
        target_kms_other=sandbox.create_key(target, other, alias="alias/real-target"),
        source_kms=source_kms,
        instance=instance,
        billing_ami=billing_ami,
        timeout_seconds=30,
        step_sleep=lambda seconds: None,
        launch_roles=(launcher,),
    )


@pytest.fixture
def shared_service_models(monkeypatch):
    """Every boto3 Session made during the test reads botocore's service models once.
    Each request gets its own AssumeRole sessions, and each new session otherwise
    parses the multi-megabyte EC2 model again (about 1 s per plan here); speed only."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()
    real_session = boto3.Session

    def session(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("botocore_session") is None:
            core = botocore.session.get_session()
            core.register_component("data_loader", loader)
            kwargs["botocore_session"] = core
        return real_session(*args, **kwargs)

    monkeypatch.setattr(boto3, "Session", session)


def test_harness_rehearsed_on_the_sandbox(sandbox, shared_service_models):
    """The five scenarios, their checks and their cleanup, on the sandbox: proves the
    harness works and cleans up (nothing tagged with a request survives), so a real
    run is not the first time this code runs."""
    world = World.build(rehearsal_settings(sandbox))
    # The accounts' administrator removes what amibot's role may not delete.
    world.cleanup = SimpleNamespace(client=lambda service, account, region, tag: sandbox.session(account, region).client(service))
    s = world.settings
    scenario_share(world)
    scenario_share_encrypted(world)
    scenario_copy(world, cross_region=False)
    scenario_copy(world, cross_region=True)
    scenario_migrate(world)
    scenario_refused_before_asking(world)

    # Cleaned up: the target sees nothing of the source, owns no image, runs nothing;
    # the source owns only its AMI and runs only its instance.
    assert not sees_image(world, s.target_id, s.region, s.ami)
    for account, region in ((s.target_id, s.region), (s.target_id, s.other_region), (s.source_id, s.region)):
        ec2 = world.client("ec2", account, region)
        images = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"] if i["State"] != "deregistered"}
        running = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"] if i["State"]["Name"] not in ("shutting-down", "terminated")}
        assert images <= {s.ami, s.billing_ami}, (account, region, images)
        assert running <= {s.instance}, (account, region, running)
    key_grants = world.client("kms", s.source_id).list_grants(KeyId=s.source_kms)["Grants"]
    assert not [g for g in key_grants if g.get("GranteePrincipal", "").startswith(f"arn:aws:iam::{s.target_id}:")]
