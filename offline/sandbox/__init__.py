"""The sandbox: moto plus the AWS semantics amibot depends on.

amibot's tests, ``amibot demo`` and ``amibot serve --sandbox`` run against moto. moto
stores what the bot does (launch permissions, snapshot permissions, grants, copies)
but does not act on it the way AWS does, so a bot that forgot a grant or a snapshot
permission would pass. This package monkeypatches moto's response and model classes
(once per process, idempotently) so that, while a :class:`Sandbox` is started, moto
behaves like AWS on the points below. Every patch hands the call to moto's original
code when no sandbox is running or when the sandbox rule does not apply, so plain
``moto.mock_aws`` tests in the same process keep moto's behaviour. The patches sit at
the response/backend level, so they work in-process (``mock_aws``) and for a
``ThreadedMotoServer`` running in the same process.

Semantics the sandbox adds (moto gap it papers over in brackets):

1. Cross-account visibility. ``DescribeImages`` shows another account's AMI only to an
   account with launch permission (``UserId``, ``Group: all``, or an Organization /
   OU ARN the caller belongs to, compared on org id / OU id); otherwise
   ``InvalidAMIID.NotFound``. ``ExecutableUsers`` (``self``/``all``/id), ``Owners`` and
   filters work on that set. The owner's tags are not shown to other accounts.
   ``DescribeSnapshots`` likewise shows another account's snapshot only with
   ``createVolumePermission``. [moto: accounts are fully separate, a shared AMI is
   invisible to its target.]
2. ``ModifySnapshotAttribute`` with ``CreateVolumePermission={"Add"/"Remove": [...]}``
   works and ``DescribeSnapshotAttribute`` shows it; sharing a snapshot encrypted with
   an AWS-managed key is refused (``OperationNotPermitted``). [moto: the structured form
   is silently ignored.]
3. KMS key manager: keys behind ``alias/aws/*`` (``aws/ebs`` included) report
   ``KeyManager: AWS`` and carry the AWS-managed key policy (usable only by the owning
   account, through the AWS service); they cannot be granted on, re-policied, disabled
   or deleted directly. [moto: every key is ``CUSTOMER``.]
4. Cross-account KMS. Another account's key (by key or alias ARN) can be used only if
   a grant to a principal of the caller's account lists the operation, or the key
   policy allows it (principal root / account id / IAM ARN of the caller's account, or
   ``"*"`` with conditions on ``aws:PrincipalOrgID`` / ``aws:PrincipalOrgPaths`` /
   ``aws:PrincipalAccount`` / ``kms:CallerAccount``; unknown conditions fail closed);
   otherwise ``AccessDeniedException``. ``ListGrants`` and ``RevokeGrant`` need the key
   policy (grants cannot give them). A grant made *through* a grant may not widen it.
   ``DryRun`` on ``CreateGrant`` (and the crypto operations) checks and then answers
   ``DryRunOperationException``. Disabled keys answer ``DisabledException`` and keys
   pending deletion ``KMSInvalidStateException`` for grants and crypto
   (``DescribeKey`` still works and shows ``KeyState``, as in AWS). ``CreateGrant`` with
   a ``Name`` returns the existing grant when name, grantee, operations, constraints and
   retiring principal are identical. Grant operations are validated. Optionally, new
   grants take effect after a delay (:meth:`Sandbox.set_grant_delay`), like KMS's
   eventual consistency. [moto: nothing checks grants or policies, cross-account calls
   give ``NotFoundException`` or a raw ``KeyError``, ``DryRun`` is ignored (a real grant
   is made), a named grant is made twice.]
5. Cross-account and cross-region ``CopyImage``. The source is looked up in
   ``SourceRegion`` across accounts; the caller needs launch permission
   (else ``InvalidAMIID.NotFound``) and ``createVolumePermission`` on every snapshot
   (else ``InvalidRequest`` "You do not have permission to access the storage of this
   ami"). The copy is owned by the caller in the destination region; its snapshots are
   owned by the caller and encrypted when ``Encrypted=True`` or when the source is
   encrypted (an encrypted source never yields an unencrypted copy), with ``KmsKeyId``
   or else the caller's default EBS key (``alias/aws/ebs``). Key problems show up
   asynchronously, as in AWS: the call succeeds and the image becomes ``failed`` with a
   ``StateReason`` naming the key when the caller cannot ``Decrypt`` with the source key
   (grant / policy, enabled) or the destination key is missing, in another region,
   disabled or not usable. ``TagSpecifications`` (``image`` and ``snapshot``) are
   applied; ``CopyImageTags`` copies the source's tags only within one account.
   ``ClientToken``: same token and parameters give the same ``ImageId``, different
   parameters ``IdempotentParameterMismatch``. An unknown ``SourceRegion`` gives
   ``InvalidParameterValue``. [moto: same account only, ignores ``Encrypted``,
   ``KmsKeyId``, ``CopyImageTags``, ``TagSpecifications`` and ``ClientToken``.]
6. Pending state. Images made by ``CopyImage``/``CreateImage`` are ``available`` at once
   by default; with :meth:`Sandbox.hold_pending` they stay ``pending`` (snapshots
   ``pending`` with ``Progress``) until :meth:`Sandbox.set_copy_progress` /
   :meth:`Sandbox.advance` / :meth:`Sandbox.complete` / :meth:`Sandbox.release` /
   :meth:`Sandbox.fail`; with ``copy_duration`` they progress with wall time (for the
   demo and ``serve --sandbox``). ``failed`` images carry a ``StateReason``. [moto:
   images are never pending, snapshots always ``100%``.]
7. Fault injection: :meth:`Sandbox.inject_fault` makes the next N calls of an API
   operation (any service, any account) answer an error with a chosen code and HTTP
   status, so botocore's real retry logic runs; :meth:`Sandbox.calls` counts requests
   received (retries included).
8. ``CreateImage`` with ``TagSpecifications`` for ``snapshot`` tags the snapshots; the
   image gets one snapshot per instance volume, carrying the volume's size and
   encryption. [moto: ``NotImplementedError`` (HTTP 500 in server mode); one fixed
   unencrypted 15 GiB snapshot.]
9. Raw Python errors become AWS errors: ``DescribeImageAttribute`` on an unknown AMI
   gives ``InvalidAMIID.NotFound`` (``AuthFailure`` for a visible AMI of another
   account); KMS ``DisableKey``/``EnableKey``/``ScheduleKeyDeletion``/
   ``CancelKeyDeletion`` accept key ARNs; any other ``KeyError`` raised by moto while
   answering becomes an AWS error in the service's format (KMS ``NotFoundException``,
   EC2 ``InvalidAMIID.NotFound`` / ``InvalidSnapshot.NotFound`` for image / snapshot
   calls, else ``InternalError`` 500). [moto: ``KeyError`` → HTML 500 in server mode →
   botocore ``ResponseParserError``, which is not retried.]
10. ``RunInstances`` from another account's AMI needs launch permission
    (``InvalidAMIID.NotFound``); from an AMI whose snapshot key the caller cannot use
    (``Decrypt`` and ``CreateGrant``; or a disabled key) the instance is created and at
    once ``terminated`` with ``StateReason`` ``Client.InternalError``, as AWS does (a
    ``DryRun`` launch does not check keys, as in AWS). An AMI id that exists nowhere is
    left to moto (no AMI validation), so tests may use made-up ids. ``ClientToken``:
    same token and parameters give the first call's reservation again, different
    parameters ``IdempotentParameterMismatch``. [moto: ignores ``ClientToken``, a retry
    launches a second instance.]
12. Eventual consistency (``consistency``): new images, snapshots, instances and
    grants are invisible to describes (``*.NotFound`` by id), TerminateInstances and
    ListGrants for ``consistency_delay`` seconds (to the bot; the sandbox's own
    sessions see everything). [moto: everything is visible at once.]
11. Sessions: :meth:`Sandbox.session` acts as an account through
    ``sts.assume_role`` into ``arn:aws:iam::<id>:role/amibot``; the credentials keep
    mapping to that account after :meth:`Sandbox.reset`. [moto forgets them on reset
    and silently falls back to the default account.]

Layout: ``state`` (the sandbox's state, moto backend lookups), ``visibility``
(who sees an AMI or snapshot), ``policy`` (KMS key policies and grants), ``iam_eval``
(the policy evaluator), ``identity`` (callers and their IAM policies), ``iam_enforce``
and ``iam_simulate`` (IAM on the wire), ``wire``
(error responses, caller identity, request dispatch), ``ec2_lifecycle`` (pending /
available / failed), ``ec2_images``, ``ec2_snapshots``, ``ec2_instances``, ``kms``
(the patches, by service), ``install`` (patching moto), and the :class:`Sandbox`
methods in this module plus ``world`` (seeding) and ``controls`` (steering).

12. IAM. Every KMS use obeys the key policy, the account's own keys included (a key
    without the usual statement for the account's root refuses its own account), with
    ``NotPrincipal`` / ``NotAction`` honoured and Deny winning; a grant to a role is
    not a grant to its account. While enforcement is on
    (:meth:`Sandbox.attach_role_policy`, :meth:`Sandbox.attach_bot_policy`) every
    request is held to the caller's identity policy with the conditions amibot's
    generated policy uses (``iam_enforce``), and KMS used by EC2 on the caller's
    behalf needs the caller's IAM too (key policy and IAM policy, across accounts).
    ``iam:SimulatePrincipalPolicy`` evaluates a role's policies (``iam_simulate``).
    [moto: IAM only with ``set_initial_no_auth_action_count``, most conditions
    ignored; no SimulatePrincipalPolicy.]

Simplifications (documented so nobody mistakes them for AWS facts): the condition
operators evaluated are ``String*``, ``Arn*``, ``Bool`` and ``Null`` (others fail
closed); service control policies and permission boundaries are not modelled;
OU nesting is modelled by giving a
member a ``"ou-parent/ou-child"`` path; the copy failure ``StateReason`` codes
(``Client.InvalidKMSKey.*``) are the sandbox's own wording.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any, Callable

import boto3

from offline.sandbox.controls import SandboxControls
from offline.sandbox.install import _install
from offline.sandbox.policy import GRANT_OPERATIONS
from offline.sandbox.state import (
    _KEY_ACCOUNTS,
    _LOCK,
    ADMIN_ROLE_NAME,
    _STACK,
    BOT_ACCOUNT,
    DEFAULT_BASE_IMAGE_ID,
    ROLE_NAME,
    _OrgConfig,
    _State,
)
from offline.sandbox.world import SandboxWorld

__all__ = ["ADMIN_ROLE_NAME", "BOT_ACCOUNT", "DEFAULT_BASE_IMAGE_ID", "GRANT_OPERATIONS", "ROLE_NAME", "Sandbox"]

DEFAULT_CONSISTENCY_DELAY = 2.0
"""Seconds a new image, snapshot, instance or grant stays invisible (AWS's eventual
consistency usually lasts seconds; tests use a shorter value to stay fast)."""

_ENV_KEYS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_EC2_LOAD_DEFAULT_AMIS",
    "MOTO_ACCOUNT_ID",
)


class Sandbox(SandboxWorld, SandboxControls):
    """moto plus the AWS semantics amibot depends on.

    ``start()`` once (per test session), ``reset()`` between tests, ``stop()`` at the
    end. ``server=True`` runs a ``ThreadedMotoServer`` on 127.0.0.1 and points
    ``AWS_ENDPOINT_URL`` at it; otherwise moto intercepts boto3 in-process.
    ``org_members`` maps account id to OU id (``"ou-ab12-cdef3456"``, or a
    ``"ou-parent/ou-child"`` path) for accounts in the Organization
    ``organization_id`` (managed from ``management_account``). ``copy_duration``
    makes new images progress from pending to done over that many seconds of wall
    time (for the demo and ``serve --sandbox``); by default they finish at once.
    ``consistency_delay``: for that many seconds after creation, new images,
    snapshots, instances and KMS grants are invisible (AWS's eventual consistency,
    see ``consistency``); 0 turns it off. ``permission_delay``/``status_check_delay``: see
    ``lags``. ``clock`` is the sandbox's time (seconds, real time by default): the
    delays and timed copies follow it (see :meth:`use_clock`).
    """

    def __init__(
        self,
        region: str = "us-east-1",
        *,
        server: bool = False,
        organization_id: str = "o-sandbox1234",
        org_members: dict[str, str] | None = None,
        management_account: str = BOT_ACCOUNT,
        org_root_id: str = "r-sbx1",
        copy_duration: float | None = None,
        consistency_delay: float = DEFAULT_CONSISTENCY_DELAY,
        clock: Callable[[], float] = time.monotonic,
        permission_delay: float | None = None, status_check_delay: float | None = None,
    ):
        self.region = region
        self.server = server
        self.endpoint_url: str | None = None
        self._org = _OrgConfig(organization_id, dict(org_members or {}), management_account, org_root_id)
        self._copy_duration = copy_duration
        self._consistency_delay = float(consistency_delay)
        self._clock, self._lags = clock, (permission_delay, status_check_delay)
        self._state = _State(org=copy.deepcopy(self._org), copy_duration=copy_duration, consistency_delay=self._consistency_delay, clock=clock, permission_delay=permission_delay, status_delay=status_check_delay)
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._server: Any = None
        self._started = False
        self._sessions: dict[tuple[str, str], boto3.Session] = {}
        self._creds: dict[str, dict[str, str]] = {}

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Set the environment (test credentials, region, no default AMIs) and start
        moto in-process or as a threaded server on a free loopback port."""
        if self._started:
            return
        _install()
        self._saved_env = {k: os.environ.get(k) for k in _ENV_KEYS}
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ["AWS_DEFAULT_REGION"] = self.region
        # Must be set before moto builds an EC2 backend: 1,300 default AMIs per
        # region make every DescribeImages slow.
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        for k in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
            os.environ.pop(k, None)
        try:
            if self.server:
                from moto.server import ThreadedMotoServer

                # Port 0: the OS picks a free port, with no window for another process to take it.
                self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                self._server.start()
                host, port = self._server.get_host_and_port()
                self.endpoint_url = f"http://{host}:{port}"
                os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
            else:
                from moto import mock_aws

                # Keep the "testing" credentials set above rather than moto's own.
                self._mock = mock_aws(
                    config={
                        "core": {
                            "mock_credentials": False,
                            "passthrough": {"urls": [], "services": []},
                            "reset_boto3_session": True,
                            "service_whitelist": None,
                        }
                    }
                )
                self._mock.start()
        except Exception:
            self._restore_env()
            raise
        with _LOCK:
            _STACK.append(self._state)
        self._started = True

    def stop(self) -> None:
        """Stop moto, forget the sandbox state and restore the environment."""
        if not self._started:
            return
        with _LOCK:
            if self._state in _STACK:
                _STACK.remove(self._state)
            if not _STACK:
                _KEY_ACCOUNTS.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._restore_env()
        self.endpoint_url = None
        self._sessions.clear()
        self._creds.clear()
        self._started = False

    def _restore_env(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def reset(self) -> None:
        """Clear all moto state and the sandbox state (holds, faults, counters,
        tokens, organisation changes). Sessions handed out stay valid."""
        from moto.moto_api._internal.models import moto_api_backend

        with _LOCK:
            moto_api_backend.reset()
            self._state.clear()
            self._state.org = copy.deepcopy(self._org)
            self._state.copy_duration = self._copy_duration
            self._state.consistency_delay = self._consistency_delay
            self._state.clock, self._state.permission_delay, self._state.status_delay = self._clock, *self._lags
        from offline.sandbox.ec2_launch_templates import reset_launch_templates

        reset_launch_templates()
        from offline.sandbox.ec2_retire import reset_retire

        reset_retire()

    # -- identities ----------------------------------------------------------------
    def session(self, account_id: str, region: str | None = None) -> boto3.Session:
        """A boto3 Session acting as ``account_id`` (AssumeRole into its
        ``sandbox-admin`` role, the account's administrator, whom no identity policy
        restricts; the bot account itself gets a plain session)."""
        region = region or self.region
        cached = self._sessions.get((account_id, region))
        if cached is not None:
            return cached
        if account_id == BOT_ACCOUNT:
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        else:
            creds = self._creds.get(account_id)
            if creds is None:
                from moto.sts.models import sts_backends

                # Straight to moto's STS, not over the wire: the administrator's
                # session is the sandbox's own, not a call the bot's policy governs.
                role = sts_backends[BOT_ACCOUNT]["global"].assume_role(
                    region_name=region, role_session_name="amibot-sandbox",
                    role_arn=f"arn:aws:iam::{account_id}:role/{ADMIN_ROLE_NAME}", policy="", duration=3600, external_id="",
                )
                creds = {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key, "SessionToken": role.session_token}
                self._creds[account_id] = creds
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
            )
        self._sessions[(account_id, region)] = session
        return session

    def role_session(self, account_id: str, role_name: str = ROLE_NAME, region: str | None = None) -> boto3.Session:
        """A boto3 Session as ``role_name`` in ``account_id`` (by default amibot's own
        role, held to its policy once one is attached)."""
        from moto.sts.models import sts_backends

        role = sts_backends[BOT_ACCOUNT]["global"].assume_role(
            region_name=region or self.region, role_session_name="amibot-sandbox-test",
            role_arn=f"arn:aws:iam::{account_id}:role/{role_name}", policy="", duration=3600, external_id="",
        )
        return boto3.Session(
            aws_access_key_id=role.access_key_id, aws_secret_access_key=role.secret_access_key,
            aws_session_token=role.session_token, region_name=region or self.region,
        )

    def client(self, service: str, account_id: str, region: str | None = None, **kwargs: Any) -> Any:
        """Shorthand for ``session(account_id, region).client(service, **kwargs)``."""
        return self.session(account_id, region).client(service, **kwargs)

    def configure_organization(
        self, organization_id: str | None = None, members: dict[str, str] | None = None, management_account: str | None = None
    ) -> None:
        """Change the Organization (until the next :meth:`reset`)."""
        with _LOCK:
            if organization_id is not None:
                self._state.org.organization_id = organization_id
            if members is not None:
                self._state.org.members = dict(members)
            if management_account is not None:
                self._state.org.management_account = management_account

    @property
    def organization_id(self) -> str:
        """The sandbox Organization's id."""
        return self._state.org.organization_id

    def organization_arn(self) -> str:
        """``arn:aws:organizations::<management>:organization/<org-id>``."""
        org = self._state.org
        return f"arn:aws:organizations::{org.management_account}:organization/{org.organization_id}"

    def ou_arn(self, ou_id: str) -> str:
        """``arn:aws:organizations::<management>:ou/<org-id>/<ou-id>``."""
        org = self._state.org
        return f"arn:aws:organizations::{org.management_account}:ou/{org.organization_id}/{ou_id}"
