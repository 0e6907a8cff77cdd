"""``/ami copy``: its command, its parse rule and the words that explain it. A copy to
several targets is a distribution (``DistributeCommand``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.distribute.command import DistributeCommand, check_kms_region, copy_targets, kms, name
from bot.verbs.lexer import AMI_ID_RE, AccountRef, Parser, flag, require
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class CopyCommand:
    """``copy <ami> from <acct[:region]> to <acct[:region]>``: one copy, owned by the target."""

    image_id: str
    source: AccountRef
    target: AccountRef
    kms: str | None
    name: str | None
    verify: bool
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        words = ["copy", self.image_id, "from", self.source.render(), "to", self.target.render()]
        if self.kms:
            words += ["kms", self.kms]
        if self.name:
            words += ["name", f'"{self.name}"']  # AMI names cannot hold a double quote
        if self.verify:
            words.append("verify")
        return " ".join(words)


def parse(p: Parser) -> CopyCommand | DistributeCommand:
    """The words after ``copy``."""
    image_id = p.subject(AMI_ID_RE, "an AMI id", "ami-0123456789abcdef0")
    got = p.options({"from": p.source, "to": lambda kw: copy_targets(p, kw), "kms": lambda kw: kms(p, kw), "name": lambda kw: name(p, kw), "verify": flag})
    require(p, got, "from", "<account[:region]>")
    require(p, got, "to", "<account[:region]>")
    targets: tuple[AccountRef, ...] = got["to"]  # type: ignore[assignment]
    key = got.get("kms")
    check_kms_region(p, key, targets)  # type: ignore[arg-type]
    if len(targets) > 1:
        # Several targets: one request, one copy per account-region (a distribution).
        return DistributeCommand(image_id, got["from"], targets, key, verify=bool(got.get("verify", False)), name=got.get("name"))  # type: ignore[arg-type]
    return CopyCommand(image_id, got["from"], targets[0], key, got.get("name"), bool(got.get("verify", False)))  # type: ignore[arg-type]


SYNTAX = Syntax(
    verb="copy",
    parse=parse,
    usage="/ami copy    <ami-id> from <acct[:region]> to <acct[:region]>[,<acct[:region]>...] [kms <key>] [name <name>] [verify]",
    example='/ami copy ami-0123456789abcdef0 from prod:eu-west-1 to dev:us-east-2 name "web server v2" verify',
    summary="Copy an AMI into an account",
    options="kms <key>, name <name>, verify",
    takes_reason=True,
)
