"""Issue 20 §2: the preflight's reads in parallel (aws/reads.py), its sessions reused
within the phase and named after the request, account-level facts cached a minute
on the injected clock (aws/account_facts.py). Domain-level: PlanningContext against
the sandbox, no HTTP."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from aws import reads as reads_module
from aws.account_facts import AccountFacts
from aws.errors import FAILED, MISSING, RETRY, read_outcome
from aws.reads import ParallelReads
from aws.sessions import AccountAccess, AwsSessions, preflight_deadline
from bot.config import parse_config
from bot.errors import PreflightError
from bot.grammar import parse_command
from bot.verbs import registry
from bot.verbs.common import PlanningContext, preflight_read
from offline import rehearsal
from offline.clock import Clock

PROD, DEV, REGION = rehearsal.PROD, rehearsal.DEV, rehearsal.REGION


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} said"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeImages")


# -- the parallel reader ----------------------------------------------------------------------


def test_each_read_gives_its_own_result_or_its_own_exception():
    with ParallelReads(workers=4) as reads:
        gone, throttled, ok = client_error("InvalidAMIID.NotFound"), client_error("RequestLimitExceeded"), "value"
        outcomes = reads.run({"gone": lambda: (_ for _ in ()).throw(gone), "throttled": lambda: (_ for _ in ()).throw(throttled),
                              "ok": lambda: ok, "bug": lambda: 1 / 0})
    assert outcomes["ok"].get() == "value" and outcomes["ok"].kind is None
    # Classified by aws.errors.read_outcome, the one place that decides it.
    assert (outcomes["gone"].kind, outcomes["throttled"].kind, outcomes["bug"].kind) == (MISSING, RETRY, FAILED)
    assert outcomes["gone"].kind == read_outcome(gone)
    with pytest.raises(ClientError) as raised:
        outcomes["gone"].get()
    assert raised.value is gone, "the read's own exception, raised again where it is taken"


def test_a_failed_read_becomes_the_same_refusal_as_before():
    def denied():
        raise client_error("UnauthorizedOperation", 403)

    with pytest.raises(PreflightError) as before:
        preflight_read("Could not read ami-1", denied, fix="Check the role.")
    with ParallelReads(workers=4) as reads:
        pending = reads.start("image", denied)
        with pytest.raises(PreflightError) as now:
            preflight_read("Could not read ami-1", pending.result, fix="Check the role.")
    assert str(now.value) == str(before.value) and now.value.fix == before.value.fix


def test_reads_run_at_once_and_each_gives_its_result_in_order():
    barrier = threading.Barrier(3, timeout=10)  # only passes if three reads run at the same time

    def read(n):
        barrier.wait()
        return n

    with ParallelReads(workers=3) as reads:
        assert reads.each([lambda n=n: read(n) for n in range(3)]) == [0, 1, 2]


def test_the_first_failure_in_order_is_raised_as_one_after_the_other_would():
    with ParallelReads(workers=3) as reads:
        def slow_failure():
            time.sleep(0.05)
            raise client_error("InvalidSnapshot.NotFound")

        with pytest.raises(ClientError) as raised:
            reads.each([slow_failure, lambda: (_ for _ in ()).throw(client_error("AccessDenied"))])
    assert raised.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"


def test_nested_reads_never_wait_for_a_place_in_their_own_pool():
    with ParallelReads(workers=2) as reads:
        def outer(n):
            return sum(reads.each([lambda: n] * 4))

        assert reads.each([lambda n=n: outer(n) for n in range(4)]) == [0, 4, 8, 12]


def test_with_parallelism_off_each_read_runs_where_it_is_started(monkeypatch):
    monkeypatch.setattr(reads_module, "WORKERS", 1)
    order: list[str] = []
    reads = ParallelReads()
    reads.start("a", lambda: order.append("a"))
    order.append("between")
    reads.start("b", lambda: order.append("b"))
    assert order == ["a", "between", "b"] and reads._pool is None, "no thread of its own"


def test_reads_keep_the_preflight_deadline():
    with ParallelReads(workers=2) as reads, preflight_deadline(-1):
        from aws.sessions import PreflightTimeout, _check_deadline

        pending = reads.start("late", lambda: _check_deadline())
        with pytest.raises(PreflightTimeout):
            pending.result()


# -- account-level facts: a minute on the injected clock ----------------------------------------


def test_account_facts_are_kept_a_minute_of_the_test_clock():
    clock = Clock(at=1_000_000.0)
    facts = AccountFacts(clock=clock)
    answers = iter(["alias/aws/ebs", "alias/ami-dev", "alias/third"])
    read = lambda: next(answers)  # noqa: E731
    assert facts.get("ebs-default-kms-key", DEV, REGION, read) == ("alias/aws/ebs", False)
    clock.advance(59)
    assert facts.get("ebs-default-kms-key", DEV, REGION, read) == ("alias/aws/ebs", True)
    assert facts.get("ebs-default-kms-key", PROD, REGION, read) == ("alias/ami-dev", False), "per account"
    clock.advance(2)
    assert facts.get("ebs-default-kms-key", DEV, REGION, read) == ("alias/third", False), "expired after 60 s"


def test_a_failed_fact_is_not_kept():
    facts = AccountFacts(clock=Clock(at=0.0))
    with pytest.raises(ClientError):
        facts.get("allowed-images-settings", DEV, REGION, lambda: (_ for _ in ()).throw(client_error("RequestLimitExceeded")))
    assert facts.get("allowed-images-settings", DEV, REGION, lambda: "read again") == ("read again", False)


# -- a share's preflight against the sandbox ------------------------------------------------------


@pytest.fixture
def world(sandbox):
    return rehearsal.seed(sandbox)


@pytest.fixture
def planning(sandbox, clock):
    config = parse_config(rehearsal.SANDBOX_TOML, {"AMIBOT_DB": ":memory:", "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s"},
                          source="<test>")
    sessions = AwsSessions({a.id: AccountAccess(a.id, a.role_arn) for a in config.accounts.values()}, facts_clock=clock)

    def context(uid: str) -> PlanningContext:
        return PlanningContext(config, sessions, uid=uid, requester=rehearsal.REQUESTER)

    return context


def test_a_share_preflight_assumes_each_role_once_named_after_the_request(sandbox, world, planning):
    assumed = sandbox.calls("AssumeRole")
    ctx = planning("0123456789abcdef")
    registry.prepare(ctx, parse_command(f"share {world.encrypted_image} from prod to dev"))
    assert sandbox.calls("AssumeRole") - assumed == 2, "one session per account for the whole preflight, parallel reads included"
    for account in (PROD, DEV):
        arn = ctx.sessions.client("sts", account, REGION, ctx.tag).get_caller_identity()["Arn"]
        assert arn.endswith("/amibot-preflight-0123456789abcdef"), arn
    assert sandbox.calls("AssumeRole") - assumed == 2, "the phase's sessions are reused, not assumed again"


def test_an_unencrypted_share_reads_allowed_amis_once_a_minute(sandbox, world, planning, clock):
    command = parse_command(f"share {world.plain_image} from prod to dev")
    registry.prepare(planning("aaaaaaaaaaaaaaaa"), command)
    before = (sandbox.calls("GetAllowedImagesSettings"), sandbox.calls("AssumeRole"))
    registry.prepare(planning("bbbbbbbbbbbbbbbb"), command)
    assert sandbox.calls("GetAllowedImagesSettings") == before[0], "cached: an account-level fact"
    assert sandbox.calls("AssumeRole") == before[1] + 1, "nothing else is read in dev: its role is not even assumed"
    clock.advance(61)
    registry.prepare(planning("cccccccccccccccc"), command)
    assert sandbox.calls("GetAllowedImagesSettings") == before[0] + 1, "read again once the minute has passed (test clock)"


def test_a_refusal_never_rests_on_a_cached_fact(sandbox, world, planning):
    command = parse_command(f"share {world.plain_image} from prod to dev")
    sandbox.set_allowed_images(DEV, REGION, "enabled", ["amazon"])
    with pytest.raises(PreflightError, match="has Allowed AMIs enabled"):
        registry.prepare(planning("dddddddddddddddd"), command)
    sandbox.set_allowed_images(DEV, REGION, "enabled", ["amazon", PROD])  # dev's owners fix it at once
    prepared = registry.prepare(planning("eeeeeeeeeeeeeeee"), command)  # within the minute: read again before refusing
    assert prepared.kind == "share"


def test_an_unencrypted_share_preflight_makes_its_six_reads_and_no_other(sandbox, world, planning):
    """Each justified (README): the two sessions, the image, its snapshots (keys,
    archive tier), its launch permissions (the 1,000 limit), dev's Allowed AMIs."""
    reads = {"AssumeRole": 2, "DescribeImages": 1, "DescribeSnapshots": 1, "DescribeImageAttribute": 1, "GetAllowedImagesSettings": 1}
    others = ("DescribeKey", "ListAliases", "CreateGrant", "SimulatePrincipalPolicy", "GetEbsDefaultKmsKeyId")
    before = {op: sandbox.calls(op) for op in (*reads, *others)}
    registry.prepare(planning("ffffffffffffffff"), parse_command(f"share {world.plain_image} from prod to dev"))
    assert {op: sandbox.calls(op) - before[op] for op in (*reads, *others)} == {**reads, **dict.fromkeys(others, 0)}


def test_a_read_the_pool_will_not_take_is_done_in_sequence_not_lost(monkeypatch):
    """While the interpreter shuts down (a SIGTERM'd `amibot serve` letting its last
    preflights finish) every thread pool refuses new work with RuntimeError; a preflight
    whose reads were refused failed and its acknowledged request was lost (a rolling
    restart under load showed it). The read runs where it was asked instead."""
    from concurrent.futures import ThreadPoolExecutor

    from aws.reads import ParallelReads

    reads = ParallelReads(workers=4)

    def refuse(self, *args, **kwargs):
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(ThreadPoolExecutor, "submit", refuse)
    assert reads.start("image", lambda: "ami-1").result() == "ami-1"
    assert {name: o.get() for name, o in reads.run({"a": lambda: 1, "b": lambda: 2}).items()} == {"a": 1, "b": 2}
    reads.close()
