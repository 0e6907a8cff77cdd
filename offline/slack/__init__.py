"""Slack's side of the conversation, on loopback: for the tests and ``amibot demo``.

Three pieces, standard library only:

* :class:`FakeSlack` answers the Slack Web API (point ``SLACK_API_URL`` / the
  ``WebClient``'s ``base_url`` at :attr:`FakeSlack.api_url`), records every call,
  keeps channels and threads as Slack would show them, enforces Slack's published rate limits (429 with ``Retry-After``), can script 429s and errors,
  and serves ``response_url``\\ s.
* :class:`SignedSlackClient` plays a person in Slack: it builds slash-command,
  button-click, view-submission, option-load and event payloads the way Slack does,
  signs them (``v0:<timestamp>:<body>``, HMAC-SHA256) and POSTs them to the bot.
* :class:`FakeSocketMode` is Slack's Socket Mode WebSocket endpoint (RFC 6455):
  ``apps.connections.open`` on the fake hands out its ``ws://`` URLs, and it delivers
  envelopes (``slash_commands``, ``interactive``, ``events_api``) and collects the acks.

The fake is strict where a real Slack would be and the bot could get it wrong:
a call with no token is ``not_authed``; more than 50 blocks (100 in a view), a
section text over 3,000 characters, more than 25 elements in an actions block,
button text over 75 characters or a duplicate ``action_id``/``block_id`` is
``invalid_blocks``; a ``trigger_id`` it issued works once, within 3 s.

The package, by concern (this module only re-exports; import from ``offline.slack``):

* :mod:`offline.slack.server`: :class:`FakeSlack` itself: the HTTP server, method
  dispatch, scripted errors and rate limits, and the record of calls;
* :mod:`offline.slack.state`: what the fake holds (channels, messages, views, triggers)
  and the helpers every method uses;
* :mod:`offline.slack.messages`: ``chat.*`` and what a POST to a ``response_url`` does;
* :mod:`offline.slack.conversations`: ``conversations.*`` (threads, history, DMs, joins, members);
* :mod:`offline.slack.views`: ``views.*`` and the one-use ``trigger_id``\\ s;
* :mod:`offline.slack.people`: ``users.info`` and ``usergroups.users.list``;
* :mod:`offline.slack.blocks`: the Block Kit limits Slack enforces;
* :mod:`offline.slack.client`: :class:`SignedSlackClient` and :class:`HttpResult`;
* :mod:`offline.slack.socket_mode`: :class:`FakeSocketMode`.
"""

from __future__ import annotations

from offline.slack.client import HttpResult, SignedSlackClient
from offline.slack.server import FakeSlack, SlackCall
from offline.slack.socket_mode import FakeSocketMode

__all__ = ["FakeSlack", "SlackCall", "SignedSlackClient", "HttpResult", "FakeSocketMode"]
