"""The shapes of signed Slack payloads the bot accepts (issue 17, finding 6).

A signed request is from Slack, but its payload must still have the shape the
listeners read: a block action with no action, a view submission without a user or
with a string ``state``, an option load whose ``view`` is a list, an event that is a
string — each would fail deep inside a listener (500). The endpoint asks
:func:`problem` first and answers 400 with its words.

Shapes from Slack's reference: "Interaction payloads" (block_actions, view_submission,
view_closed, block_suggestion, shortcut; api.slack.com/reference/interaction-payloads),
"Events API" (url_verification, event_callback; api.slack.com/apis/events-api) and
"Slash commands" (the form fields; api.slack.com/interactivity/slash-commands).
"""

from __future__ import annotations

from typing import Any

_INTERACTIVE = {"block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "message_action"}
_OPTIONAL_DICTS = ("team", "enterprise", "container", "message", "channel", "view", "state")


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _dict_or_none(payload: dict, key: str) -> bool:
    return payload.get(key) is None or isinstance(payload.get(key), dict)


def _view_problem(view: Any, *, required: bool) -> str | None:
    if view is None:
        return "has no view" if required else None
    if not isinstance(view, dict):
        return "has a view that is not an object"
    for key in ("id", "callback_id", "private_metadata"):
        if view.get(key) is not None and not _is_str(view[key]):
            return f"has a view whose {key} is not a string"
    state = view.get("state")
    if state is not None and not (isinstance(state, dict) and isinstance(state.get("values", {}), dict)
                                  and all(isinstance(b, dict) and all(isinstance(leaf, dict) for leaf in b.values())
                                          for b in state.get("values", {}).values())):
        return "has a view whose state is not {values: {block: {action: {...}}}}"
    return None


def interactive_problem(payload: dict) -> str | None:
    """What is wrong with an interaction payload's shape, or None."""
    kind = payload.get("type")
    if kind not in _INTERACTIVE:
        return "is not an interaction type amibot handles"
    user = payload.get("user")
    if not (isinstance(user, dict) and _is_str(user.get("id")) and user["id"]):
        return "has no user id"
    for key in _OPTIONAL_DICTS:
        if not _dict_or_none(payload, key):
            return f"has a {key} that is not an object"
    for key in ("trigger_id", "response_url", "api_app_id", "callback_id", "action_id", "block_id"):
        if payload.get(key) is not None and not _is_str(payload[key]):
            return f"has a {key} that is not a string"
    if kind == "block_actions":
        actions = payload.get("actions")
        if not (isinstance(actions, list) and actions and all(isinstance(a, dict) and _is_str(a.get("action_id")) for a in actions)):
            return "has no actions"
        if any(a.get("value") is not None and not _is_str(a["value"]) for a in actions):
            return "has an action whose value is not a string"
        return _view_problem(payload.get("view"), required=False)
    if kind in ("view_submission", "view_closed"):
        if payload.get("response_urls") is not None and not (isinstance(payload["response_urls"], list) and all(isinstance(u, dict) for u in payload["response_urls"])):
            return "has response_urls that are not a list of objects"
        problem = _view_problem(payload.get("view"), required=True)
        if problem is None and not _is_str(payload["view"].get("private_metadata")):
            return "has a view without private_metadata (Slack always sends it, empty or not)"
        return problem
    if kind == "block_suggestion":
        if not _is_str(payload.get("value")):
            return "has a value that is not a string"
        return _view_problem(payload.get("view"), required=False)
    return None  # shortcut, message_action: the common fields above


def events_problem(body: dict) -> str | None:
    """What is wrong with an Events API body's shape, or None."""
    kind = body.get("type")
    if kind == "url_verification":
        return None if _is_str(body.get("challenge")) else "url_verification has no challenge"
    if kind != "event_callback":
        return "is not an Events API type amibot handles"
    event = body.get("event")
    if not (isinstance(event, dict) and _is_str(event.get("type"))):
        return "has an event that is not an object with a type"
    if event.get("user") is not None and not _is_str(event["user"]):
        return "has an event whose user is not a string"
    for key in ("event_id", "team_id", "api_app_id"):
        if body.get(key) is not None and not _is_str(body[key]):
            return f"has a {key} that is not a string"
    if not _dict_or_none(event, "view"):
        return "has an event whose view is not an object"
    return None


def form_problem(fields: dict[str, list[str]]) -> str | None:
    """What is wrong with a form-encoded body without ``payload`` (a slash command,
    or Slack's SSL check), or None."""
    if "ssl_check" in fields:
        return None
    if "command" not in fields:
        return "is neither a slash command nor an interaction"
    for key in ("command", "user_id", "channel_id"):
        if not (fields.get(key) or [""])[0]:
            return f"is a slash command without {key}"
    return None
