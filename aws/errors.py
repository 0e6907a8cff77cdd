"""AWS failures in plain words.

``translate`` turns a botocore error into an ``AwsFailure`` carrying AWS's code and
message plus, for the failures this bot exists to prevent, a cause and a fix a
person can act on. Unknown errors keep AWS's code and message unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError


class AwsFailure(Exception):
    """An AWS call failed."""

    def __init__(
        self, code: str, aws_message: str, *, cause: str | None = None, fix: str | None = None, operation: str | None = None, retries: int | None = None
    ):
        self.code = code
        self.retries = retries
        self.aws_message = aws_message
        self.cause = cause
        self.fix = fix
        self.operation = operation
        super().__init__(self.plain())

    def plain(self) -> str:
        """Cause, fix and AWS's own words, for a thread reply."""
        parts = []
        if self.cause:
            parts.append(self.cause)
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        where = f" in {self.operation}" if self.operation else ""
        after = f" (after {self.retries} {'retry' if self.retries == 1 else 'retries'})" if self.retries else ""
        parts.append(f"AWS said{where}{after}: `{self.code}`: {self.aws_message}")
        return "\n".join(parts)


@dataclass(frozen=True)
class Known:
    """Plain words for one AWS failure: matched on the error code (any of
    ``codes``) and a regular expression searched in AWS's message (case-insensitive;
    ``""`` matches any message). ``example`` is a message AWS (or the sandbox) really
    sends for it, so a test can check that no earlier entry shadows this one."""

    codes: tuple[str, ...]
    pattern: str
    cause: str
    fix: str
    example: str

    def matches(self, code: str, message: str) -> bool:
        return code in self.codes and re.search(self.pattern, message, re.IGNORECASE) is not None


_GRANT_SPREAD = "A new grant can take a few minutes to take effect: if it was just made, retry in a few minutes."

