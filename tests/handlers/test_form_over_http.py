"""The request form over the real HTTP endpoint, signed as Slack signs: opened from
`/ami` and from the global shortcut; the operation menu redrawing the form with only
that operation's fields (views.update, hash-checked); the AMI picker's option loads;
field errors in the form's words; submissions that create exactly what the slash
command creates; and "Open the form" under a command the grammar could not read."""

from __future__ import annotations

from offline import rehearsal
from bot import forms
from bot.verbs import registry
from tests.handlers.test_reach_over_http import stack  # noqa: F401  (a fixture: a harness with extra config)

PROD = rehearsal.PROD
SELECTS = ("operation", "source", "region", "target", "target_region", "duration", "mode")
MULTI = ("targets", "target_regions", "share_with")


def _form(harness):
    return harness.fake.wait_for(lambda: next((v for v in harness.fake.views.values() if v.get("callback_id") == forms.REQUEST_FORM_VIEW), None))


def _option(value: str) -> dict:
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def _values(**fields) -> dict:
    """state.values for the form, as Slack sends them."""
    values: dict = {}
    for block, value in fields.items():
        if block in SELECTS:
            leaf = {"type": "static_select", "selected_option": _option(value)}
        elif block == "ami":
            leaf = {"type": "external_select", "selected_option": _option(value)}
        elif block in MULTI:
            leaf = {"type": "multi_static_select", "selected_options": [_option(v) for v in value]}
        elif block.endswith("_options"):
            leaf = {"type": "checkboxes", "selected_options": [_option(v) for v in value]}
        elif block == "channel":
            leaf = {"type": "conversations_select", "selected_conversation": value}
        else:
            leaf = {"type": "plain_text_input", "value": value}
        values[block] = {block: leaf}
    return values


def _inputs(view: dict) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def _choose(harness, view_id: str, operation: str, **values) -> dict:
    """Choose ``operation`` in the form's menu and return the view Slack then shows."""
    before = len(harness.fake.calls_to("views.update"))
    result = harness.slack.choose(rehearsal.REQUESTER, view_id, "operation", operation, values=_values(**values))
    assert result.status == 200
    update = harness.fake.wait_for(lambda: harness.fake.calls_to("views.update")[before:] or None)[0]
    assert update.response["ok"], update.response
    return update.response["view"]


def test_slash_with_no_text_opens_the_form_in_the_listener(harness):
    result = harness.slash("")
    assert result.status == 200 and not result.body  # the form instead of an answer
    opened = harness.fake.calls_to("views.open")
    assert len(opened) == 1 and opened[0].response["ok"]
    assert opened[0].params["trigger_id"] == harness.slack.last_trigger_id
    view = _form(harness)
    assert _inputs(view) == ["operation", "channel"]  # the rest follows the operation
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


def test_choosing_each_operation_shows_only_its_fields(harness):
    harness.slash("")
    view_id = _form(harness)["id"]
    for operation in forms.OPERATIONS:
        view = _choose(harness, view_id, operation)
        assert _inputs(view) == ["operation", *(f.id for f in registry.form_of(operation).fields), "reason", "channel"], operation
        menu = next(b for b in view["blocks"] if b.get("block_id") == "operation")
        assert menu["dispatch_action"] is True and menu["element"]["initial_option"]["value"] == operation
    # Every redraw named the hash of the view it replaced, and the channel stayed.
    updates = harness.fake.calls_to("views.update")
    assert all(u.params["hash"] and u.params["view_id"] == view_id for u in updates)
    assert forms.opened_in(harness.fake.views[view_id]) == harness.channel
    # What was filled in stays when the operation changes (same block ids).
    copy = _choose(harness, view_id, "copy", source="dev", region=rehearsal.OTHER_REGION, reason="QA")
    blocks = {b.get("block_id"): b for b in copy["blocks"]}
    assert blocks["source"]["element"]["initial_option"]["value"] == "dev"
    assert blocks["region"]["element"]["initial_option"]["value"] == rehearsal.OTHER_REGION
    assert blocks["reason"]["element"]["initial_value"] == "QA"


