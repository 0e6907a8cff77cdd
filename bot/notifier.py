"""The notifier: every message to Slack goes through the outbox in the store.

Callers enqueue; one sender thread delivers in order. So a message is never lost
(a crash leaves it pending and the next process sends it), the final message is
never sent twice (a dedupe key), thread replies wait for their root message, and a
Slack 429 delays a message instead of dropping it: the row waits ``Retry-After``
seconds in the outbox and only that Web API method is held back for as long.

Calls are paced before Slack would answer 429 (``bot.slack_limits``: per method, and
per channel for ``chat.postMessage``); nothing sleeps in the sender: a row whose call
may not go yet waits for a later flush, and the rows behind it in its request's
thread wait with it (order), while other requests' rows go on.

Root-message updates and the progress reply are rendered at send time from the
request's current state and coalesced: only the newest pending edit of a request is
sent (the latest wins), at most one edit per message per minute while the request
runs (``bot.notifier_pacing.EditClock``); an edit showing a new phase or the final
state goes at once.

Several replicas: each request's messages are sent by one process at a time (a
lease per request's stream, see ``flush``), so order and dedupe hold across them.

Exactly once across a crash: a posted message carries its outbox id in Slack message
``metadata``, and the row is marked ``sending`` before the call. A row found still
``sending`` (the process died between Slack's answer and our commit) is looked up in
the channel or thread (``conversations.history`` / ``conversations.replies``) before
it is sent again. Those two need the optional history scopes; without them
(``missing_scope``) the row is sent again, so a crash at that instant can show one
message twice, and nothing else changes.

App Home tabs are republished through the outbox too (``HOME`` rows): each change of
a request queues one; a flush publishes each affected person's tab once, however many
of their requests changed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import messages, slacktext
from bot.leases import Leases
from bot.notifier_cards import CardPosting
from bot.notifier_pacing import EditClock, PacedDelivery, method_of, paced_client
from bot.slack_limits import Pacer
from bot.store import Store

log = logging.getLogger("amibot.notifier")

ROOT = "root"
UPDATE = "update"
REPLY = "reply"
RESPOND = "respond"
EPHEMERAL = "ephemeral"
POST = "post"  # a plain message in a channel (notify_channel)
HOME = "home"  # republish App Home tabs: of those a request concerns, or of one user
COPY = "copy"  # a copy of the approval card in an approval channel or an owner's DM
PROGRESS = "progress"  # the one progress reply of a running request, edited in place
DM = "dm"  # a direct message to one person (the requester, when a request ends)

# Slack errors after which trying again cannot help.
_PERMANENT = {"not_in_channel", "channel_not_found", "is_archived", "invalid_blocks", "msg_too_long", "invalid_auth", "account_inactive", "no_text",
              # a DM that cannot be opened (no im:write scope, a deactivated user, another bot)
              "missing_scope", "user_not_found", "user_disabled", "cannot_dm_bot", "not_allowed_token_type"}
_NO_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}
# A root message Slack refused for one of these never appears: the request is re-routed
# to an approval channel or ended, and the requester is told why.
ROOT_REFUSALS = _NO_CHANNEL | {"msg_too_long", "invalid_blocks", "no_text", "restricted_action", "cannot_reply_to_message"}


class HomeTabs(Protocol):
    """Who sees a request on their App Home, and what their Home shows."""

    def audience(self, request_id: int) -> list[str]: ...

    def view(self, user: str, notice: str | None = None) -> dict[str, Any]: ...


class Notifier(PacedDelivery, CardPosting):
    """Delivers the outbox to Slack, in order, from one background thread."""

    home: HomeTabs | None = None  # set by the wiring once the services exist

    def __init__(self, store: Store, client: WebClient, owners_of: Callable[[str], list[str]], *, poll_seconds: float = 2.0,
                 leases: Leases | None = None, command: str = "/ami", root_refused: Callable[[int, str], None] | None = None):
        self.store = store
        self.leases = leases or Leases(store)
        # Every call is counted against Slack's limits; a 429 never sleeps in here.
        self.pacer = Pacer(store.clock)
        self.client = paced_client(client, self.pacer)
        self.edits = EditClock()
        self.owners_of = owners_of  # account alias -> owner ids, shown on the root message
        self.poll_seconds = poll_seconds
        self.command = command
        # Called (outside the send loop's lock is not needed: it only enqueues) when
        # Slack refuses a root message for good: re-route or end the request.
        self.root_refused = root_refused
        self._dm_channels: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- enqueueing -------------------------------------------------------------------

    def post_root(self, request_id: int, dedupe: str | None = None) -> None:
        """Post the request's root (approval) message (``dedupe``: a second attempt,
        e.g. after joining the channel or in an approval channel)."""
        self._enqueue(ROOT, {}, request_id, dedupe=dedupe or f"root:{request_id}")
        self.refresh_homes(request_id)

    def update_root(self, request_id: int, progress: str | None = None) -> None:
        """Bring the root message up to date with the request's state."""
        self._enqueue(UPDATE, {"progress": progress}, request_id)
        if progress is None:  # copy progress does not change what a Home shows
            self.refresh_homes(request_id)

    def refresh_homes(self, request_id: int) -> None:
        """Republish the App Home of everyone the request concerns."""
        if self.home is not None:
            self._enqueue(HOME, {"request": request_id}, None)

    def publish_home(self, user: str, notice: str | None = None) -> None:
        """Republish one person's App Home (with a ``notice`` at the top)."""
        if self.home is not None:
            self._enqueue(HOME, {"user": user, "notice": notice}, None)

    def permalink(self, request: Any) -> str | None:
        """The link to the request's root message (``chat.getPermalink``), kept in
        the store; None while the root message is not posted or Slack does not say."""
        if request.permalink or not request.root_ts:
            return request.permalink
        try:
            link = self.client.chat_getPermalink(channel=request.channel, message_ts=request.root_ts).get("permalink")
        except Exception as error:  # a missing link is shown as no link
            log.info("no permalink for %s: %s", request.display_id, error)
            return None
        if link:
            self.store.set_fields(request.id, permalink=link)
        return link

    def reply(self, request_id: int, text: str, *, broadcast: bool = False, dedupe: str | None = None,
              buttons: list[dict[str, Any]] | None = None) -> None:
        """A reply in the request's thread (``broadcast`` also shows it in the channel;
        ``buttons`` below its text, e.g. *View IAM statement*)."""
        self._enqueue(REPLY, {"text": text, "broadcast": broadcast, **({"buttons": buttons} if buttons else {})}, request_id, dedupe=dedupe)

    def final(self, request_id: int, text: str, *, dedupe_kind: str = "final", dm_text: str | None = None,
              buttons: list[dict[str, Any]] | None = None) -> None:
        """The request's last word: a broadcast reply in its thread, every card brought
        up to date, and a DM to the requester (``dm_text``: its short summary; exactly
        once each)."""
        self.reply(request_id, text, broadcast=True, dedupe=f"{dedupe_kind}:{request_id}", buttons=buttons)
        self.update_root(request_id)
        request = self.store.get(request_id)
        self.dm(request.requester, dm_text or text, request_id, dedupe=f"ended-dm:{request_id}", about_channel=request.channel)

    def post_card_elsewhere(self, request_id: int, target: str, *, dm: bool, note: str | None = None, dedupe: str | None = None,
                            role_target: str | None = None, lead: str | None = None) -> None:
        """Post a copy of the approval card to a channel, or to a person's DM (``dm``;
        ``lead`` starts its lock-screen text, e.g. ``Reminder: ``)."""
        self._enqueue(COPY, {"target": target, "dm": dm, "note": note, "role_target": role_target or target, "lead": lead}, request_id,
                      dedupe=dedupe or f"copy:{request_id}:{target}")

    def progress(self, request_id: int, progress: str | None = None) -> None:
        """Post, or edit in place, the request's one progress reply."""
        self._enqueue(PROGRESS, {"progress": progress}, request_id)

    def dm(self, user: str, text: str, request_id: int | None = None, *, dedupe: str | None = None, about_channel: str | None = None) -> None:
        """A direct message to one person."""
        self._enqueue(DM, {"user": user, "text": text, "about_channel": about_channel}, request_id, dedupe=dedupe)

    def respond(self, response_url: str, text: str, request_id: int | None = None) -> None:
        """An ephemeral answer to a slash command, through its response_url."""
        self._enqueue(RESPOND, {"url": response_url, "text": text}, request_id)

    def ephemeral(self, channel: str, user: str, text: str, request_id: int | None = None) -> None:
        self._enqueue(EPHEMERAL, {"channel": channel, "user": user, "text": text}, request_id)

    def post(self, channel: str, text: str, request_id: int | None = None, dedupe: str | None = None) -> None:
        self._enqueue(POST, {"channel": channel, "text": text}, request_id, dedupe=dedupe)

    def _enqueue(self, kind: str, payload: dict[str, Any], request_id: int | None, dedupe: str | None = None) -> None:
        if "text" in payload:  # messages are written with /ami; say the configured command
            payload = {**payload, "text": slacktext.with_command(payload["text"], self.command)}
        self.store.enqueue(kind, payload, request_id=request_id, dedupe_key=dedupe)
        self._wake.set()

    # -- sending ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="amibot-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self.poll_seconds
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            self._paced_until = None
            try:
                self.flush()
            except Exception:  # the sender must survive anything; rows stay pending
                log.exception("outbox flush failed")
            # A row held back by pacing is tried again as soon as its call may go.
            paced = self._paced_until
            wait = self.poll_seconds if paced is None else min(self.poll_seconds, max(0.01, paced - self.store.clock()))

    def flush(self) -> int:
        """Send what can be sent now; returns how many rows were finished.

        Each request's messages are one stream, sent in order by one process at a
        time under the lease ``outbox:<request id>`` (``outbox:-`` for messages of no
        request); a stream another replica is sending is left to it."""
        with self._lock:
            finished = 0
            rows = self.store.pending_outbox()
            streams = list(dict.fromkeys(r["request_id"] for r in rows if r["kind"] != HOME))
            for request_id in streams:
                with self.leases.hold(f"outbox:{'-' if request_id is None else request_id}") as mine:
                    if mine:
                        finished += self._flush_stream(request_id)
            if any(r["kind"] == HOME for r in rows) and not self._held_back("views.publish"):
                # After the messages, once per person, by one replica at a time.
                with self.leases.hold("outbox:homes") as mine:
                    homes = [r for r in self.store.pending_outbox() if r["kind"] == HOME] if mine else []
                    if homes:
                        finished += self._publish_homes(homes)
            return finished

    def _flush_stream(self, request_id: int | None) -> int:
        finished = 0
        # Read after the claim: fresh. Edits held back for later count as pending: a
        # newer edit supersedes them (the latest wins), never the other way round.
        waiting = [r for r in self.store.pending_outbox_for(request_id, due_only=False) if r["kind"] != HOME]
        newest = {r["kind"]: r["id"] for r in waiting if r["kind"] in (UPDATE, PROGRESS)}  # rows come oldest first
        now = self.store.clock()
        for row in waiting:
            # A row left "sending" by a crash may have reached Slack: it is resolved
            # (looked up) before anything supersedes it, or a second message appears.
            if row["kind"] in (UPDATE, PROGRESS) and row["state"] != "sending" and newest.get(row["kind"]) != row["id"]:
                self.store.finish_outbox(row["id"], "superseded")
                finished += 1
                continue
            if row["not_before"] > now:
                if row["kind"] in (UPDATE, PROGRESS) or request_id is None:
                    continue  # a held-back edit does not hold the thread's posts back
                break
            outcome = self._deliver(row)
            if outcome == "later":
                continue  # an edit that would come too soon: it waits, the thread goes on
            if outcome == "wait":
                if request_id is not None:
                    break  # an earlier message must go first: keep the thread's order
                continue
            finished += 1
        return finished

    def _publish_homes(self, rows: list[dict[str, Any]]) -> int:
        """Publish each concerned person's Home once for all of ``rows``."""
        assert self.home is not None
        notices: dict[str, str | None] = {}
        for row in rows:
            payload = row["payload"]
            if "user" in payload:
                notices[payload["user"]] = payload.get("notice") or notices.get(payload["user"])
            else:
                for user in self.home.audience(payload["request"]):
                    notices.setdefault(user, None)
        for user, notice in notices.items():
            try:
                self.client.views_publish(user_id=user, view=self.home.view(user, notice))
            except SlackApiError as error:
                code = error.response.get("error", "")
                if code == "ratelimited":
                    retry_after = float(error.response.headers.get("Retry-After", 5) or 5)
                    self.pacer.hold("views.publish", retry_after)
                    for row in rows:
                        self._later(row, retry_after, code)
                    return 0
                log.warning("views.publish for %s refused: %s", user, code)
            except Exception as error:  # connection errors: try again later
                for row in rows:
                    self._later(row, 10, repr(error))
                return 0
        for row in rows:
            self.store.finish_outbox(row["id"], "sent")
        return len(rows)

    def _send(self, row: dict[str, Any]) -> str:
        kind, payload, request_id = row["kind"], row["payload"], row["request_id"]
        try:
            if kind == RESPOND:
                response = WebhookClient(payload["url"]).send(text=payload["text"], response_type="ephemeral", replace_original=False)
                if response.status_code >= 500 or response.status_code == 429:
                    return self._later(row, 5, f"response_url answered {response.status_code}")
                self.store.finish_outbox(row["id"], "sent" if response.status_code < 300 else "failed", None if response.status_code < 300 else response.body)
                return "sent"
            if kind == EPHEMERAL:
                self.client.chat_postEphemeral(channel=payload["channel"], user=payload["user"], text=payload["text"])
            elif kind == POST:
                self._post_once(row, channel=payload["channel"], text=payload["text"])
            elif kind == DM:
                self._post_once(row, channel=self._dm_channel(payload["user"]), text=payload["text"])
            else:
                request = self.store.get(request_id)
                if kind == ROOT:
                    blocks = messages.root_blocks(request, self._owners(request))
                    ts = self._post_once(row, channel=request.channel, text=messages.root_text(request), blocks=blocks)
                    self.store.set_fields(request_id, root_ts=ts)
                    request.root_ts = ts
                    self.permalink(request)
                elif kind == COPY:
                    self._send_card_elsewhere(row, request)
                elif kind == UPDATE:
                    self._update_cards(request, payload.get("progress"))
                else:
                    if not request.root_ts:
                        return "wait" if self._root_pending(request_id) else self._fallback_to_channel(row, request)
                    if kind == PROGRESS:
                        self._send_progress(row, request)
                    else:
                        self._post_once(
                            row, channel=request.channel, thread_ts=request.root_ts, text=payload["text"], reply_broadcast=payload.get("broadcast", False),
                            **messages.reply_blocks(payload)
                        )
            self.store.finish_outbox(row["id"], "sent")
            return "sent"
        except SlackApiError as error:
            code = error.response.get("error", "")
            if code == "ratelimited":
                retry_after = float(error.response.headers.get("Retry-After", 5) or 5)
                self.pacer.hold(method_of(error), retry_after)  # only that method waits
                return self._later(row, retry_after, code)
            if kind == ROOT and code in ROOT_REFUSALS:
                self.store.finish_outbox(row["id"], "failed", code)
                log.warning("slack refused the root message of request %s: %s", request_id, code)
                if self.root_refused is not None:
                    self.root_refused(request_id, code)
                return "failed"
            if code in _PERMANENT:
                self.store.finish_outbox(row["id"], "failed", code)
                log.warning("slack refused %s message %s: %s", kind, row["id"], code)
                return "failed"
            return self._later(row, 10, code or str(error))
        except Exception as error:  # connection errors and the like: try again later
            return self._later(row, 10, repr(error))

    def _later(self, row: dict[str, Any], delay: float, error: str) -> str:
        self.store.retry_outbox_later(row["id"], delay, error)
        return "wait"

    def _root_pending(self, request_id: int) -> bool:
        return any(r["kind"] == ROOT and r["state"] in ("pending", "sending") for r in self.store.outbox(request_id))

    def _fallback_to_channel(self, row: dict[str, Any], request: Any) -> str:
        # The root message could not be posted (the bot is not in the channel): the
        # requester was told; thread messages go to them through the response_url.
        url = request.params.get("response_url")
        if url and row["kind"] == REPLY:
            WebhookClient(url).send(text=row["payload"]["text"], response_type="ephemeral", replace_original=False)
        self.store.finish_outbox(row["id"], "failed", "no root message")
        return "failed"

    def paced_until(self) -> float | None:
        """When the earliest row held back by pacing in the last flush may go (store
        clock), or None."""
        return self._paced_until

    def pending_count(self) -> int:
        return len(self.store.pending_outbox(limit=10_000))
