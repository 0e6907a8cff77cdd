"""The attacker's view of the request form and its option loads, over the real HTTP
endpoint (issue 17): which accounts and AMIs a member can list, and where the form
may post."""

from __future__ import annotations

from offline import rehearsal
from bot import forms
from tests.handlers.test_form_over_http import _form, _values


def test_a_member_sees_only_the_accounts_they_may_request_from(stack_with):
    """Finding 3: with `accounts.prod.requesters` naming only the owners' group, a member
    who owns nothing gets a form without prod, an option load with source=prod lists no
    AMI of prod, a request from prod is refused, and an unknown account's answer lists
    only the accounts they may use — never every account and its id."""
    stack = stack_with(prod_lines='requesters = ["S0PLATFORM"]')
    member = rehearsal.REQUESTER
    stack.slash("", user=member)
    view = _form(stack)
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
    mine = stack.fake.wait_for(lambda: [v for v in stack.fake.views.values() if v.get("callback_id") == forms.REQUEST_FORM_VIEW][1:] or None)[-1]
    assert "prod" in [o["value"] for o in next(b for b in mine["blocks"] if b.get("block_id") == forms.SOURCE)["element"]["options"]]
