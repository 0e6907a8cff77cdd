"""``/ami migrate``: its command, its parse rule and the words that explain it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.verbs.lexer import AZ_RE, INSTANCE_ID_RE, REGION_RE, SUBNET_ID_RE, AccountRef, Parser, flag, require, show
from bot.verbs.verb import Syntax


@dataclass(frozen=True)
class MigrateCommand:
    """``migrate <instance> from <acct[:region]> to <zone>``: the instance, imaged and launched in another zone."""

    instance_id: str
    source: AccountRef
    availability_zone: str
    subnet_id: str | None
    no_reboot: bool
    reason: str | None = None

    def render(self) -> str:
        """The canonical text of this command (parses back to an equal command)."""
        words = ["migrate", self.instance_id, "from", self.source.render(), "to", self.availability_zone]
        if self.subnet_id:
            words += ["subnet", self.subnet_id]
        if self.no_reboot:
            words.append("no-reboot")
        return " ".join(words)


def subnet(p: Parser, kw: str) -> str:
    """``subnet``: a subnet id."""
    tok = p.value(kw, "a subnet id, e.g. `subnet subnet-0123456789abcdef0`")
    w = tok.text.lower()
    if not SUBNET_ID_RE.fullmatch(w):
        raise p.fail(f"`{show(tok.text)}` is not a subnet id (expected subnet- followed by 8 or 17 hex digits)")
    return w


def parse(p: Parser) -> MigrateCommand:
    """The words after ``migrate``."""
    instance_id = p.subject(INSTANCE_ID_RE, "an instance id", "i-0123456789abcdef0")

    def zone(kw: str) -> str:
        tok = p.value(kw, "an Availability Zone, e.g. `to eu-west-1b`")
        w = tok.text.lower()
        if AZ_RE.fullmatch(w):
            return w
        if REGION_RE.fullmatch(w):
            raise p.fail(f"`{show(tok.text)}` is a region, not an Availability Zone: add the zone letter, e.g. {w}b")
        raise p.fail(
            f"`{show(tok.text)}` is not an Availability Zone (expected a region and a letter, e.g. eu-west-1b; "
            "migrate moves an instance within its account)"
        )

    got = p.options({"from": p.source, "to": zone, "subnet": lambda kw: subnet(p, kw), "no-reboot": flag})
    require(p, got, "from", "<account[:region]>")
    require(p, got, "to", "<availability-zone>")
    source: AccountRef = got["from"]  # type: ignore[assignment]
    az: str = got["to"]  # type: ignore[assignment]
    az_region = AZ_RE.fullmatch(az).group(1)  # type: ignore[union-attr]
    if source.region is None:
        # The zone names the region the instance is in: "from prod to eu-west-1b" needs no ":eu-west-1".
        source = AccountRef(source.account, az_region)
    elif source.region != az_region:
        raise p.fail(
            f"`{az}` is not in {source.region}: migrate moves an instance to another zone of the same region"
        )
    return MigrateCommand(instance_id, source, az, got.get("subnet"), bool(got.get("no-reboot", False)))  # type: ignore[arg-type]


SYNTAX = Syntax(
    verb="migrate",
    parse=parse,
    usage="/ami migrate <instance-id> from <acct[:region]> to <availability-zone> [subnet <id>] [no-reboot]",
    example="/ami migrate i-0123456789abcdef0 from prod:eu-west-1 to eu-west-1b no-reboot",
    summary="Move an instance to another zone",
    options="subnet <id>, no-reboot",
    takes_reason=True,
)
