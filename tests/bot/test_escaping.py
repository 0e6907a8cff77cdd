"""Every message and view the bot can produce, rendered from hostile text (AWS names,
tags and error messages, the stored command text, a reason), must contain no ``<``
other than the mentions, channel links, dates and links the bot itself means, no
bidirectional override, and no code span broken open by a backtick."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aws.actions.tags import TagImage
from aws.errors import AwsFailure
from bot import listing, cards, lifecycle, messages, plan_groups, results, slacktext
from bot.errors import UsageError
from bot.grammar import parse_command
from bot.verbs.common import preflight_read
from bot.requests import STATE_LABELS, Request, Step

HOSTILE = ["<!channel>", "<!here>", "<https://evil.example|click me>", "<@U0MALLORY>", "<#C0SECRET>", "a`b`c", "```",
           "\u202eevil\u202c", "&lt;b&gt;", "<!subteam^S0EVIL>", "<!date^1^{date}|x>", ">quote", "*bold*", "x" * 400]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.sampled_from(list("<>&|`!@#^*_~ azAZ09\n:/.") + ["\u202e", "\u2066", "\u200f"]), max_size=80),
    st.text(max_size=40),
)


def mrkdwn_texts(value: Any) -> Iterator[str]:
    """Every string Slack would parse as mrkdwn in a message, blocks or a view."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from mrkdwn_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, dict) and item.get("type") == "plain_text":
                continue  # plain_text is never parsed
            if key in ("text", "blocks", "elements", "fields", "confirm", "title", "view") or isinstance(item, (dict, list)):
                yield from mrkdwn_texts(item)


def assert_clean(rendered: Any) -> None:
    for text in mrkdwn_texts(rendered):
        bad = slacktext.unmeant_markup(text)
        assert not bad, f"unmeant markup {bad!r} in {text[:300]!r}"
        assert not set(text) & slacktext.BIDI_CONTROLS, f"bidi control in {text[:200]!r}"


def a_request(command_text: str, reason: str, aws_text: str, state: str, kind: str) -> Request:
    failure = AwsFailure(aws_text[:40] or "Code", aws_text, cause=None, fix=None)
    request = Request(
        id=7, uid="0123456789abcdef", kind=kind, state=state, requester="U0BOB", channel="C0PLATFORM",
        command_text=command_text,
        params={"image_id": "ami-0123456789abcdef0", "source": "prod", "targets": ["dev"], "target": "dev",
                "target_region": "us-east-1", "reason": reason, "instance_id": "i-0123456789abcdef0",
                "availability_zone": "us-east-1b", "no_reboot": False, "allow_copy": True, "tags": {"app": aws_text}},
        facts={"checked": [f"name {slacktext.code(aws_text)}"], "after": [slacktext.escape(aws_text)],
               "instance": {"name": aws_text}},
        approver_accounts=["prod", "dev"], root_ts="1.2", created_at=1_700_000_000.0, expires_at=1_700_086_400.0,
        active_until=1_700_100_000.0, reminded=0, error=messages.error_text(failure), progress=aws_text,
    )
    request.steps = [
        Step(7, 1, "ec2.copy_image", "dev", "222222222222", "us-east-1", {"source_name": aws_text, "name": None},
             f"CopyImage Name=`{cards.COPY_NAME_MARK}`", "done", {"grant_id": aws_text, "summary": aws_text}, None),
        Step(7, 2, "kms.add_key_policy_statement", "prod", "111111111111", "us-east-1", {"key_arn": "arn:aws:kms:us-east-1:111111111111:key/k"},
             "PutKeyPolicy", "pending", {}, None),
        # A tag step: its keys and values (a user's words) in the description, the AWS
        # result's summary raw (issue 17, finding 1).
        Step(7, 3, "ec2.create_tags", "prod", "111111111111", "us-east-1", {"image_id": "ami-0123456789abcdef0"},
             TagImage.describe(TagImage.Params(image_id="ami-0123456789abcdef0", snapshot_ids=[], tags={aws_text or "k": command_text}),
                               account=None, region="us-east-1", current_tags={aws_text or "k": reason}),
             "done", {"summary": f"tagged ami-0123456789abcdef0: {aws_text}={command_text}"}, None),
    ]
    request.approvals = {"prod": "U0ALICE"}
    return request


