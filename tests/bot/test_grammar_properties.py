"""Properties of the slash grammar, with hypothesis (they replace the hand-rolled fuzz loop):

- any text either parses or raises a UsageError with a message and the usage;
- parse → render → parse is stable (``render()`` is the canonical form);
- input that does not parse, or names accounts nobody configured, never reaches AWS.
"""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import grammar
from bot.errors import AmibotError, UsageError
from bot.grammar import parse_command
from tests.bot.test_grammar import VOCABULARY

GRAMMAR_EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHAT_ALPHABET = string.printable + "\u2014\u2013\u2212\u201c\u201d\u2018\u2019\u00a0\u200b"
any_text = st.one_of(
    st.text(alphabet=CHAT_ALPHABET, max_size=80),  # what people type, as chat clients change it
    st.text(max_size=40),  # any code point
    st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12).map(" ".join),  # grammar words in any order
)

hex8 = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8)
hex17 = st.text(alphabet="0123456789abcdef", min_size=17, max_size=17)
ami = st.one_of(hex8, hex17).map(lambda h: f"ami-{h}")
instance = st.one_of(hex8, hex17).map(lambda h: f"i-{h}")
subnet = hex8.map(lambda h: f"subnet-{h}")
alias = st.sampled_from(["prod", "dev", "staging", "team-a", "x_1", "111111111111", "2222-2222-2222"])
region = st.sampled_from(["eu-west-1", "us-east-1", "ap-southeast-2", "us-gov-west-1"])
account = st.tuples(alias, st.one_of(st.none(), region)).map(lambda t: f"{t[0]}:{t[1]}" if t[1] else t[0])
# An AMI name has 3 to 128 characters once the tokeniser has collapsed its spaces.
ami_name = st.text(alphabet=string.ascii_letters + string.digits + "()[] ./'@_-", min_size=3, max_size=40).filter(
    lambda n: len(" ".join(n.split())) >= 3)
duration = st.one_of(st.integers(1, 2160).map(lambda h: f"{h}h"), st.integers(1, 90).map(lambda d: f"{d}d"))
kms = st.one_of(st.sampled_from(["alias/ami-shared", "mrk-0123456789abcdef0123456789abcdef"]),
                st.uuids().map(str))


@st.composite
def valid_texts(draw) -> str:
    """Texts written the way the usage says (some still refused: the same account twice...)."""
    verb = draw(st.sampled_from(["share", "unshare", "copy", "migrate", "status", "list", "cancel", "help"]))
    if verb in ("share", "unshare"):
        targets = draw(st.one_of(st.lists(alias, min_size=1, max_size=3).map(",".join), st.just("org"), st.just("ou-ab12-cd345678")))
        words = [verb, draw(ami), "from", draw(account), "to", targets]
        if verb == "share" and draw(st.booleans()):
            words.append("allow-copy")
        if verb == "share" and draw(st.booleans()):
            words += ["for", draw(duration)]
    elif verb == "copy":
        words = ["copy", draw(ami), "from", draw(account), "to", draw(account)]
        if draw(st.booleans()):
            words += ["kms", draw(kms)]
        if draw(st.booleans()):
            words += ["name", '"' + draw(ami_name) + '"']
        if draw(st.booleans()):
            words.append("verify")
    elif verb == "migrate":
        r = draw(region)
        words = ["migrate", draw(instance), "from", draw(alias) + draw(st.sampled_from(["", f":{r}"])), "to", r + draw(st.sampled_from("abc"))]
        if draw(st.booleans()):
            words += ["subnet", draw(subnet)]
        if draw(st.booleans()):
            words.append("no-reboot")
    elif verb in ("status", "cancel"):
        n = draw(st.integers(1, 10**6))
        words = [verb, draw(st.sampled_from([f"R-{n}", f"r{n}", f"#{n}", str(n)]))]
    elif verb == "list":
        words = ["list", *draw(st.sampled_from([[], ["pending"], ["mine"], ["active"], ["all"]]))]
    else:
        words = ["help", *draw(st.sampled_from([[], ["share"], ["copy"], ["migrate"]]))]
    return " ".join(words)


@GRAMMAR_EXAMPLES
@given(any_text)
def test_any_text_parses_or_says_what_was_wrong(text):
    try:
        command = parse_command(text)
    except UsageError as err:
        assert err.detail and err.usage
        err.user_message().encode("utf-8")  # printable in Slack and in logs
    else:
        assert command is not None