# First match wins: the specific entries of a code come before its catch-all.
KNOWN: tuple[Known, ...] = (
    # AMIs AWS will not copy or share (docs/aws-rules.md): refused in the preflight,
    # these words are for when AWS says it after approval.
    Known(
        ("InvalidRequest", "InvalidParameterValue", "UnsupportedOperation"),
        r"BillingProduct|billing product|product code",
        "The AMI carries billing product codes (AWS Marketplace, or a licensed platform such as Windows or RHEL): AWS does not copy such AMIs to another account.",
        "Share it instead (the target launches it and keeps the billing), or launch an instance from it in the target account and create an image there "
        "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html).",
        "Images with EC2 BillingProduct codes cannot be copied to another AWS account.",
    ),
    Known(
        ("InvalidRequest", "InvalidParameterCombination", "UnsupportedOperation"),
        r"instance.store",
        "The AMI is instance store-backed (S3): AWS can neither encrypt it nor copy it to another account.",
        "Launch an instance from it, create an EBS-backed image from the instance (CreateImage), and copy that "
        "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html).",
        "Instance store-backed AMIs cannot be encrypted or copied to another AWS account.",
    ),
    Known(
        ("IncorrectState", "InvalidSnapshot.InUse", "InvalidRequest"),
        r"archive",
        "A snapshot of the AMI is in the archive tier: it cannot be used (copied, launched) until it is restored.",
        "Restore it: `aws ec2 restore-snapshot-tier --snapshot-id <snap> --temporary-restore-days 7` (or `--permanent-restore`), wait until "
        "`RestoreStatus` is done, then ask again (https://docs.aws.amazon.com/ebs/latest/userguide/snapshot-archive.html).",
        "Snapshot snap-0123456789abcdef0 is in the archive tier and cannot be used until it is restored.",
    ),
    Known(
        ("ResourceLimitExceeded",),
        r"launch permission|shared with at most|1,?000",
        "The AMI is already shared with the most entities AWS allows (1,000 accounts, organizations and OUs together).",
        "Remove shares nobody uses (`/ami unshare`), or share with an organization or OU (each counts as one) "
        "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html).",
        "An AMI can be shared with at most 1000 accounts, organizations and organizational units.",
    ),
    Known(
        ("InvalidAMIName.Duplicate",),
        r"",
        "The account already has an AMI with that name in that region: AMI names are unique per account and region.",
        "Pick another `name`, or leave it out (amibot then names the copy after the request).",
        "AMI name payments-api is already in use by AMI ami-0123456789abcdef0",
    ),
    Known(
        ("InvalidRequest",),
        r"permission to access the storage",
        "The target account may launch the AMI but cannot read its snapshots: copying needs snapshot permission (createVolumePermission).",
        "Share with `allow-copy`, or use `/ami copy`, which adds the snapshot permission for the duration of the copy.",
        "You do not have permission to access the storage of this ami",
    ),
    Known(
        # What CopyImage/CopySnapshot answer when asked for an unencrypted copy of an
        # encrypted source (InvalidRequest in CopyImage, InvalidParameterCombination
        # elsewhere).
        ("InvalidRequest", "InvalidParameterCombination"),
        r"unencrypted|encrypted snapshot|encrypted flag",
        "An encrypted snapshot cannot be copied (or launched) unencrypted.",
        "Copy with encryption on (amibot always sets Encrypted=true) and a key the target owns.",
        "Snapshot snap-0123456789abcdef0 is encrypted. Creating unencrypted copy from an encrypted snapshot is not supported.",
    ),
    Known(
        ("Client.InternalError",),
        r"",
        "Instances from this AMI terminate at once: the launching account cannot use the KMS key of the AMI's snapshots.",
        "Grant the target account use of the key (a KMS grant or key-policy statement, which `/ami share` adds) and allow its role "
        "kms:Decrypt, kms:CreateGrant, kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext and kms:ReEncrypt* on the key ARN. " + _GRANT_SPREAD,
        "Client.InternalError: Client error on launch",
    ),
    Known(
        # The AWS-managed aws/ebs key: ModifyImageAttribute answers InvalidParameter,
        # ModifySnapshotAttribute OperationNotPermitted.
        ("InvalidParameter", "OperationNotPermitted"),
        r"AWS Managed CMK|AWS managed key|EBS default key",
        "The AMI's snapshots are encrypted with the AWS-managed `aws/ebs` key, which AWS never lets anyone share.",
        "Copy the AMI in the source account with a customer-managed key (`/ami copy <ami> from <acct> to <same acct> kms <key>`), then share the copy.",
        "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.",
    ),
    Known(
        ("UnsupportedOperation",),
        r"public",
        "Encrypted snapshots cannot be shared publicly (and amibot never shares publicly).",
        "Name account ids, `org` or an OU.",
        "Encrypted snapshots can't be shared publicly. Specify another snapshot.",
    ),
    Known(
        ("InvalidAMIID.Unavailable",),
        r"",
        "The AMI is not available: still being created or copied (`pending`), or deregistered.",
        "Wait until the image is `available` (`/ami status` shows copies in progress) and try again.",
        "The image id '[ami-0123456789abcdef0]' is no longer available",
    ),
    Known(
        ("InvalidAMIID.NotFound",),
        r"",
        "The AMI does not exist in that account and region, or it is not shared with the account that looked for it.",
        "Check the AMI id, the account and the region (`from prod:eu-west-1`).",
        "The image id '[ami-0123456789abcdef0]' does not exist",
    ),
    Known(
        ("AuthFailure",),
        r"image",
        "Only the AMI's owner can read or change its attributes; this account can at most launch it.",
        "Name the account that owns the AMI after `from`.",
        "Not authorized for image:ami-0123456789abcdef0",
    ),
    Known(
        ("NotFoundException",),
        r"grant",
        "The KMS grant is already gone (revoked or retired).",
        "Nothing to do: the access it gave is already removed.",
        "Grant id 0123abcd not found",
    ),
    Known(
        ("NotFoundException",),
        r"",
        "The KMS key does not exist in that region (keys are regional), or is not visible to that account.",
        "Create the key in the destination region, or name another with `kms <key>` or the account's `kms_keys` setting.",
        "Key 'arn:aws:kms:eu-west-1:222222222222:alias/ami-dev' does not exist",
    ),
    Known(
        ("KMSInvalidStateException",),
        r"",
        "The KMS key is disabled or pending deletion.",
        "Enable the key (or cancel its deletion), or name another with `kms <key>`.",
        "arn:aws:kms:us-east-1:111111111111:key/1234abcd is pending deletion.",
    ),
    Known(
        ("DisabledException",),
        r"",
        "The KMS key is disabled.",
        "Enable the key, or name another with `kms <key>`.",
        "arn:aws:kms:us-east-1:111111111111:key/1234abcd is disabled.",
    ),
    Known(
        ("AccessDeniedException",),
        r"",
        "The account is not allowed to use that KMS key (no grant or key-policy statement, or its IAM role lacks the KMS actions).",
        "Check the key policy and the role's IAM policy (`amibot iam-policy` prints what the roles need). " + _GRANT_SPREAD,
        "User: arn:aws:sts::222222222222:assumed-role/amibot/x is not authorized to perform: kms:DescribeKey on resource: "
        "arn:aws:kms:us-east-1:111111111111:key/1234abcd because no resource-based policy allows the kms:DescribeKey action",
    ),
    Known(
        ("RequestLimitExceeded",),
        r"",
        "AWS throttled the calls (RequestLimitExceeded: EC2 limits API calls per account and region) and retries with backoff did not get through.",
        "Nothing is wrong with the request; it can be retried in a few minutes.",
        "Request limit exceeded.",
    ),
    Known(
        ("ThrottlingException", "Throttling"),
        r"",
        "AWS throttled the calls (KMS and STS limit calls per account) and retries with backoff did not get through.",
        "Nothing is wrong with the request; retry in a few minutes.",
        "Rate exceeded",
    ),
    Known(
        ("AccessDenied",),
        r"sts:AssumeRole",
        "The bot could not assume its role in that account.",
        "Check the account's `role_arn` and `external_id` in the config, that the role's trust policy names the bot's role, "
        "and that the bot's own role may call sts:AssumeRole on it (`amibot iam-policy`).",
        "User: arn:aws:iam::123456789012:user/amibot is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/amibot",
    ),
    Known(
        ("AccessDenied",),
        r"",
        "The bot's role in that account is not allowed to do this.",
        "Attach the member-account policy from `amibot iam-policy` to the role, and check its trust policy names the bot's role.",
        "Access Denied",
    ),
    Known(
        ("UnauthorizedOperation",),
        r"",
        "The bot's role in that account is not allowed to do this.",
        "Attach the member-account policy from `amibot iam-policy` to the role.",
        "You are not authorized to perform this operation.",
    ),
    Known(
        ("ResourceLimitExceeded",),
        r"",
        "The destination region has too many AMI copies in flight (the limit is 300 concurrent copies).",
        "Wait for running copies to finish, then retry.",
        "You have reached your quota of 300 for the number of concurrent AMI copies.",
    ),
    Known(
        ("IdempotentParameterMismatch",),
        r"",
        "A copy with this request's ClientToken was already started with other parameters.",
        "This is a bug or a changed plan; start a new request.",
        "Client token already used with different parameters.",
    ),
)


