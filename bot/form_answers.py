"""The request form's answers: read from a view's ``state.values``, rendered into the
text the slash command would take (``render``), and judged by the grammar
(``field_errors``), so the form accepts and refuses exactly what ``/ami`` does.

Errors go under the field the person filled, in the form's words: a required field left
empty says what to choose; a value the grammar refuses is named as it was typed (the
grammar's keywords, which the form never shows, are left out).
"""

from __future__ import annotations

import re
from typing import Any

from bot import grammar
from bot.errors import UsageError
from bot.verbs import registry
from bot.verbs.form_fields import CHANNEL, OPERATION, REASON, REASON_FIELD, Field, FormAnswers, quoted

ERROR_TEXT_LIMIT = 300


def _leaf(values: dict[str, Any], block: str) -> dict[str, Any]:
    return (values.get(block) or {}).get(block) or {}


def _selected(values: dict[str, Any], block: str) -> str | None:
    return (_leaf(values, block).get("selected_option") or {}).get("value")


def _read(values: dict[str, Any], f: Field) -> Any:
    leaf = _leaf(values, f.id)
    if f.kind in ("accounts", "regions", "flags"):
        return tuple(o["value"] for o in leaf.get("selected_options") or [])
    if f.kind == "date":
        return leaf.get("selected_date")
    if f.kind in ("text", "longtext", "lines"):
        value = leaf.get("value") or ""
        if f.kind == "lines":
            return tuple(" ".join(line.split()) for line in value.splitlines() if line.strip())
        return " ".join(value.split()) or None
    return (leaf.get("selected_option") or {}).get("value")


def answers(view: dict[str, Any], operation: str | None = None) -> FormAnswers:
    """Read a form's ``state.values``: the fields of ``operation`` (default: the one
    chosen in the form), the reason and the channel."""
    values = (view.get("state") or {}).get("values") or {}
    op = operation or _selected(values, OPERATION)
    form = registry.form_of(op)
    fields = (*form.fields, REASON_FIELD) if form else ()
    return FormAnswers(op, {f.id: _read(values, f) for f in fields}, _leaf(values, CHANNEL).get("selected_conversation"))


def render(a: FormAnswers) -> str:
    """The slash-command text the answers stand for (without the command itself)."""
    form = registry.form_of(a.operation)
    words = [a.operation or "", *(form.words(a) if form else [])]
    if a.get(REASON):
        words += ["reason", quoted(a.get(REASON))]
    return " ".join(w for w in words if w)


# Which field a problem of the grammar is about when no value the person filled is quoted
# first: the first field of the form whose markers the problem holds (most specific first).
_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("duration", ("`for", "duration")),
    ("kms", ("KMS key", "kms")),
    ("name", ("name `", "AMI name")),
    ("update_lt", ("launch template", "update-lt")),
    ("share_with", ("share-with",)),
    ("tags", ("tag", "key=value")),
    ("instance", ("instance id",)),
    ("ami", ("AMI id",)),
    ("date", ("date",)),
    ("mode", ("deprecate", "disable", "deregister")),
    ("subnet", ("subnet",)),
    ("zone", ("Availability Zone", "zone")),
    ("options", ("allow-copy", "verify", "no-reboot", "with-copies", "default")),
    ("targets", ("`to", "target", "public sharing", "OU", "organisation", "is named twice", "is the source account")),
    ("target", ("`to", "target", "is the source account")),
    ("target_regions", ("region",)),
    ("target_region", ("region",)),
    ("region", ("region",)),
    ("source", ("`from", "source", "account")),
)
_KEYWORD_IN_TICKS = re.compile(r"`(?:for|to|from|kms|name|share-with|update-lt|subnet) ([^`]+)`")


def in_form_words(problem: str) -> str:
    """The grammar's problem as the form's: values as typed, without the keywords the
    form never shows (``for 3d`` → ``3d``; "named twice in `to`" → "named twice")."""
    problem = _KEYWORD_IN_TICKS.sub(r"`\1`", problem)
    problem = re.sub(r"^name `", "`", problem)
    problem = re.sub(r" in `(?:to|share-with)`", "", problem)
    return problem if len(problem) <= ERROR_TEXT_LIMIT else problem[: ERROR_TEXT_LIMIT - 1] + "…"


def _field_for(problem: str, a: FormAnswers, fields: tuple[Field, ...]) -> str:
    first = (re.findall(r"`([^`]*)`", problem) or [""])[0].lower()
    for f in reversed(fields):  # later fields are the more specific (the targets after the source)
        if any(v and (first == v.lower() or first.startswith(v.lower() + ":")) for v in a.many(f.id)):
            return f.id
    ids = {f.id: f.id for f in fields} | {"options": next((f.id for f in fields if f.kind == "flags"), "")}
    for field_id, marks in _MARKERS:
        if ids.get(field_id) and any(m in problem for m in marks):
            return ids[field_id]
    return OPERATION


def field_errors(a: FormAnswers) -> dict[str, str]:
    """``{block_id: words}`` for a submission that is not a valid request; empty if it is."""
    form = registry.form_of(a.operation)
    if form is None:
        return {OPERATION: "Choose an operation."}
    errors = {f.id: f.missing or f"Fill in {f.label.lower()}." for f in form.fields if f.required and not a.many(f.id)}
    for f in form.fields:
        chosen = a.many(f.id)
        if f.kind in ("choice", "flags") and any(v not in dict(f.choices) for v in chosen):
            errors.setdefault(f.id, "Choose from the menu.")
    if not a.channel:
        errors[CHANNEL] = "Choose the channel the request lives in: its approval message and thread go there."
    errors = {**(form.check(a) if form.check else {}), **errors}
    if errors:
        return errors
    try:
        grammar.parse_command(render(a))
    except UsageError as error:
        return {_field_for(error.detail, a, (*form.fields, REASON_FIELD)): in_form_words(error.detail)}
    return {}
