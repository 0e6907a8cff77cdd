"""The attacker's view of slash commands, over the real HTTP endpoint: what a member of
the workspace can make the bot show or do with ``/ami`` (issue 17)."""

from __future__ import annotations

from offline import rehearsal
from bot import slacktext
from bot.requests import SUCCEEDED

HOSTILE_VALUE = "<!channel> <https://evil.example/login|Approve here> <@U0ALICE>"


def _clean(text: str) -> None:
    assert not slacktext.unmeant_markup(text), slacktext.unmeant_markup(text)


def test_tag_values_reach_no_surface_as_markup(harness):
    """Finding 1: `/ami tag … "note=<!channel> <https://…|Approve here> <@U0ALICE>"` —
    the exact-changes modal, status, the progress reply and the next plan's "Tags now"
    show the value escaped, never as a live link or mention."""
    image = harness.world.encrypted_image
    harness.slash(f'tag {image} from prod "note={HOSTILE_VALUE}"')
    root = harness.root_for(f"tag {image}")
    _clean(harness.exact_changes(root))
    status = harness.slash("status R-1", user=rehearsal.OWNER).json()["text"]
    assert "CreateTags" in status
    _clean(status)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    for message in harness.fake.thread(harness.channel, root["ts"]):
        _clean(message.get("text") or "")
    harness.slash(f"tag {image} from prod other=1")
    second = harness.fake.wait_for(lambda: next((m for m in harness.fake.messages(harness.channel)
                                                 if f"tag {image}" in (m.get("text") or "") and m["ts"] != root["ts"] and not m.get("thread_ts")), None))
    changes = harness.exact_changes(second)
    assert "Tags now" in changes and "&lt;!channel&gt;" in changes
    _clean(changes)


def _ephemeral(stack, user: str, text: str, channel: str | None = None) -> str:
    """The answer a user gets: the immediate one, or the one that follows (audits)."""
    before = len(stack.fake.ephemerals(user))
    immediate = stack.slash(text, user=user, channel=channel).json().get("text", "")
    if not immediate.startswith("Auditing"):
        return immediate
    stack.settle()
    return stack.ephemeral_for(user, after=before)


def test_audit_is_for_the_owners_of_the_audited_account_in_allowed_places(stack_with, bot_aws_calls):
    """Finding 2: `/ami audit <ami> from prod` by a member who owns nothing, or by an owner
    in a channel outside `allowed_channels`, reads nothing; an owner by DM or in the
    allowed channel gets the audit."""
    stack = stack_with(bot_lines='allowed_channels = ["C0PLATFORM"]')
    image = stack.world.encrypted_image
    refused = _ephemeral(stack, rehearsal.STRANGER, f"audit {image} from prod")
    assert "Only the owners of `prod`" in refused and "arn:aws:kms" not in refused
    elsewhere = _ephemeral(stack, rehearsal.OWNER, f"audit {image} from prod", channel="C0RANDOM")
    assert "Requests are made only in" in elsewhere
    drift = _ephemeral(stack, rehearsal.STRANGER, "audit --drift", channel="C0RANDOM")
    assert "Requests are made only in" in drift
    stack.settle()
    assert bot_aws_calls == []  # nothing was read with prod's role
    by_dm = _ephemeral(stack, rehearsal.OWNER, f"audit {image} from prod", channel="D0ALICE")
    assert image in by_dm and "Only the owners" not in by_dm


def test_commands_that_call_aws_are_rate_limited_per_user_in_the_store(stack_with, bot_aws_calls):
    """Finding 2: a burst of audits by one user stops at `bot.aws_commands_per_minute`
    with a clear answer; the next minute (the store's clock) it is allowed again."""
    stack = stack_with(bot_lines="aws_commands_per_minute = 2")
    image = stack.world.encrypted_image
    for _ in range(2):
        assert "Auditing" in stack.slash(f"audit {image} from prod", user=rehearsal.OWNER).json()["text"]
    stack.settle()
    calls = len(bot_aws_calls)
    third = stack.slash(f"audit {image} from prod", user=rehearsal.OWNER).json()["text"]
    assert "more than 2 AWS lookups or requests in a minute" in third and "Wait a minute" in third
    share = stack.slash(f"share {image} from prod to dev", user=rehearsal.OWNER).json()["text"]
    assert "Wait a minute" in share  # requests count too
    stack.settle()
    assert len(bot_aws_calls) == calls
    assert "Checking" in stack.slash(f"share {image} from prod to dev").json()["text"]  # another user is not limited
    stack.clock.advance(61)
    assert "Auditing" in stack.slash(f"audit {image} from prod", user=rehearsal.OWNER).json()["text"]


def test_a_tag_request_is_capped_at_aws_fifty_tags(harness):
    """Finding 10: 51 tags in one `/ami tag` are refused at once (AWS's limit per resource);
    a request that would take the AMI past 50 is refused before anyone is asked."""
    image = harness.world.encrypted_image
    many = " ".join(f"k{i}=v" for i in range(51))
    refused = harness.slash(f"tag {image} from prod {many}", user=rehearsal.OWNER).json()["text"]
    assert "51 tags in one request" in refused and "at most 50" in refused
    current = len(harness.world.sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2").describe_images(ImageIds=[image])["Images"][0].get("Tags", []))
    fill = " ".join(f"n{i}=v" for i in range(51 - current))
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.slash(f"tag {image} from prod {fill}")
    harness.settle()
    assert "TagLimitExceeded" in harness.ephemeral_for(rehearsal.REQUESTER, after=before) or "at most 50" in harness.ephemeral_for(rehearsal.REQUESTER, after=before)
    assert harness.bot.store.find() == []
