"""The ``/ami history`` use cases (mixed into :class:`bot.services.RequestService`): a
page answered at once, the Next click, and the CSV sent to the asker's DM by the
worker. The history itself (what matches, who may see it, the words) is ``bot.history``.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import grammar, messages, slack_files, slacktext
from bot.errors import AmibotError
from bot.history import History, read_cursor

log = logging.getLogger("amibot.history")


class Reply(str):
    """An answer with Block Kit blocks: the string is the text fallback (what a
    notification and a screen reader say), ``blocks`` what Slack shows."""

    blocks: list[dict[str, Any]]

    def __new__(cls, text: str, blocks: list[dict[str, Any]]) -> "Reply":
        made = super().__new__(cls, text)
        made.blocks = blocks
        return made


class HistoryUseCases:
    """``/ami history``; needs ``config``, ``store``, ``visibility``, ``access``,
    ``worker`` and ``notifier`` from the service."""

    config: Any
    store: Any
    visibility: Any
    access: Any
    worker: Any
    notifier: Any

    @cached_property
    def history(self) -> History:
        """The history over the service's store, by ``/ami status``'s visibility rule."""
        return History(self.config, self.store, self.visibility, self.access.account_for)

    def history_command(self, command: grammar.HistoryCommand, user: str, response_url: str | None) -> str:
        """A page at once; with ``csv``, the export goes to the asker's DM (the worker
        builds and uploads it). A bad account is refused here, before anything is sent."""
        if command.account:
            self.history.account_for(command.account, user)
        if not command.csv:
            return Reply(*self.history.answer(command, user))
        self.worker.submit(self.send_history, command, user=user, response_url=response_url)
        return "Preparing the history as a CSV file … it will arrive in your direct messages with amibot (only you get it)."

    def history_next(self, value: str, user: str) -> Reply:
        """A Next click: the command is read again from the button and the clicker's own
        visibility applies (a forwarded or forged value shows them nothing more)."""
        before, text = read_cursor(value)
        command = grammar.parse_command(text)
        if not isinstance(command, grammar.HistoryCommand):
            raise AmibotError("That button is not a history page. Nothing was read.")
        return Reply(*self.history.answer(command, user, before))

    def send_history(self, command: grammar.HistoryCommand, *, user: str, response_url: str | None) -> None:
        """Build the CSV of what ``user`` may see and upload it into their DM only."""
        client = self.notifier.client
        try:
            filename, text, count = self.history.export(command, user, slack_files.UserNames(client))
            comment = (f"Request history, {count} request{'s' if count != 1 else ''} you may see "
                       f"({slacktext.code(command.render(with_csv=False))}): one line per event, the request log's columns.")
            slack_files.send_to_dm(client, user, filename, text, title=filename, comment=comment)
            said = f":page_facing_up: The history ({count} request{'s' if count != 1 else ''}) is in your direct messages with amibot."
        except SlackApiError as error:  # Slack's refusal, in words (missing_scope: the app lacks files:write)
            code = str(error.response.get("error") or "")
            needed = error.response.get("needed")
            log.warning("history export for %s refused by Slack: %s", user, code)
            said = (f":no_entry: Slack refused the file (`{slacktext.escape(code)}`" + (f": the app needs the `{slacktext.escape(needed)}` scope" if needed else "")
                    + "). Nothing was sent; ask whoever runs amibot to reinstall the app from `slack/manifest.yml`.")
        except Exception as error:  # one error path: messages.error_text
            log.warning("history export for %s failed: %r", user, error)
            said = ":no_entry: The history could not be sent: " + messages.error_text(error)
        if response_url:
            self.notifier.respond(response_url, said)
        else:
            self.notifier.dm(user, said)
