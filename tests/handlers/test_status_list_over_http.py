"""`/ami status`, `/ami list` and `/ami help <verb>` over the real HTTP endpoint: who
may read a request's details, the words of each scope, Slack dates, the thread's
permalink, and "showing 50 of N"."""

from __future__ import annotations

from offline import rehearsal
from bot.requests import PENDING_APPROVAL

MEMBER = "U0MEMBER"  # in the request's channel, owns nothing
STRANGER = rehearsal.STRANGER  # not in the channel, owns nothing


def _answer(harness, text, user):
    result = harness.slash(text, user=user)
    assert result.status == 200
    return result.json()["text"]


def _encrypted_share(harness):
    harness.fake.channel_members[harness.channel] = [rehearsal.REQUESTER, MEMBER, "UAMIBOT"]
    image = harness.world.encrypted_image
    harness.slash(f"share {image} from prod to dev")
    harness.root_for(image)
    harness.settle()
    return image


def test_details_only_for_requester_owners_and_channel_members(harness):
    image = _encrypted_share(harness)
    cmk = harness.world.cmk_arn
    for user in (rehearsal.REQUESTER, rehearsal.OWNER, rehearsal.DEV_OWNER, "U0CAROL", MEMBER):
        status = _answer(harness, "status R-1", user)
        assert image in status and cmk in status, user  # accounts, key ARNs, the plan
        listed = _answer(harness, "list all", user)
        assert image in listed, user
    status = _answer(harness, "status R-1", STRANGER)
    assert "R-1" in status and "waiting for approval" in status
    assert image not in status and cmk not in status and "prod" not in status and rehearsal.PROD not in status
    listed = _answer(harness, "list all", STRANGER)
    assert "R-1" in listed and image not in listed and "details hidden" in listed
    # Membership was asked of Slack, and cached: one call for all those answers.
    assert 1 <= len(harness.fake.calls_to("conversations.members")) <= 2


def test_a_channel_slack_will_not_list_hides_the_details(harness):
    image = _encrypted_share(harness)
    harness.fake.script_error("conversations.members", "missing_scope", times=5)
    harness.bot.service.directory._cache.clear()
    assert image not in _answer(harness, "status R-1", MEMBER)  # failing closed
    assert image in _answer(harness, "status R-1", rehearsal.OWNER)  # owners still see it


def test_status_links_the_thread_and_shows_slack_dates(harness):
    _encrypted_share(harness)
    status = _answer(harness, "status R-1", rehearsal.REQUESTER)
    root_ts = harness.bot.store.get(1).root_ts
    link = f"https://sandbox.slack.com/archives/{harness.channel}/p{root_ts.replace('.', '')}"
    assert f"<{link}|thread>" in status
    assert "<!date^" in status and "^{date_short_pretty} {time}|" in status and "expires <!date^" in status
    assert harness.bot.store.get(1).permalink == link  # kept: asked of Slack once
    _answer(harness, "status R-1", rehearsal.OWNER)
    assert len(harness.fake.calls_to("chat.getPermalink")) == 1
    assert f"<{link}|thread>" in _answer(harness, "list mine", rehearsal.REQUESTER)


def test_each_scope_has_its_words(harness):
    assert _answer(harness, "list", rehearsal.REQUESTER) == "No requests are waiting for approval."
    assert _answer(harness, "list mine", rehearsal.REQUESTER) == "You have no requests."
    assert _answer(harness, "list active", rehearsal.REQUESTER) == "No requests are in progress or active."
    assert _answer(harness, "list all", rehearsal.REQUESTER) == "No requests yet."
    _encrypted_share(harness)
    assert _answer(harness, "list mine", rehearsal.REQUESTER).startswith("*Your requests* (1)")
    assert _answer(harness, "list pending", rehearsal.REQUESTER).startswith("*Waiting for approval* (1)")
    assert _answer(harness, "list mine", rehearsal.OWNER) == "You have no requests."


def test_list_says_showing_50_of_n(harness):
    store = harness.bot.store
    for n in range(57):
        store.create_request(kind="share", uid=f"u{n}", requester=rehearsal.REQUESTER, channel=harness.channel,
                             command_text=f"share ami-{n:017x} from prod to dev", params={}, facts={},
                             approver_accounts=["prod"], steps=[], ttl_seconds=3600, state=PENDING_APPROVAL)
    listed = _answer(harness, "list pending", rehearsal.OWNER)
    assert listed.splitlines()[0] == "*Waiting for approval* (showing 50 of 57)"
    assert len(listed.splitlines()) == 51
    assert "*R-57*" in listed and "*R-8*" in listed and "*R-7*" not in listed  # the newest 50


def test_help_of_one_verb(harness):
    share = _answer(harness, "help share", rehearsal.REQUESTER)
    # Escaped on the wire (Slack shows `<ami-id>`; a raw `<` would be read as a link or mention).
    assert "/ami share   &lt;ami-id&gt;" in share and "e.g. /ami share ami-" in share
    assert "migrate" not in share and "copy " not in share
    everything = _answer(harness, "help", rehearsal.REQUESTER)
    for verb in ("share", "unshare", "copy", "migrate", "status", "list", "cancel"):
        assert f"/ami {verb}" in everything
    unknown = _answer(harness, "help frobnicate", rehearsal.REQUESTER)
    assert "no command `frobnicate`" in unknown
