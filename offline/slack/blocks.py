"""The Block Kit limits Slack enforces and a plain dict would slip past, and how Slack
reads a boolean form field.

Where the limits are written (docs.slack.dev, Block Kit reference): "Section block"
(text ≤ 3,000; fields ≤ 10, each ≤ 2,000), "Header block" (plain_text only, ≤ 150),
"Context block" (≤ 10 elements), "Actions block" (≤ 25 elements), "Button element"
(text ≤ 75), "Confirmation dialog object" (title ≤ 100, text ≤ 300, confirm and deny
≤ 30, every one a plain_text object). Slack answers ``invalid_blocks`` to each.
"""

from __future__ import annotations

from typing import Any


def _truthy(value: Any) -> bool:
    return value in (True, 1) or str(value).lower() in ("true", "1", "yes")


def _block_problems(blocks: Any, max_blocks: int) -> list[str]:
    """The Block Kit limits Slack enforces and a plain dict would slip past."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = [f"{len(blocks)} blocks; at most {max_blocks}"] if len(blocks) > max_blocks else []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"block {i}: not an object")
            continue
        action_ids: set[str] = set()  # Slack wants action_ids unique within a block
        if block.get("block_id") in block_ids:
            problems.append(f"block {i}: duplicate block_id {block['block_id']!r}")
        block_ids.add(block.get("block_id"))
        block_ids.discard(None)
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if len(text) > 3000:
            problems.append(f"block {i}: section text is {len(text)} characters; at most 3000")
        problems += [f"block {i}: {p}" for p in _layout_problems(block)]
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if len(elements) > 25:
            problems.append(f"block {i}: {len(elements)} elements; at most 25")
        elements += [e for e in (block.get("accessory"), block.get("element")) if e]
        for el in (e for e in elements if isinstance(e, dict)):
            if el.get("type") == "button" and len((el.get("text") or {}).get("text", "")) > 75:
                problems.append(f"block {i}: button text over 75 characters")
            if el.get("confirm") is not None:
                problems += [f"block {i}: {p}" for p in _confirm_problems(el["confirm"])]
            options = el.get("options") or []
            if len(options) > 100:
                problems.append(f"block {i}: {len(options)} options; at most 100")
            if any(len((o.get("text") or {}).get("text", "")) > 75 for o in options):
                problems.append(f"block {i}: option text over 75 characters")
            if el.get("action_id") in action_ids:
                problems.append(f"block {i}: duplicate action_id {el['action_id']!r}")
            if el.get("action_id"):
                action_ids.add(el["action_id"])
    return problems


def _layout_problems(block: dict[str, Any]) -> list[str]:
    """A header's, a section's fields' and a context's own limits."""
    problems = []
    kind = block.get("type")
    if kind == "header":
        text = block.get("text") or {}
        if text.get("type") != "plain_text":
            problems.append("a header's text must be plain_text")
        if len(text.get("text", "")) > 150:
            problems.append(f"header text is {len(text.get('text', ''))} characters; at most 150")
    if kind == "section":
        fields = block.get("fields") or []
        if len(fields) > 10:
            problems.append(f"{len(fields)} section fields; at most 10")
        problems += [f"a section field is {len(f.get('text', ''))} characters; at most 2000" for f in fields if len(f.get("text", "")) > 2000]
        if not block.get("text") and not fields:
            problems.append("a section needs text or fields")
    if kind == "context" and len(block.get("elements") or []) > 10:
        problems.append(f"{len(block['elements'])} context elements; at most 10")
    return problems


def _confirm_problems(confirm: Any) -> list[str]:
    """A confirmation dialog object: four plain_text parts within their lengths."""
    if not isinstance(confirm, dict):
        return ["confirm must be an object"]
    problems = []
    for part, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
        value = confirm.get(part)
        if value is None:
            if part in ("title", "text"):
                problems.append(f"confirm {part} is required")
            continue
        if value.get("type") != "plain_text":
            problems.append(f"confirm {part} must be plain_text, not {value.get('type')!r}")
        if len(value.get("text", "")) > limit:
            problems.append(f"confirm {part} is {len(value.get('text', ''))} characters; at most {limit}")
    return problems