def test_two_choices_racing_the_older_redraw_is_refused_by_its_hash(harness):
    harness.slash("")
    first = _form(harness)
    _choose(harness, first["id"], "share")
    before = len(harness.fake.calls_to("views.update"))
    # A choice made on the form as it looked before the first redraw (its hash is old).
    harness.slack.choose(rehearsal.REQUESTER, first["id"], "operation", "tag", view=first)
    refused = harness.fake.wait_for(lambda: harness.fake.calls_to("views.update")[before:] or None)[0]
    assert refused.response == {"ok": False, "error": "hash_conflict"}
    harness.settle()
    assert "duration" in _inputs(harness.fake.views[first["id"]])  # the share form stays
    assert not harness.fake.ephemerals(rehearsal.REQUESTER)


def test_the_ami_picker_searches_the_chosen_accounts_own_amis(harness):
    world = harness.world
    long_name = ("x<!channel>&" + "y" * 200)[:128]
    odd = world.sandbox.create_image(PROD, rehearsal.REGION, name=long_name)
    dev_image = world.sandbox.create_image(rehearsal.DEV, rehearsal.REGION, name="payments-dev-only")
    harness.slash("")
    view = _choose(harness, _form(harness)["id"], "share")
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


def test_field_errors_name_the_field_in_the_forms_words_and_create_nothing(harness):
    harness.slash("")
    _choose(harness, _form(harness)["id"], "share")
    base = dict(operation="share", source="prod", region=rehearsal.REGION, targets=["dev"], channel=harness.channel)
    submit = lambda **fields: harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW, _values(**fields))  # noqa: E731

    no_ami = submit(**base)
    assert no_ami.status == 200
    assert no_ami.json() == {"response_action": "errors", "errors": {"ami": "Choose the AMI."}}
    # The duration is a menu; a value that is not on it (a forged payload) is refused.
    forged = submit(**base, ami=harness.world.encrypted_image, duration="3 fortnights").json()
    assert forged["errors"] == {"duration": "Choose from the menu."}
    public = submit(**{**base, "targets": []}, ami=harness.world.encrypted_image, target_other="everyone").json()
    assert list(public["errors"]) == ["target_other"] and public["errors"]["target_other"].startswith("`everyone`: public sharing")
    bad_key = submit(operation="copy", source="prod", region=rehearsal.REGION, ami=harness.world.encrypted_image, target="dev",
                     kms="not-a-key", channel=harness.channel).json()
    assert list(bad_key["errors"]) == ["kms"] and bad_key["errors"]["kms"].startswith("`not-a-key` is not a KMS key")
    harness.settle()
    assert harness.bot.store.find() == []


def _same_request(harness, form_values: dict, text: str, image: str) -> None:
    """Submit the form, then type ``text``: two requests, equal in everything but the id."""
    harness.fake.channel_members[harness.channel] = [rehearsal.REQUESTER]  # the form's channel must be the requester's (issue 17)
    harness.slash("")
    _choose(harness, _form(harness)["id"], form_values["operation"])
    result = harness.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW, _values(**form_values, channel=harness.channel))
    assert result.status == 200 and not result.body, result.body  # the modal closes
    from_form = harness.root_for(image)
    harness.settle()
    # The requester is told through the response_url Slack gave for the chosen channel.
    told = [r.params.get("text", "") for r in harness.fake.responses]
    assert any(text in t and "Checking" in t for t in told), told
    harness.slash(text)
    harness.fake.wait_for(lambda: len([m for m in harness.fake.messages(harness.channel) if image in m.get("text", "") and not m.get("thread_ts")]) == 2)
    harness.settle()
    a, b = harness.bot.store.get(1), harness.bot.store.get(2)
    assert a.command_text == b.command_text == text
    assert (a.kind, a.requester, a.channel, a.approver_accounts, a.state) == (b.kind, b.requester, b.channel, b.approver_accounts, b.state)
    assert [(s.action, s.account_alias, s.region) for s in a.steps] == [(s.action, s.account_alias, s.region) for s in b.steps]
    strip = lambda params: {k: v for k, v in params.items() if k != "response_url"}  # noqa: E731
    assert strip(a.params) == strip(b.params)
    assert from_form["blocks"] and a.root_ts == from_form["ts"]


