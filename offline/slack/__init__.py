"""Slack's side of the conversation, on loopback: for the tests and ``amibot demo``.

Three pieces, standard library only (one module each, the Web API methods in
``web_api``):

* :class:`FakeSlack` answers the Slack Web API (point ``SLACK_API_URL`` / the
  ``WebClient``'s ``base_url`` at :attr:`FakeSlack.api_url`), records every call,
  keeps channels and threads as Slack would show them, can script 429s and errors,
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
"""

from offline.slack.client import HttpResult, SignedSlackClient
from offline.slack.fake import FakeSlack, SlackCall
from offline.slack.socket_mode import FakeSocketMode

__all__ = ["FakeSlack", "SlackCall", "SignedSlackClient", "HttpResult", "FakeSocketMode"]