def every_rendering(request: Request, hostile: str) -> Iterator[Any]:
    owners = {"prod": ["U0ALICE", "S0PLATFORM"], "dev": ["U0DEVOPS"]}
    yield cards.card_blocks(request, owners, progress=hostile)
    yield cards.card_blocks(request, owners, asked_in="C0PLATFORM", note=cards.reminder_note(request, 12))
    yield cards.card_blocks(request, owners, revoked_by=hostile)
    yield cards.changes_view(request, "/ami")
    yield cards.progress_text(request, hostile)
    yield cards.confirm_approve(request)
    yield cards.confirm_cancel(request)
    yield cards.card_blocks(request, owners, denied_by=hostile)
    yield cards.fallback_text(request)
    yield messages.root_text(request)
    yield messages.headline(request)
    yield messages.status_text(request)
    yield listing.status_text(request, True)
    yield listing.status_text(request, False)
    yield listing.list_text([request], "all", 1, lambda r: True)
    yield _history_line(request, hostile)
    yield lifecycle.failure_text(request, request.steps[0].description, messages.error_text(AwsFailure("X", hostile)), [slacktext.escape(hostile)], [])
    yield messages.deny_form(request)
    yield plan_groups.final_text(_distribution(request, hostile))
    # What a phone shows (issue 18): lock-screen texts with an AMI named by AWS, the requester's DMs, the results.
    named = dataclasses.replace(request, facts={**request.facts, "image": {"name": hostile}}, permalink=None)
    named.steps = [*request.steps, Step(7, 4, "verify.copy", "dev", "222222222222", hostile[:20] or "x", {}, "Check the copy", "done", {"image_id": hostile}, None)]
    yield messages.lock_screen(named, "Reminder: ")
    yield messages.channel_alert(named)
    yield results.made_lines(named)
    yield results.ended_dm(named, f"<@U0BOB> {slacktext.escape(hostile)}")  # the final text: the bot's, with AWS's words escaped
    yield results.approved_dm(named, messages.mention("U0ALICE"))
    yield results.progress_dm(named, 900.0, 40)
    yield messages.error_text(AwsFailure(hostile or "X", hostile, cause=hostile, fix=hostile))
    try:
        parse_command(hostile)
    except UsageError as error:
        yield messages.error_text(error)
    try:
        preflight_read("Could not read it", lambda: (_ for _ in ()).throw(_client_error(hostile)))
    except Exception as error:  # PreflightError
        yield messages.error_text(error)


def _history_line(request: Request, hostile: str) -> str:
    """``/ami history``'s line: the AMI's name, a decider and a break-glass approver
    from hostile text (bot.history)."""
    from types import SimpleNamespace

    from bot.history import History

    named = dataclasses.replace(request, facts={**request.facts, "image": {"name": hostile}}, params={**request.params, "break_glass_by": hostile})
    config = SimpleNamespace(account_by_id=lambda _id: None, bot=SimpleNamespace(command="/ami"))
    store = SimpleNamespace(events=lambda _id: [{"to_state": "denied", "actor": hostile}, {"to_state": "approved", "actor": "policy:" + hostile}])
    history = History(config, store, SimpleNamespace(touched_accounts=lambda r: [hostile]), lambda ref, user: None)  # type: ignore[arg-type]
    return history.line(named)


def _distribution(request: Request, aws_text: str) -> Request:
    """The same request as a distribution to two targets: one copied (AWS's answer as
    its image id), one failed; the final message lists both."""
    grouped = dataclasses.replace(request, kind="distribute")
    grouped.steps = [
        Step(7, 1, "verify.copy", "dev", "222222222222", "us-east-1", {"unit": "dev:us-east-1"}, "Check the copy", "done", {"image_id": aws_text}, None),
        Step(7, 2, "ec2.copy_image", "dev", "222222222222", "eu-west-1", {"unit": "dev:eu-west-1"}, "CopyImage: into dev", "failed", {}, messages.error_text(AwsFailure("X", aws_text))),
    ]
    return grouped


def _client_error(message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "InvalidAMIID.NotFound", "Message": message}}, "DescribeImages")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_text=hostile_text, reason=hostile_text, aws_text=hostile_text, hostile=hostile_text,
       state=st.sampled_from(sorted(STATE_LABELS)), kind=st.sampled_from(["share", "unshare", "copy", "migrate", "distribute", "tag", "retire", "extend"]))
def test_every_message_and_view_escapes_what_it_did_not_write(command_text, reason, aws_text, hostile, state, kind):
    request = a_request(command_text, reason, aws_text, state, kind)
    for rendered in every_rendering(request, hostile):
        assert_clean(rendered)


@given(text=hostile_text)
def test_command_text_cannot_break_out_of_its_code_span(text):
    span = slacktext.code(text)
    assert span.startswith("`") and span.endswith("`") and span.count("`") == 2
    assert "\n" not in span and len(span) <= slacktext.COMMAND_TEXT_LIMIT + 20
    assert not slacktext.unmeant_markup(span)


def test_the_check_catches_what_it_must():
    # The test above is only worth what this one shows: raw AWS text is caught.
    assert slacktext.unmeant_markup("tag <!channel> here")
    assert slacktext.unmeant_markup("<https://evil.example|click>")  # a link the bot never makes
    assert slacktext.unmeant_markup(slacktext.escape("<https://evil.example|click>")) == []  # escaped, it is text
    assert not slacktext.unmeant_markup("<https://sandbox.slack.com/archives/C0PLATFORM/p1700000000000100|thread>")
    assert not slacktext.unmeant_markup("<@U0ALICE> <#C0PLATFORM> <!subteam^S0PLATFORM> <!date^1700000000^{date}|x>")
    try:
        assert_clean({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}}]})
    except AssertionError:
        pass
    else:
        raise AssertionError("assert_clean let <!here> through")
    assert json.dumps(cards.card_blocks(a_request("x", "", "y", "pending_approval", "share"), {}))  # renders
