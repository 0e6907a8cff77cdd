"""The history scopes are optional: without them (``missing_scope``) the notifier
cannot check whether a message interrupted by a crash reached Slack, says so in the
log, and sends it again instead of getting stuck."""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot.notifier import Notifier
from bot.requests import PENDING_APPROVAL
from bot.store import Store
from offline.slack import FakeSlack


def _interrupted_post(store: Store, notifier: Notifier) -> int:
    notifier.post("C0NOTIFY", "copy R-1 is done")
    row = store.outbox()[-1]
    store.mark_outbox_sending(row["id"])  # as a crash after chat.postMessage leaves it
    return row["id"]


def test_missing_history_scope_sends_again_and_warns(tmp_path, caplog):
    with FakeSlack() as fake:
        store = Store(str(tmp_path / "amibot.db"))
        notifier = Notifier(store, WebClient(base_url=fake.api_url, token="xoxb-test"), owners_of=lambda alias: [])
        row_id = _interrupted_post(store, notifier)
        fake.script_error("conversations.history", "missing_scope")
        with caplog.at_level(logging.WARNING, logger="amibot.notifier"):
            notifier.flush()
        assert [m["text"] for m in fake.messages("C0NOTIFY")] == ["copy R-1 is done"]
        assert store.outbox()[-1]["state"] == "sent" and store.outbox()[-1]["id"] == row_id
        assert "missing_scope" in caplog.text and "sending it again" in caplog.text


def test_with_the_scope_an_already_posted_message_is_not_sent_twice(tmp_path):
    with FakeSlack() as fake:
        store = Store(str(tmp_path / "amibot.db"))
        client = WebClient(base_url=fake.api_url, token="xoxb-test")
        notifier = Notifier(store, client, owners_of=lambda alias: [])
        row_id = _interrupted_post(store, notifier)
        # It did reach Slack before the crash, carrying its outbox id.
        client.chat_postMessage(channel="C0NOTIFY", text="copy R-1 is done",
                                metadata={"event_type": "amibot_outbox", "event_payload": {"outbox_id": row_id}})
        notifier.flush()
        assert len(fake.messages("C0NOTIFY")) == 1
        assert store.outbox()[-1]["state"] == "sent"


def test_permalink_is_asked_once_and_kept(tmp_path):
    with FakeSlack() as fake:
        store = Store(str(tmp_path / "amibot.db"))
        notifier = Notifier(store, WebClient(base_url=fake.api_url, token="xoxb-test"), owners_of=lambda alias: ["U0ALICE"])
        request = store.create_request(kind="share", uid="u1", requester="U0BOB", channel="C0PLATFORM", command_text="share …",
                                       params={}, facts={}, approver_accounts=["prod"], steps=[], ttl_seconds=60, state=PENDING_APPROVAL)
        notifier.post_root(request.id)
        notifier.flush()
        stored = store.get(request.id)
        assert stored.permalink == f"https://sandbox.slack.com/archives/C0PLATFORM/p{stored.root_ts.replace('.', '')}"
        assert notifier.permalink(stored) == stored.permalink
        assert len(fake.calls_to("chat.getPermalink")) == 1
