"""The one escaping module: every string amibot sends to Slack that it did not write
itself goes through here.

Slack's mrkdwn treats ``&``, ``<`` and ``>`` as markup ("Formatting text for app
surfaces", api.slack.com/reference/surfaces/formatting#escaping): an AMI name or a
tag key such as ``<!channel>`` would otherwise ping a whole channel, and
``<https://evil|click>`` would become a link. The bot's own mentions, channel links
and dates are built by the helpers below and are the only ``<…>`` it means.

Text shown inside a code span (the request's command text) needs more: a backtick
ends the span and lets mrkdwn through, so backticks become ``ˋ``; bidirectional
overrides (U+202A–U+202E, U+2066–U+2069) could make the text read differently from
what runs, so they are removed; and the text is capped.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
COMMAND_TEXT_LIMIT = 300
_BIDI_RE = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
# What the bot itself puts between < and >: user and group mentions, channel links,
# dates, links to Slack messages (permalinks) and to an AMI in the EC2 console. Special mentions it never uses are
# NOT here (<!channel>, <!here>, <!everyone>), nor links to anywhere else.
MEANT_MARKUP_RE = re.compile(r"<(?:@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+|!subteam\^S[A-Z0-9]+|!date\^\d+\^[^|<>]*\|[^<>]*|https://[a-z0-9-]+\.slack\.com/archives/[^\s|<>]+\|[^<>]*"
                             r"|https://([a-z0-9-]+)\.console\.aws\.amazon\.com/ec2/home\?region=\1#ImageDetails:imageId=ami-[0-9a-f]+\|ami-[0-9a-f]+)>")


def escape(text: object) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup, and drop bidi
    overrides. Safe on any text, AWS's included."""
    return _BIDI_RE.sub("", str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: object, limit: int = COMMAND_TEXT_LIMIT) -> str:
    """Text shown as inline code: escaped, no backtick can end the span, no line
    break splits it, capped at ``limit`` characters. Returns the span with its backticks."""
    plain = " ".join(_BIDI_RE.sub("", str(text)).split()).replace("`", "ˋ")
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    return f"`{escape(plain) or ' '}`"


def plain(text: object, limit: int | None = None) -> str:
    """Text for a ``plain_text`` object (no markup is parsed there): bidi stripped, capped."""
    cleaned = _BIDI_RE.sub("", str(text))
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def mention(user: str) -> str:
    """A mention of a user (U…/W…) or a user group (S…); anything else is shown escaped."""
    if re.fullmatch(r"S[A-Z0-9]+", user or ""):
        return f"<!subteam^{user}>"
    if re.fullmatch(r"[UW][A-Z0-9]+", user or ""):
        return f"<@{user}>"
    return escape(user)


def channel(channel_id: str) -> str:
    """A link to a channel (``<#C…>``); anything else is shown escaped."""
    if re.fullmatch(r"[CGD][A-Z0-9]+", channel_id or ""):
        return f"<#{channel_id}>"
    return escape(channel_id)


def with_command(text: str, command: str) -> str:
    """Text written with ``/ami`` in it, saying the configured slash command instead."""
    if command == "/ami":
        return text
    return re.sub(r"(?<![\w/])/ami(?=[\s`]|$)", command, text)


def unmeant_markup(text: str) -> list[str]:
    """Every ``<`` in ``text`` that does not open markup the bot means (tests)."""
    stripped = MEANT_MARKUP_RE.sub("", text)
    return [stripped[max(0, i - 20) : i + 30] for i, c in enumerate(stripped) if c == "<"]