def explain(code: str, message: str, operation: str | None = None, *, retries: int | None = None) -> AwsFailure:
    """An AwsFailure for an AWS error code and message, with plain words if known."""
    for known in KNOWN:
        if known.matches(code, message):
            return AwsFailure(code, message, cause=known.cause, fix=known.fix, operation=operation, retries=retries)
    return AwsFailure(code, message, operation=operation, retries=retries)


def translate(error: Exception) -> AwsFailure:
    """Turn a botocore error (or an AwsFailure) into an AwsFailure."""
    if isinstance(error, AwsFailure):
        return error
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        # botocore counts the retries it made (throttling, 5xx) before giving up.
        retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts") or None
        return explain(err.get("Code", "Unknown"), err.get("Message", str(error)), error.operation_name, retries=retries)
    if isinstance(error, BotoCoreError):
        return AwsFailure(type(error).__name__, str(error), cause="The call to AWS did not complete.", fix="Retry; if it persists, check the endpoint and credentials.")
    raise TypeError(f"not an AWS error: {error!r}")


def is_aws_error(error: Exception) -> bool:
    """Whether ``translate`` can explain this error."""
    return isinstance(error, (AwsFailure, ClientError, BotoCoreError))


# -- What a failed read means: decided here, for every operation ---------------------

MISSING = "missing"
"""AWS answered that the thing does not exist (or not for this caller)."""
RETRY = "retry"
"""AWS did not answer (throttled, a 5xx, the connection failed): no answer at all;
ask again, never conclude anything from it."""
FAILED = "failed"
"""Any other error: the read failed for a reason a person must look at."""

# Only these codes say "it does not exist". InvalidAMIID.Malformed is a bad id, not a
# missing image; an AccessDenied is not "gone".
NOT_FOUND_CODES = frozenset({
    "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound",
    "InvalidInstanceID.NotFound", "NotFoundException",
})
THROTTLE_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "PriorRequestNotComplete",
})
UNAVAILABLE_CODES = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable", "Unavailable",
    "Server.InternalError", "KMSInternalException", "DependencyTimeoutException",
})


def read_outcome(error: Exception) -> str:
    """What a failed AWS read means: ``MISSING``, ``RETRY`` (throttled, 5xx, no
    answer) or ``FAILED``. The one place that decides it: a throttle or an answer
    amibot could not parse is never "it does not exist"."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in NOT_FOUND_CODES:
            return MISSING
        if code in THROTTLE_CODES or code in UNAVAILABLE_CODES or status >= 500:
            return RETRY
        return FAILED
    if isinstance(error, AwsFailure):
        if error.code in NOT_FOUND_CODES:
            return MISSING
        if error.code in THROTTLE_CODES or error.code in UNAVAILABLE_CODES:
            return RETRY
        return FAILED
    if isinstance(error, BotoCoreError):
        return RETRY  # connection closed, timeout, a body botocore could not parse
    return FAILED
