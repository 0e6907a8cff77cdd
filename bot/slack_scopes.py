"""The Slack bot scopes amibot uses: one list, used by ``amibot doctor``, the fake
Slack and the manifest test (``slack/manifest*.yml`` declare exactly these), each with
the Web API methods or features that need it. docs/slack-app.md says what breaks
without each one."""

from __future__ import annotations

# scope -> why (the Web API methods the bot calls that need it)
REQUIRED_BOT_SCOPES: dict[str, str] = {
    "commands": "the slash command and the global shortcut",
    "chat:write": "chat.postMessage, chat.update, chat.postEphemeral",
    "usergroups:read": "usergroups.users.list (owners given as user groups)",
    "channels:read": "conversations.members/info in public channels (who may see a request; why a post failed)",
    "groups:read": "conversations.members/info in private channels (same, for private channels)",
    "im:write": "conversations.open (approvals, reminders and endings by direct message)",
}

# Without these the bot still works, with the degradation said here.
OPTIONAL_BOT_SCOPES: dict[str, str] = {
    "channels:history": "conversations.history/replies in public channels: after a crash, whether a message already reached Slack (without it a message may show twice)",
    "groups:history": "the same in private channels",
    "im:history": "the same in direct messages",
    "channels:join": "conversations.join: join a public channel a request was made in, instead of asking to be invited",
    "files:write": "files.getUploadURLExternal/completeUploadExternal (files_upload_v2): `/ami history csv` sends its file to the asker's DM (without it the asker is told Slack refused the file)",
    "users:read": "users.info: people's names in the `/ami history csv` export (without it the export names them by Slack id)",
}


def missing_scopes(granted: set[str], scopes: dict[str, str] = REQUIRED_BOT_SCOPES) -> list[str]:
    """The scopes of ``scopes`` not in ``granted``, in their order."""
    return [scope for scope in scopes if scope not in granted]
