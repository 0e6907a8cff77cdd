"""An account configured without ``role_arn`` is acted on with the bot's own credentials:
they must belong to that account (STS GetCallerIdentity), checked over the real endpoint."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.app import Amibot
from offline import rehearsal
from offline.slack import SignedSlackClient
from tests.conftest import bot_options


@pytest.fixture
def roleless_bot(sandbox, fake_slack, tmp_path):
    world = rehearsal.seed(sandbox)
    config = rehearsal.sandbox_config(str(tmp_path / "amibot.db"), fake_slack.api_url, env={})
    prod = dataclasses.replace(config.accounts["prod"], role_arn=None, external_id=None)
    config = dataclasses.replace(config, accounts={**config.accounts, "prod": prod})
    options = bot_options(time.time, aws_max_attempts=2)  # on real time, as before
    del options["grant_wait_seconds"]  # the bot's own
    bot = Amibot(config, **options)
    bot.start()
    url = bot.start_http(port=0)
    yield bot, world, SignedSlackClient(url + "/slack/events", config.slack.signing_secret, fake_slack)
    bot.stop()


def test_account_whose_credentials_are_another_accounts_is_refused_with_a_fix(roleless_bot, fake_slack):
    bot, world, slack = roleless_bot
    assert slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"share {world.plain_image} from prod to dev").status == 200
    answer = fake_slack.wait_for(lambda: fake_slack.ephemerals(rehearsal.REQUESTER) or None, 20)[-1]["text"]
    bot.worker.drain()
    assert "role_arn" in answer and rehearsal.PROD in answer and "123456789012" in answer
    assert bot.store.find() == []
