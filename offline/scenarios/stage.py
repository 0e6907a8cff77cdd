"""What every demo scenario plays with: the transcript it prints and checks, the
:class:`Stage` (the bot, local Slack, the sandbox world) and the small waits."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from offline import rehearsal


class Transcript:
    """Prints the conversation and records which expectations held."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.lines = 0
        self.failures: list[str] = []
        self.checks = 0

    def say(self, who: str, text: str) -> None:
        first, *rest = (text or "").splitlines() or [""]
        print(f"{who:>14} │ {first}", file=self.out)
        for line in rest:
            print(f"{'':>14} │ {line}", file=self.out)
        self.lines += 1 + len(rest)

    def note(self, text: str) -> None:
        print(f"{'':>14} ┆ {text}", file=self.out)
        self.lines += 1

    def expect(self, what: str, ok: bool) -> bool:
        self.checks += 1
        mark = "✔" if ok else "✘"
        print(f"{mark:>14} │ {what}", file=self.out)
        self.lines += 1
        if not ok:
            self.failures.append(what)
        return ok


def blocks_text(message: dict) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if block.get("type") == "header":
            parts.append(block["text"]["text"])
        elif block.get("type") == "section":
            if block.get("text"):
                parts.append(block["text"]["text"])
            # Each field as one "Label: value" line (a phone shows them in two columns).
            parts += [f["text"].replace("\n", ": ", 1) for f in block.get("fields") or []]
        elif block.get("type") == "actions":
            parts.append("   ".join(f"[ {(e.get('text') or e.get('placeholder') or {}).get('text', '')} ]" for e in block["elements"]))
        elif block.get("type") == "context":
            parts.append(" ".join(e.get("text", "") for e in block["elements"]))
    return "\n".join(parts) or message.get("text", "")


def wait(predicate: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


def ephemeral_after(fake: Any, count_before: int, user: str) -> str | None:
    found = fake.ephemerals(user)
    return found[-1].get("text") if len(found) > count_before else None


def ack_text(result: Any) -> str:
    try:
        return result.json().get("text", result.body)
    except Exception:
        return result.body


def request_id(message: dict) -> str:
    """The request id of a root message (its text starts with ``R-n:``)."""
    return (message.get("text") or "").split(":")[0]


@dataclass
class Stage:
    """Everything a scenario plays with."""

    t: Transcript
    slack: Any  # SignedSlackClient
    fake: Any  # FakeSlack
    world: Any  # rehearsal.SandboxWorld
    channel: str
    sandbox: Any  # offline.sandbox.Sandbox
    bot: Any  # bot.app.Amibot
    clock: Any = None  # offline.clock.Clock: the bot's and the sandbox's time
    last_plan: str = ""  # the text of the last "View exact changes" modal a scenario opened
    closing: list[str] = field(default_factory=list)  # messages the closing note quotes

    def ask(self, text: str, user: str = rehearsal.REQUESTER, who: str = "bob") -> Any:
        """Bob (or ``user``, called ``who``) types ``/ami <text>``; the transcript shows
        it and the bot's ack."""
        self.t.say(f"@{who}", f"/ami {text}")
        result = self.slack.slash(user, self.channel, text)
        self.t.say(f"amibot (only {who})", ack_text(result))
        return result

    def ask_refused(self, text: str) -> str | None:
        """Bob asks for something the bot must refuse; returns the refusal he alone sees."""
        before = len(self.fake.ephemerals(rehearsal.REQUESTER))
        self.ask(text)
        answer = wait(lambda: ephemeral_after(self.fake, before, rehearsal.REQUESTER))
        self.t.say("amibot (only bob)", str(answer))
        return answer

    def root_for(self, needle: str, timeout: float = 20.0) -> dict | None:
        """The newest root message whose text, or whose request's command, mentions
        ``needle`` (the card's text names the AMI and the accounts, not the command)."""
        return wait(lambda: next((m for m in reversed(self.fake.messages(self.channel))
                                  if (needle in (m.get("text") or "") or needle in self._command_of(m)) and not m.get("reply_broadcast")), None), timeout)

    def _command_of(self, message: dict) -> str:
        number = request_id(message)
        if not number.startswith("R-") or not number[2:].isdigit() or message.get("thread_ts") not in (None, message.get("ts")):
            return ""
        try:
            return self.bot.store.get(int(number[2:])).command_text
        except Exception:  # not a request's root message
            return ""

    def final_reply(self, root: dict, timeout: float = 60.0) -> dict | None:
        return wait(lambda: next((m for m in self.fake.thread(self.channel, root["ts"]) if m.get("reply_broadcast")), None), timeout)

    def exact_changes(self, root: dict, user: str | None = None, who: str = "@alice") -> str:
        """Someone clicks [ View exact changes ] on the card; the modal they see is
        printed and its text returned."""
        user = user or rehearsal.OWNER
        request = request_id(root)
        seen = set(self.fake.views)
        self.t.say(who, "clicks [ View exact changes ]")
        self.slack.click(user, self.channel, root["ts"], "amibot_view_changes", request)
        view = wait(lambda: next((v for k, v in self.fake.views.items() if k not in seen and v.get("callback_id") == "amibot_exact_changes"), None))
        text = blocks_text(view or {})
        self.t.say(f"amibot (modal, only {who[1:]})", text)
        return text

    def dm_card(self, user: str, timeout: float = 20.0) -> tuple[str, dict] | None:
        """The newest approval card the bot sent ``user`` in a DM: (DM channel, message)."""
        def found() -> tuple[str, dict] | None:
            channel = self.fake.dm_channel(user)
            cards = [m for m in self.fake.messages(channel) if m.get("blocks")] if channel else []
            return (channel, cards[-1]) if cards else None
        return wait(found, timeout)  # type: ignore[return-value]

    def show_thread(self, root: dict) -> None:
        for reply in self.fake.thread(self.channel, root["ts"]):
            self.t.say("amibot (thread)", reply.get("text", ""))
