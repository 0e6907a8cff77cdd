"""The Slack bot scopes amibot needs: one list, used by ``amibot doctor`` (and meant
for the app manifest), each with the Web API methods that need it."""

from __future__ import annotations

# scope -> why (the Web API methods the bot calls that need it)
REQUIRED_BOT_SCOPES: dict[str, str] = {
    "commands": "the /ami slash command",
    "chat:write": "chat.postMessage, chat.update, chat.postEphemeral",
    "usergroups:read": "usergroups.users.list (owners given as user groups)",
    "channels:history": "conversations.history/replies in public channels (did a message reach Slack before a crash)",
    "groups:history": "conversations.history/replies in private channels (same, for private channels)",
}


def missing_scopes(granted: set[str]) -> list[str]:
    """The required scopes not in ``granted``, in the order above."""
    return [scope for scope in REQUIRED_BOT_SCOPES if scope not in granted]
