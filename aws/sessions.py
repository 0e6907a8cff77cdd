"""AWS sessions: one per account, assumed through that account's role.

Every ``AssumeRole`` names its session after the request (``amibot-R-17-<uid>``), so
CloudTrail in the member account shows which request made each change.

Throttling is botocore's job: clients use the ``standard`` retry mode with extra
attempts (EC2 answers ``RequestLimitExceeded`` from per-account token buckets; KMS
and STS answer ``ThrottlingException``). No home-made rate limiter.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import boto3
import botocore.session
from botocore.config import Config as BotoConfig

DEFAULT_MAX_ATTEMPTS = 8

# Interactive preflight (before anyone is asked) has its own short budget: a
# requester waiting on "Checking…" hears within seconds that AWS is slow, and gets a
# plain failure with AWS's words within PREFLIGHT_DEADLINE_SECONDS; the steps after
# approval keep the full budget above.
PREFLIGHT_TAG = "preflight"
PREFLIGHT_MAX_ATTEMPTS = 3
PREFLIGHT_DEADLINE_SECONDS = 50.0

_preflight = threading.local()


class PreflightTimeout(Exception):
    """The preflight used up its time budget (AWS kept answering slowly)."""


@contextmanager
def preflight_deadline(seconds: float = PREFLIGHT_DEADLINE_SECONDS) -> Iterator[None]:
    """While inside, preflight clients made in this thread refuse to send a request
    (or a retry) after ``seconds``: the preflight fails then instead of hanging."""
    previous = getattr(_preflight, "deadline", None)
    _preflight.deadline = time.monotonic() + seconds
    _preflight.last_answer = None
    try:
        yield
    finally:
        _preflight.deadline = previous


def _check_deadline(**kwargs: Any) -> None:
    deadline = getattr(_preflight, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        last = getattr(_preflight, "last_answer", None)
        said = f" AWS's last answer: `{last[0]}`: {last[1]}" if last else ""
        raise PreflightTimeout(f"AWS kept answering slowly or with errors while amibot checked the request.{said}")


def _remember_answer(response: Any = None, **kwargs: Any) -> None:
    """Keep AWS's last error answer (code, message) for the words of a timeout."""
    try:
        error = (response[1] or {}).get("Error") if response else None
    except (TypeError, IndexError, AttributeError):
        error = None
    if error and error.get("Code"):
        _preflight.last_answer = (error.get("Code"), error.get("Message", ""))


def preflight_config(max_attempts: int = PREFLIGHT_MAX_ATTEMPTS) -> BotoConfig:
    """Few attempts and short timeouts: someone is waiting for the answer."""
    return BotoConfig(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=3, read_timeout=10)


def retry_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> BotoConfig:
    """botocore's standard retry mode: exponential backoff with jitter on throttling
    (RequestLimitExceeded, ThrottlingException) and 5xx."""
    return BotoConfig(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=10, read_timeout=60)


RETRY_CONFIG = retry_config()

# Credentials from AssumeRole last an hour; refresh well before.
_CREDENTIALS_TTL = 45 * 60


_SHARED_LOADER = None
_LOADER_LOCK = threading.Lock()


def _botocore_session() -> botocore.session.Session:
    """A botocore session sharing one data loader: each new session would otherwise
    parse the service models again (about a second of CPU per assumed role)."""
    global _SHARED_LOADER
    with _LOADER_LOCK:
        if _SHARED_LOADER is None:
            _SHARED_LOADER = botocore.session.get_session().get_component("data_loader")
    session = botocore.session.get_session()
    session.register_component("data_loader", _SHARED_LOADER)
    return session


@dataclass(frozen=True)
class AccountAccess:
    """How to act in one account: its id and, optionally, the role to assume."""

    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


def session_name(tag: str) -> str:
    """A valid RoleSessionName (2–64 of ``[\\w+=,.@-]``) carrying ``tag``."""
    # ASCII only: Python's \w also matches "é", which STS rejects (ValidationError).
    cleaned = re.sub(r"[^\w+=,.@-]", "-", f"amibot-{tag}", flags=re.ASCII)
    return cleaned[:64]


class AwsSessions:
    """Hands out boto3 clients acting as a configured account.

    ``base_session`` holds the bot's own credentials (boto3's usual chain,
    ``AWS_ENDPOINT_URL`` included); accounts without a role use it directly.
    """

    def __init__(self, accounts: dict[str, AccountAccess], base_session: Callable[[], boto3.Session] = boto3.Session, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 preflight_max_attempts: int = PREFLIGHT_MAX_ATTEMPTS):
        self._accounts = accounts
        self._config = retry_config(max_attempts)
        self._preflight_config = preflight_config(preflight_max_attempts)
        self._base_session = base_session
        self._cache: dict[tuple[str, str], tuple[float, boto3.Session]] = {}
        self._lock = threading.Lock()

    def session(self, account_id: str, tag: str = "bot") -> boto3.Session:
        """A session acting as ``account_id``; ``tag`` names the role session."""
        access = self._accounts.get(account_id)
        if access is None or access.role_arn is None:
            return self._base_session()
        key = (account_id, tag)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > time.time():
                return cached[1]
        params: dict[str, Any] = {"RoleArn": access.role_arn, "RoleSessionName": session_name(tag)}
        if access.external_id:
            params["ExternalId"] = access.external_id
        sts = self._base_session().client("sts", config=self._config_for(tag))
        if tag.startswith(PREFLIGHT_TAG):
            sts.meta.events.register("before-send", _check_deadline)
        creds = sts.assume_role(**params)["Credentials"]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            botocore_session=_botocore_session(),
        )
        with self._lock:
            self._cache[key] = (time.time() + _CREDENTIALS_TTL, session)
        return session

    def _config_for(self, tag: str) -> BotoConfig:
        return self._preflight_config if tag.startswith(PREFLIGHT_TAG) else self._config

    def client(self, service: str, account_id: str, region: str, tag: str = "bot") -> Any:
        """A boto3 client for ``service`` in ``region`` acting as ``account_id``.
        Clients for the preflight (``tag`` starting with ``preflight``) get the short
        budget and honour :func:`preflight_deadline`."""
        client = self.session(account_id, tag).client(service, region_name=region, config=self._config_for(tag))
        if tag.startswith(PREFLIGHT_TAG):
            client.meta.events.register("before-send", _check_deadline)
            client.meta.events.register("needs-retry", _remember_answer)
        return client
