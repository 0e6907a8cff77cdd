"""Who may see or ask for what, beyond deciding (issue 17): who may audit an AMI and
read drift findings, which accounts a person may request from
(``accounts.<a>.requesters``), where requests may be made, and each person's rate
limit on commands that call AWS.

The rules, in one place:

- An AMI's ``/ami audit`` is for the owners of the audited account; ``/ami audit
  --drift`` lists only the findings of accounts the asker owns. Both are asked in an
  allowed channel (``bot.allowed_channels``) or by DM.
- A request's source account must list the requester in ``requesters`` (users or
  groups), or have no ``requesters`` (everyone). Targets are not restricted by it.
- Every user may ask for at most ``bot.aws_commands_per_minute`` commands that call
  AWS (audits, requests, the form's AMI lookups) a minute, counted in the store so
  the limit holds across replicas.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from bot import slacktext
from bot.config import AccountConfig, Config
from bot.errors import NotAllowedError, UnknownAccountError

RATE_WINDOW_SECONDS = 60


class RateLimitedError(NotAllowedError):
    """You have asked for too much at once."""


class Access:
    """The checks above, over the config, the store's counters and Slack's groups."""

    def __init__(self, config: Config, count_use: Callable[[str, int], int], owners: Callable[[str], set[str]],
                 group_members: Callable[[str], Iterable[str]]):
        self.config = config
        self.count_use = count_use  # (user, window seconds) -> uses in this window, this one included
        self.owners = owners  # account alias -> its owners (groups expanded)
        self.group_members = group_members

    # -- where --------------------------------------------------------------------------

    def check_channel(self, channel: str, *, dm_too: bool = False) -> None:
        """Requests are made in an allowed channel (any, when none is configured);
        ``dm_too``: a DM with the bot is allowed as well."""
        allowed = self.config.bot.allowed_channels
        if not allowed or channel in allowed or (dm_too and channel.startswith("D")):
            return
        where = ", ".join(slacktext.channel(c) for c in allowed) + (" or a DM with the bot" if dm_too else "")
        raise NotAllowedError(f"Requests are made only in {where}. Nothing was changed.", fix="Ask again in one of those channels.")

    # -- audit ----------------------------------------------------------------------------

    def check_audit(self, alias: str, user: str, channel: str) -> AccountConfig:
        """The audited account, when ``user`` owns it and asks where audits are allowed."""
        self.check_channel(channel, dm_too=True)
        account = self.account_for(alias, user, owned_only=True)
        if user not in self.owners(account.alias):
            raise NotAllowedError(f"Only the owners of `{account.alias}` may audit its AMIs. Nothing was read.",
                                  fix="Ask one of its owners, or use `/ami status` for a request you made.")
        return account

    def drift_rows(self, rows: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
        """The drift findings of the accounts ``user`` owns."""
        owned = {a.id for a in self.config.accounts.values() if user in self.owners(a.alias)}
        return [r for r in rows if r.get("account_id") in owned]

    # -- who may request from which account ---------------------------------------------------

    def may_request_from(self, account: AccountConfig, user: str) -> bool:
        """Whether ``user`` may request with ``account`` as the source."""
        if account.requesters is None:
            return True
        for who in account.requesters:
            if who == user or (who.startswith("S") and user in self.group_members(who)):
                return True
        return False

    def sources_for(self, user: str) -> list[AccountConfig]:
        """The accounts ``user`` may request from, in config order."""
        return [a for a in self.config.accounts.values() if self.may_request_from(a, user)]

    def account_for(self, ref: str, user: str, *, owned_only: bool = False) -> AccountConfig:
        """The account ``ref`` names; unknown, its message lists only the accounts the
        user may request from (or owns, with ``owned_only``), never all of them."""
        try:
            return self.config.account(ref)
        except UnknownAccountError as error:
            mine = [a for a in self.config.accounts.values() if (user in self.owners(a.alias) if owned_only else self.may_request_from(a, user))]
            listed = ", ".join(f"`{a.alias}`" for a in mine) or "none"
            raise UnknownAccountError(error.detail, fix=f"Accounts you may use here: {listed}.") from None

    def check_source(self, ref: str | None, user: str) -> None:
        """Refuse a request from a source account the user may not request from."""
        if ref is None:
            return
        account = self.account_for(ref, user)
        if not self.may_request_from(account, user):
            raise NotAllowedError(f"You may not request changes from `{account.alias}` (`accounts.{account.alias}.requesters`). Nothing was changed.",
                                  fix="Ask one of the account's requesters or owners.")

    # -- how often --------------------------------------------------------------------------

    def check_rate(self, user: str) -> None:
        """Count one command that calls AWS; refuse it past the user's limit."""
        limit = self.config.bot.aws_commands_per_minute
        if self.count_use(user, RATE_WINDOW_SECONDS) > limit:
            raise RateLimitedError(
                f"You have asked for more than {limit} AWS lookups or requests in a minute (`bot.aws_commands_per_minute`). Nothing was read or changed.",
                fix="Wait a minute and ask again.",
            )