@GRAMMAR_EXAMPLES
@given(st.one_of(valid_texts(), any_text))
def test_parse_render_parse_is_stable(text):
    try:
        command = parse_command(text)
    except UsageError:
        return
    rendered = command.render()
    again = parse_command(rendered)
    assert again == command, (text, rendered)
    assert again.render() == rendered


@GRAMMAR_EXAMPLES
@given(valid_texts())
def test_texts_written_as_the_usage_says_mostly_parse(text):
    try:
        command = parse_command(text)
    except UsageError as err:  # only the refusals the grammar documents
        assert any(word in err.detail for word in ("twice", "source account", "allow-copy", "mixes", "is not in", "one account"))
    else:
        assert type(command).__name__.lower().startswith(text.split()[0][:4])


def test_render_examples():
    share = grammar.ShareCommand("ami-0123456789abcdef0", grammar.AccountRef("prod", "eu-west-1"), ("dev", "staging"), False, None, True, timedelta(days=7))
    assert share.render() == "share ami-0123456789abcdef0 from prod:eu-west-1 to dev,staging allow-copy for 7d"
    assert parse_command('copy ami-0123456789abcdef0 to dev:us-east-2 from prod name  "web  server" verify').render() == \
        'copy ami-0123456789abcdef0 from prod to dev:us-east-2 name "web server" verify'


# -- invalid input never reaches AWS -------------------------------------------------------------


class RecordingSessions:
    """Stands where AwsSessions stands; records (and refuses) every use."""

    def __init__(self):
        self.calls: list[tuple] = []

    def client(self, *args, **kwargs):
        self.calls.append(("client", args))
        raise AssertionError(f"AWS reached with {args}")

    def session(self, *args, **kwargs):
        self.calls.append(("session", args))
        raise AssertionError(f"AWS reached with {args}")


class InlineWorker:
    def submit(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


class RecordingNotifier:
    def __init__(self):
        self.said: list[str] = []

    def respond(self, response_url, text, request_id=None):
        self.said.append(text)

    def __getattr__(self, name):
        return lambda *a, **k: self.said.append(f"{name}{a}")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from bot.services import RequestService
    from bot.store import Store
    from offline import rehearsal

    config = rehearsal.sandbox_config(str(tmp_path_factory.mktemp("grammar") / "amibot.db"), "http://127.0.0.1:9/api/", env={})
    sessions, notifier = RecordingSessions(), RecordingNotifier()
    directory = type("Directory", (), {"group_members": lambda self, group: [], "channel_members": lambda self, channel: frozenset()})()
    service = RequestService(config, Store(config.db_path), sessions, notifier, InlineWorker(), None, directory)
    return service, sessions, notifier


@GRAMMAR_EXAMPLES
@given(st.one_of(any_text, valid_texts()))
def test_invalid_input_never_reaches_aws(service, text):
    service_, sessions, notifier = service
    sessions.calls.clear()
    configured = set(service_.config.accounts) | {a.id for a in service_.config.accounts.values()}
    try:
        command = parse_command(text)
    except UsageError:
        command = None
    names = _accounts_named(command) if command is not None else set()
    if command is not None and (not names or names <= configured):
        return  # valid and about configured accounts: preflight may call AWS (tested over HTTP)
    try:
        service_.handle_command(text, user="U0BOB", channel="C0PLATFORM", response_url="http://127.0.0.1:9/respond")
    except AmibotError:
        pass
    assert sessions.calls == [], (text, sessions.calls)


def _accounts_named(command) -> set[str]:
    names: set[str] = set()
    for field in ("source", "target"):
        ref = getattr(command, field, None)
        if ref is not None:
            names.add(ref.account)
    names.update(getattr(command, "targets", ()) or ())
    return names


def test_the_recorder_does_see_a_valid_request(service):
    """The property above could not fail if nothing reached the recorder: a valid
    request about configured accounts does reach it."""
    service_, sessions, notifier = service
    sessions.calls.clear()
    service_.handle_command("share ami-0123456789abcdef0 from prod to dev", user="U0BOB", channel="C0PLATFORM", response_url="http://127.0.0.1:9/r")
    assert sessions.calls
