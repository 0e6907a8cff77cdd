"""The attacker's view of the request form and its option loads, over the real HTTP
endpoint (issue 17): which accounts and AMIs a member can list, and where the form
may post."""

from __future__ import annotations

from offline import rehearsal
from bot import forms
from tests.handlers.test_form_over_http import _choose, _form, _values


def test_a_member_sees_only_the_accounts_they_may_request_from(stack_with):
    """Finding 3: with `accounts.prod.requesters` naming only the owners' group, a member
    who owns nothing gets a form without prod, an option load with source=prod lists no
    AMI of prod, a request from prod is refused, and an unknown account's answer lists
    only the accounts they may use — never every account and its id."""
    stack = stack_with(prod_lines='requesters = ["S0PLATFORM"]')
    member = rehearsal.REQUESTER
    stack.slash("", user=member)
    view = _choose(stack, _form(stack)["id"], "share")
    source = next(b for b in view["blocks"] if b.get("block_id") == forms.SOURCE)
    assert [o["value"] for o in source["element"]["options"]] == ["dev"]
    loaded = stack.slack.suggest(member, "ami", "", view_id=view["id"], values=_values(source="prod", region=rehearsal.REGION))
    assert loaded.status == 200 and loaded.json()["options"] == []
    refused = stack.slash(f"share {stack.world.encrypted_image} from prod to dev", user=member).json()["text"]
    assert "You may not request changes from `prod`" in refused
    unknown = stack.slash(f"share {stack.world.encrypted_image} from staging to dev", user=member).json()["text"]
    assert "`dev`" in unknown and "prod" not in unknown and rehearsal.PROD not in unknown
    # A member of the group may: prod's AMIs are listed for them.
    carol = "U0CAROL"
    stack.slash("", user=carol)
    opened = stack.fake.wait_for(lambda: [v for v in stack.fake.views.values() if v.get("callback_id") == forms.REQUEST_FORM_VIEW][1:] or None)[-1]
    stack.slack.choose(carol, opened["id"], "operation", "share")
    mine = stack.fake.wait_for(lambda: (v := stack.fake.views[opened["id"]]) and any(b.get("block_id") == forms.SOURCE for b in v["blocks"]) and v)
    assert "prod" in [o["value"] for o in next(b for b in mine["blocks"] if b.get("block_id") == forms.SOURCE)["element"]["options"]]
    # The redraw for a member keeps prod out too (the menu is built for the person choosing).
    _choose(stack, view["id"], "copy")
    redrawn = stack.fake.views[view["id"]]
    assert [o["value"] for o in next(b for b in redrawn["blocks"] if b.get("block_id") == forms.SOURCE)["element"]["options"]] == ["dev"]


def _submit(stack, user: str, channel: str):
    values = _values(operation="share", source="prod", region=rehearsal.REGION, ami=stack.world.encrypted_image, targets=["dev"], channel=channel)
    return stack.slack.submit_view(user, forms.REQUEST_FORM_VIEW, values)


def test_the_form_posts_only_where_the_requester_is_and_never_joins(harness):
    """Finding 5: a member picks a public channel they are not in (the card with the
    owners' group mention would land there), or one the bot is not in (it would call
    conversations.join): the form answers with a field error, creates nothing, joins
    nothing."""
    harness.fake.channel_members.update({"C0ANNOUNCE": [rehearsal.OWNER], "C0NOTJOINED": [rehearsal.REQUESTER]})
    harness.fake.public_channels_not_joined.add("C0NOTJOINED")
    harness.slash("")
    _form(harness)
    not_mine = _submit(harness, rehearsal.REQUESTER, "C0ANNOUNCE").json()
    assert "not a member of that channel" in not_mine["errors"][forms.CHANNEL]
    not_joined = _submit(harness, rehearsal.REQUESTER, "C0NOTJOINED").json()
    assert "does not join" in not_joined["errors"][forms.CHANNEL]
    harness.settle()
    assert harness.bot.store.find() == []
    assert harness.fake.calls_to("conversations.join") == []
    assert harness.fake.messages("C0ANNOUNCE") == [] and harness.fake.messages("C0NOTJOINED") == []
