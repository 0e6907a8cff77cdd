"""What a verb's request form asks for, declared in its folder (``bot/verbs/<verb>/form.py``)
and read by ``bot.forms``, which turns it into Block Kit.

A form has no rules of its own: :class:`VerbForm` says which fields the operation shows
and how their answers become the words the slash command would take (``words``); the
grammar then judges that text, so the form and ``/ami`` accept and refuse the same.

Field kinds (``Field.kind``): ``account`` / ``accounts`` (the configured accounts, one or
several), ``region`` / ``regions``, ``ami`` (the source account's AMIs, searched),
``text``, ``longtext`` (several lines, read as one), ``lines`` (one value a line), ``choice`` (a menu of ``choices``), ``flags``
(checkboxes of ``choices``) and ``date``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bot.verbs.lexer import MAX_REASON_LENGTH

OPERATION, CHANNEL, REASON = "operation", "channel", "reason"


@dataclass(frozen=True)
class Field:
    """One input of the form: its block and action id, its label and its kind."""

    id: str
    label: str
    kind: str
    required: bool = False
    placeholder: str = ""
    hint: str | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) of a choice or flags field
    max_length: int = 200
    missing: str = ""  # said under a required field left empty


@dataclass(frozen=True)
class FormAnswers:
    """A submitted (or prefilled) form: the operation, its fields' values by field id
    (a string, or a tuple for ``accounts``/``regions``/``flags``/``lines``), and the
    channel."""

    operation: str | None
    values: Mapping[str, Any] = field(default_factory=dict)
    channel: str | None = None

    def get(self, field_id: str) -> Any:
        """The value of one field (None, or () for the kinds that hold several)."""
        return self.values.get(field_id)

    def many(self, field_id: str) -> tuple[str, ...]:
        """The values of a field that holds several (empty if none)."""
        value = self.values.get(field_id)
        return tuple(value) if isinstance(value, (tuple, list)) else ((value,) if value else ())

    def has(self, flag_field: str, flag: str) -> bool:
        """Whether checkbox ``flag`` of ``flag_field`` is ticked."""
        return flag in self.many(flag_field)


@dataclass(frozen=True)
class VerbForm:
    """A verb's form: its fields (in order, after the operation), the words of the
    command they stand for (without the verb and the reason), and any check only the
    form needs (``{field id: words}``, e.g. "one of these two")."""

    fields: tuple[Field, ...]
    words: Callable[[FormAnswers], list[str]]
    check: Callable[[FormAnswers], dict[str, str]] | None = None


# -- the fields several verbs ask for --------------------------------------------------

AMI = Field("ami", "AMI", "ami", required=True, hint="The source account's own AMIs in the source region, newest first.", missing="Choose the AMI.")
SOURCE = Field("source", "Source account", "account", required=True, missing="Choose the account the AMI is in.")
REGION = Field("region", "Source region", "region", required=True, missing="Choose the source region.")
REASON_FIELD = Field(REASON, "Reason", "longtext", placeholder="Why? The approvers read it.", max_length=MAX_REASON_LENGTH,
                     missing="Say why: every request here needs a reason (bot.require_reason).")
SHARE_TARGETS = Field("targets", "Target accounts", "accounts")
TARGET_OTHER = Field("target_other", "Or: organisation or OU", "text", placeholder="org, or ou-ab12-cd345678", max_length=80)


def quoted(text: str) -> str:
    """``text`` as one quoted word of the grammar (its quotes end at a quote that ends a
    word: the user's own double quotes become single ones)."""
    return '"' + " ".join(text.split()).replace('"', "'") + '"'


def source_words(a: FormAnswers) -> list[str]:
    """``from <acct[:region]>``, or nothing if no account is chosen."""
    source, region = a.get(SOURCE.id), a.get(REGION.id)
    return ["from", source + (f":{region}" if region else "")] if source else []


def share_target_words(a: FormAnswers) -> list[str]:
    """``to`` and the accounts, ``org`` or the OU typed, as one comma-separated word."""
    targets = ",".join([*a.many(SHARE_TARGETS.id), *([a.get(TARGET_OTHER.id)] if a.get(TARGET_OTHER.id) else [])])
    return ["to", targets] if targets else []


def one_share_target(a: FormAnswers) -> dict[str, str]:
    """A share or unshare needs accounts, or the organisation, or an OU."""
    if not a.many(SHARE_TARGETS.id) and not a.get(TARGET_OTHER.id):
        return {SHARE_TARGETS.id: "Choose the accounts, or type org or an OU id below."}
    return {}
