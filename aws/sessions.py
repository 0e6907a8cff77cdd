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
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import boto3
import botocore.session
from botocore.config import Config as BotoConfig

from aws.account_facts import AccountFacts
from aws.errors import THROTTLE_CODES

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


def carry_preflight_deadline(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` made to run, in another thread, under this thread's preflight deadline
    (``aws.reads`` runs a preflight's reads on its own pool)."""
    deadline = getattr(_preflight, "deadline", None)
    if deadline is None:
        return call

    def under_deadline() -> Any:
        previous = getattr(_preflight, "deadline", None)
        _preflight.deadline = deadline
        _preflight.last_answer = None
        try:
            return call()
        finally:
            _preflight.deadline = previous

    return under_deadline


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


def retry_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS, mode: str = "standard") -> BotoConfig:
    """botocore's standard retry mode: exponential backoff with jitter on throttling
    (RequestLimitExceeded, ThrottlingException) and 5xx. ``adaptive`` (background
    reads: the drift check) also paces the client's own sending after a throttle."""
    return BotoConfig(retries={"mode": mode, "max_attempts": max_attempts}, connect_timeout=10, read_timeout=60)


# Clients whose tag starts with this are background readers (the drift check): botocore's
# adaptive retry mode paces them, so a run over many AMIs yields to the requests.
BACKGROUND_TAG = "drift"


RETRY_CONFIG = retry_config()

# Credentials from AssumeRole last an hour; a session is replaced this long before they
# expire (a step started on it must not see them run out).
_REFRESH_MARGIN = 10 * 60
_CREDENTIALS_TTL = 60 * 60  # when STS does not say (it always does)
# Each role session (one per request: its name carries the request id) costs about
# 140 KiB; past this many, the least recently used is dropped.
DEFAULT_MAX_SESSIONS = 64
# THROTTLE_CODES (imported above): one list, beside what a failed read means
# (aws.errors.read_outcome).


class AwsObserver(Protocol):
    """Told about every AWS API call (metrics); aws/ knows nothing of who listens."""

    def aws_call(self, service: str, operation: str) -> None: ...

    def aws_throttled(self, service: str, operation: str) -> None: ...


class _NoObserver:
    def aws_call(self, service: str, operation: str) -> None:
        pass

    def aws_throttled(self, service: str, operation: str) -> None:
        pass


def _observe(events: Any, observer: AwsObserver) -> None:
    """Hook ``observer`` into a botocore event system: one call per API call, one
    throttle per attempt AWS answered with a throttling error."""

    def after_call(model: Any = None, **_: Any) -> None:
        if model is not None:
            observer.aws_call(model.service_model.service_name, model.name)

    def needs_retry(response: Any = None, operation: Any = None, **_: Any) -> None:
        if response is not None and operation is not None:
            code = (response[1] or {}).get("Error", {}).get("Code", "")
            if code in THROTTLE_CODES:
                observer.aws_throttled(operation.service_model.service_name, operation.name)

    events.register("after-call", after_call, unique_id="amibot-observe-call")
    events.register("needs-retry", needs_retry, unique_id="amibot-observe-throttle")


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
    ``AWS_ENDPOINT_URL`` included); accounts without a role use it directly, after a
    check (STS GetCallerIdentity, once) that those credentials belong to that account.
    Role sessions are cached, at most ``max_sessions`` (least recently used dropped),
    and replaced before their credentials expire.
    """

    def __init__(self, accounts: dict[str, AccountAccess], base_session: Callable[[], boto3.Session] = boto3.Session, *,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, preflight_max_attempts: int = PREFLIGHT_MAX_ATTEMPTS,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, observer: AwsObserver | None = None, clock: Callable[[], float] = time.time,
                 facts_clock: Callable[[], float] = time.monotonic):
        self._accounts = accounts
        self._config = retry_config(max_attempts)
        self._background_config = retry_config(max_attempts, mode="adaptive")
        self._preflight_config = preflight_config(preflight_max_attempts)
        self._base_session = base_session
        self._max_sessions = max_sessions
        self._observer = observer or _NoObserver()
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, boto3.Session]] = OrderedDict()
        # One AssumeRole per (account, tag) even when a preflight's parallel reads
        # ask for the session at once; one client per (session, service, region):
        # boto3 sessions are not thread-safe, and a client costs milliseconds to make.
        self._assuming: dict[tuple[str, str], threading.Lock] = {}
        self._clients: dict[tuple[str, str, str, str], tuple[boto3.Session, Any]] = {}
        self._sts_clients: dict[str, Any] = {}
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        # Account-level facts (the default EBS key, Allowed AMIs settings), a minute
        # on ``facts_clock`` (aws.account_facts).
        self.account_facts = AccountFacts(clock=facts_clock)

    def cached_sessions(self) -> int:
        """How many role sessions are cached (bounded by ``max_sessions``)."""
        with self._lock:
            return len(self._cache)

    def session(self, account_id: str, tag: str = "bot") -> boto3.Session:
        """A session acting as ``account_id``; ``tag`` names the role session."""
        access = self._accounts.get(account_id)
        if access is None or access.role_arn is None:
            return self._own_session(account_id, check=access is not None)
        key = (account_id, tag)
        cached = self._cached(key)
        if cached is not None:
            return cached
        with self._lock:
            assuming = self._assuming.setdefault(key, threading.Lock())
        with assuming:  # the first asker assumes the role; the others wait for its session
            cached = self._cached(key)
            if cached is not None:
                return cached
            try:
                return self._assume(key, access, tag)
            finally:
                with self._lock:
                    self._assuming.pop(key, None)

    def _cached(self, key: tuple[str, str]) -> boto3.Session | None:
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > self._clock():
                self._cache.move_to_end(key)
                return cached[1]
        return None

    def _assume(self, key: tuple[str, str], access: AccountAccess, tag: str) -> boto3.Session:
        params: dict[str, Any] = {"RoleArn": access.role_arn, "RoleSessionName": session_name(tag)}
        if access.external_id:
            params["ExternalId"] = access.external_id
        creds = self._sts(tag).assume_role(**params)["Credentials"]
        expiration = creds.get("Expiration")
        expires = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + _CREDENTIALS_TTL
        botocore_session = _botocore_session()
        _observe(botocore_session.get_component("event_emitter"), self._observer)
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            botocore_session=botocore_session,
        )
        with self._lock:
            self._cache[key] = (expires - _REFRESH_MARGIN, session)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_sessions:
                dropped, _ = self._cache.popitem(last=False)
                for client_key in [k for k in self._clients if k[:2] == dropped]:
                    del self._clients[client_key]
        return session

    def _sts(self, tag: str) -> Any:
        """The STS client of the bot's own credentials that assumes the roles: one per
        budget (preflight, steps, background), made once. Making one parses the STS
        model and the endpoint rules again (about 60 ms of CPU); a client is thread-safe."""
        kind = PREFLIGHT_TAG if tag.startswith(PREFLIGHT_TAG) else BACKGROUND_TAG if tag.startswith(BACKGROUND_TAG) else ""
        with self._lock:
            sts = self._sts_clients.get(kind)
            if sts is None:
                sts = self._sts_clients[kind] = self._base_session().client("sts", config=self._config_for(tag))
                _observe(sts.meta.events, self._observer)
                if kind == PREFLIGHT_TAG:
                    sts.meta.events.register("before-send", _check_deadline)
            return sts

    def _own_session(self, account_id: str, *, check: bool) -> boto3.Session:
        """The bot's own credentials, for an account configured without a role: they
        must belong to that account, or every change would land somewhere else."""
        session = self._base_session()
        _observe(session.events, self._observer)
        if not check or account_id in self._verified:
            return session
        actual = session.client("sts", config=self._config).get_caller_identity()["Account"]
        if actual != account_id:
            from aws.errors import AwsFailure

            raise AwsFailure(
                "AccountMismatch",
                f"the bot's own credentials belong to account {actual}, not {account_id}",
                cause=f"Account {account_id} has no `role_arn`, so the bot uses its own credentials there, "
                      f"but they are credentials of account {actual}.",
                fix=f"Set `role_arn` for account {account_id} in the config (a role in that account the bot may "
                    f"assume), or run the bot with credentials of account {account_id}.",
                operation="GetCallerIdentity",
            )
        with self._lock:
            self._verified.add(account_id)
        return session

    def own_identity(self, region: str) -> dict[str, str]:
        """Who the bot's own credentials are (STS GetCallerIdentity), unchecked: for
        ``amibot doctor`` to name the account when it is not the configured one."""
        return self._base_session().client("sts", region_name=region, config=self._config).get_caller_identity()

    def _config_for(self, tag: str) -> BotoConfig:
        if tag.startswith(PREFLIGHT_TAG):
            return self._preflight_config
        if tag.startswith(BACKGROUND_TAG):
            return self._background_config
        return self._config

    def client(self, service: str, account_id: str, region: str, tag: str = "bot") -> Any:
        """A boto3 client for ``service`` in ``region`` acting as ``account_id``.
        Clients for the preflight (``tag`` starting with ``preflight``) get the short
        budget and honour :func:`preflight_deadline`."""
        session = self.session(account_id, tag)
        access = self._accounts.get(account_id)
        if access is None or access.role_arn is None:  # a new session each time: nothing shared
            return self._new_client(session, service, region, tag)
        key = (account_id, tag, service, region)
        with self._lock:
            made = self._clients.get(key)
            if made is None or made[0] is not session:  # made under the lock: boto3 sessions are not thread-safe
                made = self._clients[key] = (session, self._new_client(session, service, region, tag))
        return made[1]

    def _new_client(self, session: Any, service: str, region: str, tag: str) -> Any:
        client = session.client(service, region_name=region, config=self._config_for(tag))
        if tag.startswith(PREFLIGHT_TAG):
            client.meta.events.register("before-send", _check_deadline)
            client.meta.events.register("needs-retry", _remember_answer)
        return client
