"""What each operation's alert says on a lock screen (its ``text.alert``), and the
requester's progress DM: elapsed time and an estimate from the copy's own percentage."""

from __future__ import annotations

import pytest

from bot import messages, results
from bot.requests import Request, Step

EXPIRES = 1_700_086_400.0  # Wed 2023-11-15 22:13 UTC


def request_of(kind: str, params: dict, facts: dict | None = None) -> Request:
    return Request(id=3, uid="u", kind=kind, state="pending_approval", requester="U0BOB", channel="C0PLATFORM", command_text=f"{kind} …",
                   params=params, facts={"image": {"name": "payments-api-2026.11"}, **(facts or {})}, approver_accounts=["prod"], root_ts="1.2",
                   created_at=EXPIRES - 86_400, expires_at=EXPIRES, active_until=None, reminded=0, error=None)


@pytest.mark.parametrize("kind, params, facts, said", [
    ("share", {"source": "prod", "targets": ["dev"]}, None, "share payments-api-2026.11 prod → dev"),
    ("share", {"source": "prod", "targets": [], "ou_id": "ou-1", "duration_seconds": 7200}, None, "share payments-api-2026.11 prod → the organisation OU ou-1 for 2 h"),
    ("unshare", {"source": "prod", "targets": ["dev"]}, None, "remove dev's access to payments-api-2026.11 in prod"),
    ("copy", {"source": "prod", "source_region": "us-east-1", "target": "dev", "target_region": "eu-west-1"}, None,
     "copy payments-api-2026.11 prod:us-east-1 → dev:eu-west-1"),
    ("copy", {"source": "prod", "source_region": "us-east-1", "target": "dev", "target_region": "us-east-1"}, None, "copy payments-api-2026.11 prod → dev"),
    ("distribute", {"source": "prod", "targets": ["dev:eu-west-1", "prod:eu-west-1", "dev:us-west-2", "qa:us-east-1"]}, None,
     "distribute payments-api-2026.11 prod → dev:eu-west-1, prod:eu-west-1, dev:us-west-2 +1"),
    ("migrate", {"source": "prod", "instance_id": "i-1", "availability_zone": "us-east-1b"}, {"instance": {"name": "web-1"}},
     "migrate web-1 in prod to us-east-1b (reboots it)"),
    ("retire", {"source": "prod", "mode": "deregister", "targets": ["prod", "dev:eu-west-1", "dev:us-west-2"]}, None,
     "deregister payments-api-2026.11 in prod and 2 copies"),
    ("tag", {"source": "prod", "tags": {"tier": "gold"}}, None, "tag payments-api-2026.11 in prod: tier=gold"),
])
def test_each_operation_says_who_asks_you_what_from_where_to_where_by_when(kind, params, facts, said):
    request = request_of(kind, params, facts)
    assert messages.lock_screen(request) == f"<@U0BOB> asks you to approve: {said}, by Wed 22:13 UTC (R-3)"
    assert messages.lock_screen(request, "Reminder: ").startswith("Reminder: <@U0BOB> asks you to approve: ")


def test_an_ami_without_a_name_is_named_by_its_id_and_aws_names_are_escaped():
    request = request_of("share", {"source": "prod", "targets": ["dev"], "image_id": "ami-0abc"})
    request.facts["image"] = {"name": None}
    assert "share ami-0abc prod → dev" in messages.lock_screen(request)
    request.facts["image"] = {"name": "<!channel>"}
    assert "share &lt;!channel&gt; prod → dev" in messages.lock_screen(request)


def test_progress_dm_has_the_elapsed_time_and_an_estimate_from_the_copys_percentage():
    request = request_of("copy", {"source": "prod", "source_region": "us-east-1", "target": "dev", "target_region": "eu-west-1"})
    request.steps = [Step(3, 1, "ec2.wait_image_available", "dev", "222222222222", "eu-west-1", {}, "Wait", "pending", {"progress": 25}, None)]
    assert results.copy_percent(request) == 25
    said = results.progress_dm(request, 600.0, results.copy_percent(request))
    assert "running for 10 min: 25 % copied, about 30 min to go" in said and "<@U0BOB>" not in said
    assert "to go" not in results.progress_dm(request, 600.0, None)