def test_a_share_from_the_form_is_what_the_slash_command_creates(harness):
    image = harness.world.encrypted_image
    _same_request(harness, dict(operation="share", source="prod", region=rehearsal.REGION, ami=image, targets=["dev"],
                                share_options=["allow-copy"], duration="7d", reason="QA of release 42 <ship it>"),
                  f'share {image} from prod:{rehearsal.REGION} to dev allow-copy for 7d reason "QA of release 42 <ship it>"', image)


def test_a_distribution_from_the_form_is_what_the_slash_command_creates(harness):
    image = harness.world.encrypted_image
    _same_request(harness, dict(operation="distribute", source="prod", region=rehearsal.REGION, ami=image, targets=["dev"],
                                target_regions=[rehearsal.REGION, rehearsal.OTHER_REGION], reason="dev in two regions"),
                  f'distribute {image} from prod:{rehearsal.REGION} to dev:{rehearsal.REGION},dev:{rehearsal.OTHER_REGION} reason "dev in two regions"', image)
    assert harness.bot.store.get(1).kind == "distribute" and len({s.region for s in harness.bot.store.get(1).steps}) == 2


def test_a_tag_request_from_the_form_is_what_the_slash_command_creates(harness):
    image = harness.world.encrypted_image
    _same_request(harness, dict(operation="tag", source="prod", region=rehearsal.REGION, ami=image, tags="version=2026.11\nteam = platform ops"),
                  f'tag {image} from prod:{rehearsal.REGION} "version=2026.11" "team = platform ops"', image)
    assert harness.bot.store.get(1).kind == "tag"


def test_an_unreadable_command_offers_the_form_prefilled(harness):
    image = harness.world.encrypted_image
    typed = f'shre {image} from prod to dev for 7d allow-copy reason "QA run"'
    answer = harness.slash(typed).json()
    assert answer["response_type"] == "ephemeral" and "did you mean `share`" in answer["text"]
    button = next(e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == forms.OPEN_PREFILLED_ACTION and button["text"]["text"] == "Open the form"
    assert harness.bot.store.find() == [] and not harness.fake.calls_to("views.open")
    # The click brings a fresh trigger_id; the form opens with what was understood.
    harness.slack.click(rehearsal.REQUESTER, harness.channel, "1700000000.000100", forms.OPEN_PREFILLED_ACTION, button["value"], message=answer)
    opened = harness.fake.wait_for(lambda: harness.fake.calls_to("views.open") or None)[0]
    assert opened.response["ok"] and opened.params["trigger_id"] == harness.slack.last_trigger_id
    blocks = {b.get("block_id"): b["element"] for b in opened.response["view"]["blocks"] if b.get("block_id")}
    assert blocks["operation"]["initial_option"]["value"] == "share"
    assert blocks["ami"]["initial_option"]["value"] == image
    assert blocks["source"]["initial_option"]["value"] == "prod"
    assert [o["value"] for o in blocks["targets"]["initial_options"]] == ["dev"]
    assert blocks["duration"]["initial_option"]["value"] == "7d"
    assert [o["value"] for o in blocks["share_options"]["initial_options"]] == ["allow-copy"]
    assert blocks["reason"]["initial_value"] == "QA run"
    assert blocks["channel"]["initial_conversation"] == harness.channel
    # A command the form does not offer gets no button.
    assert "blocks" not in harness.slash("status nonsense").json()


def test_a_required_reason_is_asked_under_the_reason_field(stack):  # noqa: F811
    h = stack(bot_toml="require_reason = true")
    h.fake.channel_members[h.channel] = [rehearsal.REQUESTER]
    h.slash("")
    reason = next(b for b in _choose(h, _form(h)["id"], "tag")["blocks"] if b.get("block_id") == "reason")
    assert reason["optional"] is False
    answer = h.slack.submit_view(rehearsal.REQUESTER, forms.REQUEST_FORM_VIEW, _values(
        operation="tag", source="prod", region=rehearsal.REGION, ami=h.world.encrypted_image, tags="app=web", channel=h.channel)).json()
    assert list(answer["errors"]) == ["reason"] and "bot.require_reason" in answer["errors"]["reason"]
    h.settle()
    assert h.bot.store.find() == []
