"""The request form over the real HTTP endpoint, signed as Slack signs: opened from
`/ami` and from the global shortcut, the AMI picker's option loads, field errors, and
a submission that creates exactly what the slash command creates."""

from __future__ import annotations

from offline import rehearsal
from bot import forms

PROD = rehearsal.PROD


def _form(harness):
    return harness.fake.wait_for(lambda: next((v for v in harness.fake.views.values() if v.get("callback_id") == forms.REQUEST_FORM_VIEW), None))


def _selected(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}


def _values(**fields) -> dict:
    """state.values for the form, as Slack sends them."""
    values: dict = {}
    for block, value in fields.items():
        if block in ("operation", "source", "region", "target_region"):
            leaf = _selected(value)
        elif block == "ami":
            leaf = {"type": "external_select", "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}
        elif block == "targets":
            leaf = {"type": "multi_static_select", "selected_options": [{"text": {"type": "plain_text", "text": v}, "value": v} for v in value]}
        elif block == "options":
            leaf = {"type": "checkboxes", "selected_options": [{"text": {"type": "plain_text", "text": v}, "value": v} for v in value]}
        elif block == "channel":
            leaf = {"type": "conversations_select", "selected_conversation": value}
        else:
            leaf = {"type": "plain_text_input", "value": value}
        values[block] = {block: leaf}
    return values


def test_slash_with_no_text_opens_the_form_in_the_listener(harness):
    result = harness.slash("")
    assert result.status == 200 and not result.body  # the form instead of an answer
    opened = harness.fake.calls_to("views.open")
    assert len(opened) == 1 and opened[0].response["ok"]
    assert opened[0].params["trigger_id"] == harness.slack.last_trigger_id
    view = _form(harness)
    channel = next(b for b in view["blocks"] if b.get("block_id") == "channel")
    assert channel["element"]["initial_conversation"] == harness.channel
    assert channel["element"]["response_url_enabled"] is True


def test_the_global_shortcut_opens_the_form(harness):
    result = harness.slack.shortcut(rehearsal.REQUESTER, forms.REQUEST_SHORTCUT)
    assert result.status == 200
    view = _form(harness)
    assert harness.fake.calls_to("views.open")[0].response["ok"]
    channel = next(b for b in view["blocks"] if b.get("block_id") == "channel")
    assert channel["element"]["default_to_current_conversation"] is True


def test_the_ami_picker_searches_the_chosen_accounts_own_amis(harness):
    world = harness.world
    long_name = ("x<!channel>&" + "y" * 200)[:128]
    odd = world.sandbox.create_image(PROD, rehearsal.REGION, name=long_name)
    dev_image = world.sandbox.create_image(rehearsal.DEV, rehearsal.REGION, name="payments-dev-only")
    harness.slash("")
    view = _form(harness)
    state = _values(source="prod", region=rehearsal.REGION)

    def loaded(query: str, values: dict) -> list:
        # A cold account's first load may outlast the catalog's wait (on a busy machine):
        # the answer then says "still loading", and the person types again.
        def attempt():
            result = harness.slack.suggest(rehearsal.REQUESTER, "ami", query, view_id=view["id"], values=values)
            assert result.status == 200 and len(result.json()["options"]) <= 100
            options = result.json()["options"]
            return None if [o["value"] for o in options] == ["loading"] else options
        return harness.fake.wait_for(attempt, timeout=30)

    options = loaded("", state)
    values = [o["value"] for o in options]
    assert set(values) == {world.encrypted_image, world.aws_managed_image, world.plain_image, odd}
    assert dev_image not in values  # another account's AMI is not offered
    assert all(len(o["text"]["text"]) <= 75 for o in options)
    shown = next(o["text"]["text"] for o in options if o["value"] == odd)
    assert shown.startswith(f"{odd} · x&lt;!channel&gt;&amp;") and shown.endswith("…") and "<" not in shown

    by_name = harness.slack.suggest(rehearsal.REQUESTER, "ami", "PAYMENTS", view_id=view["id"], values=state).json()["options"]
    assert [o["value"] for o in by_name] == [world.encrypted_image]
    by_id = harness.slack.suggest(rehearsal.REQUESTER, "ami", world.plain_image[:12], view_id=view["id"], values=state).json()["options"]
    assert world.plain_image in [o["value"] for o in by_id]
    dev = loaded("", _values(source="dev", region=rehearsal.REGION))
    assert [o["value"] for o in dev] == [dev_image]


def test_field_errors_come_back_in_the_grammars_words_and_create_nothing(harness):
    harness.slash("")
    _form(harness)
    base = dict(operation="share", source="prod", region=rehearsal.REGION, targets=["dev"], channel=harness.channel)

    no_ami = harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW, _values(**base))
    assert no_ami.status == 200
    answer = no_ami.json()
    assert answer["response_action"] == "errors" and list(answer["errors"]) == ["ami"]
    assert "`share` needs an AMI id" in answer["errors"]["ami"]

    bad_duration = harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW,
                                             _values(**base, ami=harness.world.encrypted_image, duration="3 fortnights")).json()
    assert list(bad_duration["errors"]) == ["duration"]
    assert "a duration is a number of hours or days" in bad_duration["errors"]["duration"]

    copy_with_allow = harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW,
                                                _values(**{**base, "operation": "copy"}, ami=harness.world.encrypted_image, options=["allow-copy"])).json()
    assert list(copy_with_allow["errors"]) == ["options"]
    harness.settle()
    assert harness.bot.store.find() == []


def test_a_submission_creates_exactly_what_the_slash_command_creates(harness):
    harness.fake.channel_members[harness.channel] = [rehearsal.REQUESTER]  # the form's channel must be the requester's (issue 17)
    harness.slash("")
    _form(harness)
    image = harness.world.encrypted_image
    values = _values(operation="share", source="prod", region=rehearsal.REGION, ami=image, targets=["dev"],
                     options=["allow-copy"], duration="7d", reason="QA of release 42 <ship it>", channel=harness.channel)
    result = harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW, values)
    assert result.status == 200 and not result.body  # the modal closes
    from_form = harness.root_for(image)
    harness.settle()
    text = f'share {image} from prod:{rehearsal.REGION} to dev allow-copy for 7d reason "QA of release 42 <ship it>"'
    # The requester is told through the response_url Slack gave for the chosen channel.
    told = [r.params.get("text", "") for r in harness.fake.responses]
    assert any(text in t and "Checking" in t for t in told)

    harness.slash(text)
    harness.fake.wait_for(lambda: len([m for m in harness.fake.messages(harness.channel) if image in m.get("text", "")]) == 2)
    harness.settle()
    a, b = harness.bot.store.get(1), harness.bot.store.get(2)
    assert a.command_text == b.command_text == text
    assert (a.kind, a.requester, a.channel, a.approver_accounts, a.state) == (b.kind, b.requester, b.channel, b.approver_accounts, b.state)
    assert [(s.action, s.account_alias, s.region) for s in a.steps] == [(s.action, s.account_alias, s.region) for s in b.steps]
    strip = lambda params: {k: v for k, v in params.items() if k != "response_url"}
    assert strip(a.params) == strip(b.params)
    assert from_form["blocks"] and a.root_ts == from_form["ts"]
