"""``/ami unshare``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import AccountRef, Parser, render_targets
from bot.verbs.share.command import parse_share_words
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class UnshareCommand:
    """``unshare <ami> from <acct[:region]> to <accounts>|org|<ou>``: remove what a share added."""

    image_id: str
    source: AccountRef
    targets: tuple[str, ...]
    organization: bool
    ou_id: str | None
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        return " ".join(["unshare", self.image_id, "from", self.source.render(), "to", render_targets(self.targets, self.organization, self.ou_id)])


def parse(p: Parser) -> UnshareCommand:
    """The words after ``unshare`` (no options)."""
    image_id, source, targets, organization, ou_id, _ = parse_share_words(p, {})
    return UnshareCommand(image_id, source, targets, organization, ou_id)


SYNTAX = Syntax(
    verb="unshare",
    parse=parse,
    usage="/ami unshare <ami-id> from <acct[:region]> to <acct>[,<acct>...]|org|<ou-id>",
    example="/ami unshare ami-0123456789abcdef0 from prod:eu-west-1 to dev",
    summary="Stop sharing an AMI",
    takes_reason=True,
)
