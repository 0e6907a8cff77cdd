"""AWS failures in plain words.

``translate`` turns a botocore error into an ``AwsFailure`` carrying AWS's code and
message plus, for the failures this bot exists to prevent, a cause and a fix a
person can act on. Unknown errors keep AWS's code and message unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError


class AwsFailure(Exception):
    """An AWS call failed."""

    def __init__(self, code: str, aws_message: str, *, cause: str | None = None, fix: str | None = None, operation: str | None = None):
        self.code = code
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
        parts.append(f"AWS said{where}: `{self.code}`: {self.aws_message}")
        return "\n".join(parts)


class PreflightFailure(Exception):
    """A check before approval found a reason not to go ahead."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}")


@dataclass(frozen=True)
class _Known:
    cause: str
    fix: str


# Matched on (code, a fragment of the message or "" for any message).
_KNOWN: list[tuple[str, str, _Known]] = [
    (
        "InvalidRequest",
        "permission to access the storage",
        _Known(
            "The target account may launch the AMI but cannot read its snapshots: copying needs snapshot permission (createVolumePermission).",
            "Share with `allow-copy`, or use `/ami copy`, which adds the snapshot permission for the duration of the copy.",
        ),
    ),
    (
        "Client.InternalError",
        "",
        _Known(
            "Instances from this AMI terminate at once: the launching account cannot use the KMS key of the AMI's snapshots.",
            "Grant the target account use of the key (a KMS grant or key-policy statement) and allow its role kms:Decrypt, kms:CreateGrant and kms:ReEncrypt* on the key ARN.",
        ),
    ),
    (
        "InvalidAMIID.Unavailable",
        "",
        _Known("The AMI is not available yet (still pending) or was deregistered.", "Wait until the image is `available` and try again."),
    ),
    (
        "InvalidAMIID.NotFound",
        "",
        _Known(
            "The AMI does not exist in that account and region, or it is not shared with the account that looked for it.",
            "Check the AMI id, the account and the region (`from prod:eu-west-1`).",
        ),
    ),
    (
        "InvalidParameterCombination",
        "encrypt",
        _Known(
            "An encrypted snapshot cannot be copied unencrypted.",
            "Copy with encryption on (amibot always sets Encrypted=true) and a key the target owns.",
        ),
    ),
    (
        "NotFoundException",
        "",
        _Known(
            "The KMS key does not exist in that region (keys are regional).",
            "Create the key in the destination region, or name another with `kms <key>` or the account's `kms_keys` setting.",
        ),
    ),
    (
        "KMSInvalidStateException",
        "",
        _Known("The KMS key is disabled or pending deletion.", "Enable the key, or name another with `kms <key>`."),
    ),
    (
        "DisabledException",
        "",
        _Known("The KMS key is disabled.", "Enable the key, or name another with `kms <key>`."),
    ),
    (
        "AccessDeniedException",
        "",
        _Known(
            "The account is not allowed to use that KMS key (no grant or key-policy statement, or its IAM role lacks the KMS actions).",
            "Check the key policy and the role's IAM policy (`amibot iam-policy` prints what the roles need).",
        ),
    ),
    (
        "RequestLimitExceeded",
        "",
        _Known(
            "AWS throttled the calls (RequestLimitExceeded) and retries with backoff did not get through.",
            "Nothing is wrong with the request; it can be retried in a few minutes.",
        ),
    ),
    (
        "ThrottlingException",
        "",
        _Known("AWS throttled the calls and retries with backoff did not get through.", "Retry in a few minutes."),
    ),
    (
        "AccessDenied",
        "",
        _Known(
            "The bot's role in that account is not allowed to do this.",
            "Attach the member-account policy from `amibot iam-policy` to the role, and check its trust policy names the bot's role.",
        ),
    ),
    (
        "UnauthorizedOperation",
        "",
        _Known(
            "The bot's role in that account is not allowed to do this.",
            "Attach the member-account policy from `amibot iam-policy` to the role.",
        ),
    ),
    (
        "ResourceLimitExceeded",
        "",
        _Known(
            "The destination region has too many AMI copies in flight (the limit is 300 concurrent copies).",
            "Wait for running copies to finish, then retry.",
        ),
    ),
    (
        "IdempotentParameterMismatch",
        "",
        _Known(
            "A copy with this request's ClientToken was already started with other parameters.",
            "This is a bug or a changed plan; start a new request.",
        ),
    ),
]


def explain(code: str, message: str, operation: str | None = None) -> AwsFailure:
    """An AwsFailure for an AWS error code and message, with plain words if known."""
    lowered = message.lower()
    for known_code, fragment, known in _KNOWN:
        if code == known_code and fragment.lower() in lowered:
            return AwsFailure(code, message, cause=known.cause, fix=known.fix, operation=operation)
    return AwsFailure(code, message, operation=operation)


def translate(error: Exception) -> AwsFailure:
    """Turn a botocore error (or an AwsFailure) into an AwsFailure."""
    if isinstance(error, AwsFailure):
        return error
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return explain(err.get("Code", "Unknown"), err.get("Message", str(error)), error.operation_name)
    if isinstance(error, BotoCoreError):
        return AwsFailure(type(error).__name__, str(error), cause="The call to AWS did not complete.", fix="Retry; if it persists, check the endpoint and credentials.")
    raise TypeError(f"not an AWS error: {error!r}")


def is_aws_error(error: Exception) -> bool:
    """Whether ``translate`` can explain this error."""
    return isinstance(error, (AwsFailure, ClientError, BotoCoreError))
