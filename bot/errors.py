"""Typed errors of the domain.

Each is raised where the problem is found and carries a message written for the
person in Slack: what was wrong and how to fix it. One place (``bot.messages``)
turns them into an ephemeral reply or a thread reply; nothing else formats errors.

A class's docstring is its default message, in the style of sqlite-utils.
"""

from __future__ import annotations


class AmibotError(Exception):
    """Something went wrong."""

    def __init__(self, detail: str | None = None, *, fix: str | None = None):
        self.detail = detail or (self.__doc__ or "").strip().splitlines()[0]
        self.fix = fix
        super().__init__(self.user_message())

    def user_message(self) -> str:
        """The text shown to the user: what was wrong, then how to fix it."""
        return f"{self.detail}\n{self.fix}" if self.fix else self.detail


class ConfigError(AmibotError):
    """The configuration is not valid."""

    def __init__(self, key: str, problem: str, fix: str):
        self.key = key
        super().__init__(f"config key `{key}`: {problem}", fix=f"Fix: {fix}")


class UsageError(AmibotError):
    """That command is not one I understand."""

    def __init__(self, problem: str, usage: str):
        self.usage = usage
        super().__init__(problem, fix=f"Usage:\n{usage}")


class UnknownAccountError(AmibotError):
    """That account is not configured."""


class RequestNotFoundError(AmibotError):
    """There is no request with that id."""


class NotAnApproverError(AmibotError):
    """You cannot decide this request."""


class AlreadyDecidedError(AmibotError):
    """This request was already decided."""


class NobodyCanApproveError(AmibotError):
    """Nobody could approve this request, so it was not created."""


class PreflightError(AmibotError):
    """The preflight checks failed, so nobody was asked to approve."""


class NotAllowedError(AmibotError):
    """You are not allowed to do that."""

