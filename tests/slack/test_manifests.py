"""The Slack app manifests (slack/manifest.yml for HTTP, slack/manifest.socket.yml for
Socket Mode) checked offline: they parse, carry the keys Slack's manifest schema
requires, declare exactly the scopes the Web API methods the bot calls need (no more),
and the commands, shortcut, interactivity and events the listeners use.

The rules come from Slack's app manifest reference
(https://docs.slack.dev/reference/app-manifest) and each method's page under
https://api.slack.com/methods/ ("Required scopes").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot import forms
from bot.config import BotConfig

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = {"http": ROOT / "slack" / "manifest.yml", "socket": ROOT / "slack" / "manifest.socket.yml"}
ENDPOINT = "https://YOUR-HOST/slack/events"

# Web API method -> the bot scopes that allow it (any one suffices for the channels the
# bot works in: public and private channels; DMs are not listed here). [] = no scope.
METHOD_SCOPES: dict[str, list[list[str]]] = {
    "chat.postMessage": [["chat:write"]],
    "chat.update": [["chat:write"]],
    "chat.postEphemeral": [["chat:write"]],
    "chat.getPermalink": [],
    "views.open": [],
    "views.update": [],
    "views.publish": [],
    "auth.test": [],
    "usergroups.users.list": [["usergroups:read"]],
    # public channels, then private ones: both are needed, each for its kind
    "conversations.members": [["channels:read"], ["groups:read"]],
    "conversations.history": [["channels:history"], ["groups:history"], ["im:history"]],
    "conversations.replies": [["channels:history"], ["groups:history"], ["im:history"]],
    "conversations.info": [["channels:read"], ["groups:read"]],
    "conversations.open": [["im:write"]],
    "conversations.join": [["channels:join"]],
    # files.getUploadURLExternal + the upload + files.completeUploadExternal (docs.slack.dev/reference/methods/files.completeUploadExternal)
    "files.upload.v2": [["files:write"]],
    "users.info": [["users:read"]],
}
# Scopes that no Web API call needs but a feature does.
FEATURE_SCOPES = {"commands": "the slash command and the global shortcut"}

TOP_LEVEL = {"_metadata", "display_information", "features", "oauth_config", "settings", "functions", "workflows", "outgoing_domains", "types", "datastores"}


def load(kind: str) -> dict:
    return yaml.safe_load(MANIFESTS[kind].read_text())


def source_files() -> list[Path]:
    return [p for d in ("bot", "handlers") for p in (ROOT / d).rglob("*.py")]


def called_methods() -> set[str]:
    """Web API methods the bot calls: every ``client.<method>(`` in bot/ and handlers/."""
    found = set()
    for path in source_files():
        for name in re.findall(r"\bclient\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text()):
            found.add(name.replace("_", "."))
    return found


def listened(decorator: str) -> set[str]:
    found = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        found.update(re.findall(rf"@app\.{decorator}\(\"([^\"]+)\"\)", path.read_text()))
    return found


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_manifest_has_the_keys_slack_requires(kind):
    m = load(kind)
    assert set(m) <= TOP_LEVEL, set(m) - TOP_LEVEL
    name = m["display_information"]["name"]
    assert isinstance(name, str) and 1 <= len(name) <= 35
    assert len(m["display_information"].get("description", "")) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", m["display_information"]["background_color"])
    bot_user = m["features"]["bot_user"]
    assert 1 <= len(bot_user["display_name"]) <= 80
    for command in m["features"]["slash_commands"]:
        assert re.fullmatch(r"/[^\s/]{1,31}", command["command"])
        assert 1 <= len(command["description"]) <= 2000 and len(command.get("usage_hint", "")) <= 1000
    for shortcut in m["features"]["shortcuts"]:
        assert shortcut["type"] in ("global", "message")
        assert 1 <= len(shortcut["name"]) <= 24 and 1 <= len(shortcut["description"]) <= 150
        assert 1 <= len(shortcut["callback_id"]) <= 255
    assert isinstance(m["oauth_config"]["scopes"]["bot"], list)
    settings = m["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert isinstance(settings["socket_mode_enabled"], bool)
    assert m["features"]["app_home"]["home_tab_enabled"] is True


def test_http_manifest_points_every_request_url_at_the_one_endpoint():
    m = load("http")
    assert m["settings"]["socket_mode_enabled"] is False
    assert [c["url"] for c in m["features"]["slash_commands"]] == [ENDPOINT]
    assert m["settings"]["event_subscriptions"]["request_url"] == ENDPOINT
    assert m["settings"]["interactivity"]["request_url"] == ENDPOINT
    # The AMI picker is an external select: its option loads need the options load URL.
    assert m["settings"]["interactivity"]["message_menu_options_url"] == ENDPOINT


def test_socket_manifest_has_no_urls_and_the_same_app():
    socket, http = load("socket"), load("http")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "url" not in socket["features"]["slash_commands"][0]
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    assert "request_url" not in socket["settings"]["interactivity"]
    strip_urls = lambda cmds: [{k: v for k, v in c.items() if k != "url"} for c in cmds]
    assert strip_urls(socket["features"]["slash_commands"]) == strip_urls(http["features"]["slash_commands"])
    assert socket["features"]["shortcuts"] == http["features"]["shortcuts"]
    assert socket["oauth_config"] == http["oauth_config"]
    assert socket["settings"]["event_subscriptions"]["bot_events"] == http["settings"]["event_subscriptions"]["bot_events"]


def test_every_method_the_bot_calls_has_its_scope_and_no_scope_is_unused():
    methods = called_methods()
    assert {"chat.postMessage", "views.open", "views.publish", "conversations.members", "chat.getPermalink"} <= methods  # the grep works
    unknown = methods - set(METHOD_SCOPES)
    assert not unknown, f"add these methods and their required scopes to METHOD_SCOPES: {sorted(unknown)}"
    needed = {scope for m in methods for alternatives in METHOD_SCOPES[m] for scope in alternatives} | set(FEATURE_SCOPES)
    for kind in MANIFESTS:
        declared = set(load(kind)["oauth_config"]["scopes"]["bot"])
        assert needed <= declared, f"{kind}: missing scopes {sorted(needed - declared)}"
        assert declared <= needed, f"{kind}: scopes nothing uses {sorted(declared - needed)}"


def test_the_commands_shortcuts_and_events_are_those_the_bot_listens_to():
    m = load("http")
    assert [c["command"] for c in m["features"]["slash_commands"]] == [BotConfig().command]
    assert [s["callback_id"] for s in m["features"]["shortcuts"]] == [forms.REQUEST_SHORTCUT]
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == listened("event")
    handlers_text = (ROOT / "handlers" / "forms.py").read_text()
    assert "@app.shortcut(forms.REQUEST_SHORTCUT)" in handlers_text and "@app.options(" in handlers_text


def test_the_readme_of_the_app_names_every_declared_scope():
    doc = (ROOT / "docs" / "slack-app.md").read_text()
    for scope in load("http")["oauth_config"]["scopes"]["bot"]:
        assert f"`{scope}`" in doc, scope
