"""What the approval card says about an operation, in labelled fields, and the helpers
every verb's ``text.py`` writes them with (issue 18: a card people act on from a
phone).

A verb's ``card(request) -> CardFacts`` fills the fields (*AMI*, *From → To*,
*Access*, *Duration*) and the warning lines; its ``risk(request)`` is the one risk
line (the card and the Approve confirm); its ``alert(request)`` the lock-screen words
(``alert_ami``, ``alert_place``, ``several``: shorter than the card's). Accounts are named by their configured
name (the alias) everywhere here; account ids appear only in the exact changes.
Every value from users or AWS (an AMI's name, a tag) goes through
:mod:`bot.slacktext`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.requests import Request
from bot.slacktext import escape

AMI_NAME_LIMIT = 80  # a phone shows about this much of a field's line
AWS_MANAGED_ALIAS = "alias/aws/"  # AWS reserves this prefix for its managed keys ("Aliases in AWS KMS", KMS developer guide)


@dataclass(frozen=True)
class CardFacts:
    """The card's fields for one request (mrkdwn, escaped) and its warning lines."""

    subject: str  # the AMI (or instance): its name and id
    route: str  # From → To: account names and regions
    access: str  # what the target can do once approved
    duration: str | None = None  # how long it lasts (None: not shown)
    warnings: tuple[str, ...] = ()  # each shown as its own line under the risk
    subject_label: str = "AMI"


def _image_name(request: Request) -> str:
    """The AMI's name as the preflight read it ("" when it has none)."""
    return str((request.facts.get("image") or {}).get("name") or "")


def ami(request: Request) -> str:
    """The AMI as the card shows it: its name (escaped, capped) and its id."""
    image_id = request.params.get("image_id") or ""
    name = _image_name(request)
    if len(name) > AMI_NAME_LIMIT:
        name = name[: AMI_NAME_LIMIT - 1] + "…"
    return f"{escape(name)} ({image_id})" if name else str(image_id)


def place(account: Any, region: Any) -> str:
    """An account and region as people say it: ``prod (us-east-1)``."""
    return f"{escape(account)} ({escape(region)})" if region else escape(account)


# -- the lock screen: shorter words, for an approver's notification (each verb's alert) --


def alert_ami(request: Request) -> str:
    """The AMI as people know it: its name, else its id."""
    name = _image_name(request)
    return escape(name) if name else escape(request.params.get("image_id") or "an AMI")


def alert_place(alias: object, region: object = None, home_region: object = None) -> str:
    """An account by its name, with the region where it differs from ``home_region``."""
    return escape(f"{alias}:{region}" if region and region != home_region else alias)


def several(names: list[str], shown: int = 3) -> str:
    """``a, b, c`` or ``a, b, c +2``: a list kept short for a phone."""
    head = ", ".join(escape(n) for n in names[:shown])
    return head + (f" +{len(names) - shown}" if len(names) > shown else "")


def names(aliases: list[str] | tuple[str, ...]) -> str:
    """Account names in a sentence: ``dev``, ``dev and qa``, ``dev, qa and ops``."""
    shown = [f"`{escape(a)}`" for a in aliases]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1] if shown else "nobody"


def encrypted(request: Request) -> bool:
    """Whether the AMI's snapshots are encrypted (the preflight saw a key)."""
    return bool((request.facts.get("image") or {}).get("keys"))


def key_name(key: dict[str, Any]) -> str:
    """A key as the card names it: its first alias, else its key id (never its ARN)."""
    aliases = key.get("aliases") or []
    return escape(aliases[0]) if aliases else escape(str(key.get("arn", "")).rsplit("/", 1)[-1])


def source_key_names(request: Request) -> str:
    """The source AMI's keys, by alias or key id."""
    return ", ".join(key_name(k) for k in (request.facts.get("image") or {}).get("keys") or [])


def aws_managed(key: dict[str, Any] | None) -> bool:
    """Whether a key is AWS-managed (``aws/ebs``): by what KMS said, else by its alias."""
    if not key:
        return False
    if key.get("manager"):
        return key["manager"] == "AWS"
    return any(str(a).startswith(AWS_MANAGED_ALIAS) for a in key.get("aliases") or [])


def aws_managed_warning(where: list[str], key: dict[str, Any]) -> str:
    """The one warning line for the targets (``where``, already escaped) that would get
    an AWS-managed key."""
    one = len(where) == 1
    return (f"*Warning:* {', '.join(where)} {'gets a copy' if one else 'get copies'} encrypted with the AWS-managed key {key_name(key)}: "
            f"{'it' if one else 'they'} can never be shared with another account (name a customer-managed key with `kms <key>` if "
            f"{'it' if one else 'they'} must be).")


def duration(request: Request, *, permanent: str) -> str:
    """A time-boxed request's length in words, else ``permanent``."""
    seconds = request.params.get("duration_seconds")
    if not seconds:
        return permanent
    hours = seconds / 3600
    length = f"{hours / 24:g} d" if hours >= 24 and hours % 24 == 0 else f"{hours:g} h"
    return f"{length}, then removed automatically"


def generic(request: Request) -> CardFacts:
    """The fields of a request whose verb has no ``card`` of its own (e.g. extend)."""
    params = request.params
    source = params.get("source") or ""
    targets = params.get("targets") or []
    route = place(source, params.get("region") or params.get("source_region"))
    if targets:
        route += " → " + ", ".join(escape(t) for t in targets)
    return CardFacts(subject=ami(request), route=route, access="no change in AWS until approved" if not request.steps else "see the exact changes")
