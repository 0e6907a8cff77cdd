"""`/ami history` over the real HTTP endpoint: the filters (account, AMI, since, by,
a request's id or uid), who decided each request on its line, paging with a Next
button that re-checks the clicker, `/ami status`'s visibility rule (a stranger sees
nothing of others' accounts), the CSV that arrives as a file in the asker's DM only
(files_upload_v2 over the fake's files.* endpoints) with names and no formula
injection, and bad input answered with words and nothing changed."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from bot.history import NEXT_ACTION
from bot.requests import PENDING_APPROVAL
from offline import rehearsal

CAROL = "U0CAROL"  # in S0PLATFORM: an owner of prod
STRANGER = rehearsal.STRANGER  # owns nothing, not in the channel
AMI_A = "ami-0aaaaaaaaaaaaaaa1"
AMI_B = "ami-0bbbbbbbbbbbbbbb2"


def _seed(harness, n, *, requester=rehearsal.REQUESTER, image=AMI_A, targets=("dev",), approvers=("prod",), uid=None):
    store = harness.bot.store
    return store.create_request(
        kind="share", uid=uid or f"{n:016x}", requester=requester, channel=harness.channel,
        command_text=f"share {image} from prod to {','.join(targets)}",
        params={"image_id": image, "source": "prod", "region": rehearsal.REGION, "targets": list(targets)},
        facts={"image": {"name": f"web-{n}"}}, approver_accounts=list(approvers), steps=[], ttl_seconds=86400, state=PENDING_APPROVAL)


def _page(harness, text, user):
    result = harness.slash(text, user=user)
    assert result.status == 200, result.body
    return result.json()


def _ids(answer):
    return [line.split("*")[1] for line in answer["text"].splitlines()[1:] if line.startswith("*R-")]


def _next_value(answer):
    buttons = [e for b in answer.get("blocks") or [] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == NEXT_ACTION]
    return buttons[0]["value"] if buttons else None


def _click_next(harness, user, value):
    seen = len(harness.fake.ephemerals(user))
    assert harness.slack.click(user, harness.channel, "1700000000.000100", NEXT_ACTION, value).status == 200
    return harness.fake.wait_for(lambda: harness.fake.ephemerals(user)[seen:] or None)[-1]


def test_filters_paging_and_visibility(harness, clock):
    for n in range(1, 26):
        if n == 21:
            clock.advance(3 * 86400)  # R-21.. are three days later
        _seed(harness, n, requester=CAROL if n % 5 == 0 else rehearsal.REQUESTER, image=AMI_B if n % 4 == 0 else AMI_A,
              targets=("dev",) if n % 2 else (), approvers=("prod", "dev") if n % 2 else ("prod",))
    # Paging: ten a page, newest first, a Next button carrying the cursor.
    first = _page(harness, "history", rehearsal.OWNER)
    assert _ids(first) == [f"R-{n}" for n in range(25, 15, -1)]
    second = _click_next(harness, rehearsal.OWNER, _next_value(first))
    assert [line.split("*")[1] for line in second["text"].splitlines()[1:] if line.startswith("*R-")] == [f"R-{n}" for n in range(15, 5, -1)]
    third = _click_next(harness, rehearsal.OWNER, _next_value(second))
    assert "*R-5*" in third["text"] and "*R-1*" in third["text"] and "*R-6*" not in third["text"]
    assert _next_value(third) is None  # the last page has no Next
    # Each line: when, operation, AMI and its name, from → to, requester, outcome, uid.
    line = next(x for x in first["text"].splitlines() if x.startswith("*R-25*"))
    assert "<!date^" in line and "*share*" in line and f"`{AMI_A}`" in line and "(web-25)" in line and "prod → dev" in line
    assert "asked by <@U0BOB>" in first["text"] and "*waiting for approval*" in first["text"] and f"uid `{25:016x}`" in first["text"]
    # Filters.
    assert _ids(_page(harness, "history dev", rehearsal.OWNER)) == [f"R-{n}" for n in range(25, 5, -2)]
    assert _ids(_page(harness, f"history {AMI_B}", rehearsal.OWNER)) == ["R-24", "R-20", "R-16", "R-12", "R-8", "R-4"]
    day = datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y-%m-%d")
    assert _ids(_page(harness, f"history since {day}", rehearsal.OWNER)) == ["R-25", "R-24", "R-23", "R-22", "R-21"]
    assert _ids(_page(harness, "history by <@U0CAROL|carol>", rehearsal.OWNER)) == ["R-25", "R-20", "R-15", "R-10", "R-5"]
    assert _ids(_page(harness, f"history dev {AMI_B} by <@U0CAROL|carol>", rehearsal.OWNER)) == []
    assert _ids(_page(harness, "history R-7", rehearsal.OWNER)) == ["R-7"]
    assert _ids(_page(harness, f"history {7:016x}", rehearsal.OWNER)) == ["R-7"]  # the amibot:request tag's uid
    # Visibility is /ami status's: the dev owner sees only what touches dev (and
    # Bob's, which are his own); a stranger sees nothing, also by clicking a Next
    # button from someone else's page.
    assert _ids(_page(harness, "history", rehearsal.DEV_OWNER)) == [f"R-{n}" for n in range(25, 5, -2)]
    nothing = _page(harness, "history", STRANGER)
    assert "No requests you may see match" in nothing["text"] and "R-" not in nothing["text"]
    assert "R-" not in _page(harness, "history prod", STRANGER)["text"]
    assert "R-" not in _click_next(harness, STRANGER, _next_value(first))["text"]
    # A forged cursor is refused with words.
    assert "not a history page" in _click_next(harness, STRANGER, "x|share ami-1 from prod to dev")["text"]


def test_bad_input_gets_words_and_changes_nothing(harness):
    _seed(harness, 1)
    before_calls, before_events = len(harness.fake.calls), len(harness.bot.store.events(1))
    for text, words in (("history since 2026-02-30", "no such day"), ("history since yesterday", "YYYY-MM-DD"),
                        ("history by @bob", "@ menu"), ("history nosuch", "nosuch"), ("history prod dev", "one account")):
        answer = _page(harness, text, rehearsal.REQUESTER)
        assert words in answer["text"], (text, answer["text"])
        assert "R-1" not in answer["text"]
    assert "`prod`" in _page(harness, "history nosuch", rehearsal.REQUESTER)["text"]  # the accounts they may use
    assert len(harness.bot.store.events(1)) == before_events
    assert [c.method for c in harness.fake.calls[before_calls:] if c.method != "auth.test"] == []  # nothing sent anywhere


def test_approvers_on_each_line_and_the_csv_in_the_askers_dm(harness):
    # A real share, approved by both owners, runs to the end.
    harness.fake.users[rehearsal.REQUESTER] = {"real_name": '=HYPERLINK("http://evil.example","Bob")'}
    image = harness.world.encrypted_image
    harness.slash(f'share {image} from prod to dev reason "-2+3 for the dev team"')
    root = harness.root_for(image)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root, timeout=60)
    harness.settle()
    # A second request, denied by Carol.
    denied = _seed(harness, 2, image=AMI_B, targets=(), approvers=("prod",))
    harness.bot.service.decide(denied.display_id, CAROL, approve=False, reason="not this one")
    # A third, approved by its own requester under a break-glass rule.
    glass = harness.bot.store.create_request(
        kind="share", uid="0" * 15 + "3", requester=CAROL, channel=harness.channel, command_text=f"share {AMI_B} from prod to dev",
        params={"image_id": AMI_B, "source": "prod", "targets": []}, facts={"policy": {"rule": "on-call", "approve": "owners", "break_glass": True}},
        approver_accounts=["prod"], steps=[], ttl_seconds=86400, state=PENDING_APPROVAL)
    harness.bot.service.decide(glass.display_id, CAROL, approve=True)
    harness.settle()
    text = _page(harness, "history", rehearsal.REQUESTER)["text"]
    r1 = text[text.index("*R-1*"):]
    assert "`prod` approved by <@U0ALICE>" in r1 and "*done*" in r1
    assert "denied by <@U0CAROL>" in text[text.index("*R-2*"):text.index("*R-1*")]
    r3 = _page(harness, "history R-3", rehearsal.OWNER)["text"]
    assert "`prod` approved by <@U0CAROL>" in r3 and ":rotating_light: break-glass: <@U0CAROL> approved their own request" in r3
    # csv: a file in the asker's DM with the bot, nowhere else.
    channel_messages = len(harness.fake.messages(harness.channel))
    ack = _page(harness, "history csv", rehearsal.OWNER)["text"]
    assert "direct messages" in ack
    harness.settle()
    dm = harness.fake.dm_channel(rehearsal.OWNER)
    files = harness.fake.wait_for(lambda: harness.fake.files(dm))
    assert len(harness.fake.files()) == 1 and dm.startswith("D") and len(harness.fake.messages(harness.channel)) == channel_messages
    assert [c.method for c in harness.fake.calls if c.method.startswith(("files.", "upload"))] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    rows = list(csv.DictReader(io.StringIO(files[0]["content"].decode())))
    assert {r["request"] for r in rows} == {"R-1", "R-2", "R-3"}
    approved = {(r["request"], r["account"], r["actor"], r["actor_name"]) for r in rows if r["event"] == "approved"}
    assert approved == {("R-1", "prod", rehearsal.OWNER, "U0Alice"), ("R-3", "prod", CAROL, "U0Carol")}
    assert any(r["request"] == "R-3" and r["detail"].startswith("break-glass: approved their own request") for r in rows)
    assert any(r["state"] == "pending_approval→denied" and r["actor_name"] == "U0Carol" for r in rows)
    # No formula injection: Bob's name (the actor_name of his events) starts with "=".
    bobs = {r["actor_name"] for r in rows if r["actor"] == rehearsal.REQUESTER}
    assert bobs == {'\'=HYPERLINK("http://evil.example","Bob")'}
    for row in rows:
        assert not any(str(v).startswith(("=", "+", "-", "@")) for v in row.values()), row
    # The stranger's export holds nothing of others' accounts.
    _page(harness, "history csv", STRANGER)
    harness.settle()
    theirs = harness.fake.wait_for(lambda: harness.fake.files(harness.fake.dm_channel(STRANGER)))
    assert list(csv.DictReader(io.StringIO(theirs[0]["content"].decode()))) == []


def test_status_shows_the_request_uid(harness):
    request = _seed(harness, 1, uid="0123456789abcdef")
    status = _page(harness, "status R-1", rehearsal.OWNER)["text"]
    assert "Request uid `0123456789abcdef`" in status and "amibot:request" in status


def test_csv_without_files_write_is_refused_in_words(harness):
    _seed(harness, 1)
    harness.fake.scopes.discard("files:write")
    _page(harness, "history csv", rehearsal.OWNER)
    harness.settle()
    said = harness.ephemeral_for(rehearsal.OWNER)
    assert "missing_scope" in said and "files:write" in said
    assert harness.fake.files() == []


def test_a_page_reads_a_bounded_number_of_requests_and_next_goes_on(harness, monkeypatch):
    import bot.history

    monkeypatch.setattr(bot.history, "MAX_SCAN", 10)
    monkeypatch.setattr(bot.history, "SCAN_CHUNK", 5)
    for n in range(1, 26):
        _seed(harness, n, targets=("dev",) if n <= 3 else (), approvers=("prod", "dev") if n <= 3 else ("prod",))
    first = _page(harness, "history", rehearsal.DEV_OWNER)  # sees R-1..R-3 only
    assert _ids(first) == [] and "Searched back to R-16" in first["text"]
    second = _click_next(harness, rehearsal.DEV_OWNER, _next_value(first))
    assert "Searched back to R-6" in second["text"] and "*R-" not in second["text"]
    third = _click_next(harness, rehearsal.DEV_OWNER, _next_value(second))
    assert [x.split("*")[1] for x in third["text"].splitlines() if x.startswith("*R-")] == ["R-3", "R-2", "R-1"]
    assert _next_value(third) is None


def test_a_two_owner_vote_so_far_is_not_an_approval(harness):
    request = _seed(harness, 1)
    harness.bot.store.record_votes(request.id, ["prod"], rehearsal.OWNER, 2)  # the first of two owners
    text = _page(harness, "history", rehearsal.OWNER)["text"]
    assert "`prod`: approved by <@U0ALICE>, another owner still needed" in text and "*waiting for approval*" in text
