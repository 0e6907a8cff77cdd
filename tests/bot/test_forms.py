"""The request form's builders and readers: limits, escaping, and the grammar as the
only judge of a submission."""

from __future__ import annotations

from dataclasses import dataclass

from bot import forms, grammar
from offline import rehearsal


@dataclass
class Image:
    image_id: str
    name: str


def config():
    return rehearsal.sandbox_config(":memory:", "http://127.0.0.1:9/api/", env={})


def blank(operation=None, channel="C0PLATFORM", **fields) -> forms.FormAnswers:
    return forms.FormAnswers(operation, fields, channel)


def test_options_are_at_most_100_and_each_text_at_most_75_characters_escaped():
    long_name = ("<!channel> & <https://evil.example|click> " * 5)[:128]
    images = [Image(f"ami-{i:017x}", long_name if i % 2 else f"web-{i}") for i in range(150)]
    answer = forms.ami_options(images)
    assert len(answer["options"]) == 100
    for opt in answer["options"]:
        text = opt["text"]["text"]
        assert len(text) <= 75
        assert "<" not in text and ">" not in text
        assert opt["value"].startswith("ami-")
    long_ones = [o["text"]["text"] for o in answer["options"] if "&lt;" in o["text"]["text"]]
    assert long_ones and all(t.endswith("…") for t in long_ones)
    # The id comes first, so truncation never hides which AMI it is.
    assert answer["options"][1]["text"]["text"].startswith("ami-00000000000000001 · &lt;!channel&gt; &amp;")


def test_clip_never_cuts_an_escape_in_half():
    for n in range(60, 80):
        shown = forms.clip_option_text("a" * n + "&" * 10)
        assert len(shown) <= 75
        assert not shown.rstrip("…").endswith(("&", "&a", "&am", "&amp"[:-1]))


def test_render_is_the_slash_grammar():
    a = blank("share", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev",),
              share_options=("allow-copy",), duration="7d", reason='release "42" for QA')
    text = forms.render(a)
    assert text == 'share ami-0123456789abcdef0 from prod:us-east-1 to dev allow-copy for 7d reason "release \'42\' for QA"'
    command = grammar.parse_command(text)
    assert isinstance(command, grammar.ShareCommand) and command.allow_copy and command.reason == "release '42' for QA"
    assert forms.field_errors(a) == {}


def test_distribute_and_tag_render_the_slash_grammar():
    d = blank("distribute", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev", "prod"),
              target_regions=("us-east-1", "eu-west-1"), share_with=("dev",), update_lt="lt-0123456789abcdef0@dev:eu-west-1",
              distribute_options=("verify", "default"), name="web v2")
    assert forms.render(d) == ('distribute ami-0123456789abcdef0 from prod:us-east-1 to dev:us-east-1,dev:eu-west-1,prod:us-east-1,'
                               'prod:eu-west-1 name "web v2" verify share-with dev update-lt lt-0123456789abcdef0@dev:eu-west-1 default')
    assert isinstance(grammar.parse_command(forms.render(d)), grammar.DistributeCommand)
    t = blank("tag", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", tags=("app=web server", "team=platform"))
    command = grammar.parse_command(forms.render(t))
    assert isinstance(command, grammar.TagCommand) and command.tags == (("app", "web server"), ("team", "platform"))
    r = blank("retire", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", mode="deprecate", date="2026-12-31", retire_options=("with-copies",))
    assert forms.render(r) == "retire ami-0123456789abcdef0 from prod:us-east-1 deprecate 2026-12-31 with-copies"
    assert forms.field_errors(r) == {}


def test_field_errors_name_the_field_filled_in_the_forms_words():
    share = blank("share", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev",))
    assert forms.field_errors({**share.values} and blank("share", source="prod", region="us-east-1", targets=("dev",))) == {"ami": "Choose the AMI."}
    # The duration is a menu: a value that is not on it (a forged payload) is refused.
    assert forms.field_errors(blank("share", **{**share.values, "duration": "3 fortnights"})) == {"duration": "Choose from the menu."}
    assert list(forms.field_errors(blank("share", **{**share.values, "targets": ()}))) == ["targets"]
    other = forms.field_errors(blank("share", **{**share.values, "targets": (), "target_other": "everyone"}))
    assert list(other) == ["target_other"] and other["target_other"].startswith("`everyone`: public sharing")
    mixed = forms.field_errors(blank("share", **{**share.values, "target_other": "org"}))
    assert list(mixed) == ["targets"] and "`dev org` mixes kinds" in mixed["targets"] and "`to" not in mixed["targets"]
    itself = forms.field_errors(blank("share", **{**share.values, "targets": ("prod",)}))
    assert list(itself) == ["targets"] and "is the source account" in itself["targets"]
    org_copy = forms.field_errors(blank("share", **{**share.values, "targets": (), "target_other": "org", "share_options": ("allow-copy",)}))
    assert list(org_copy) == ["share_options"]
    copy = blank("copy", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", target="dev")
    assert forms.field_errors(copy) == {}
    bad_key = forms.field_errors(blank("copy", **{**copy.values, "kms": "not-a-key"}))
    assert list(bad_key) == ["kms"] and bad_key["kms"].startswith("`not-a-key` is not a KMS key")
    short = forms.field_errors(blank("copy", **{**copy.values, "name": "ab"}))
    assert short == {"name": "`ab` has 2 characters: an AMI name has 3 to 128"}
    assert forms.field_errors(blank("copy", **{**copy.values, "target": None})) == {"target": "Choose the account the copy goes into."}
    migrate = blank("migrate", source="prod", region="us-east-1", instance="i-0123456789abcdef0", zone="eu-west-1b")
    assert list(forms.field_errors(migrate)) == ["zone"]
    assert list(forms.field_errors(blank("migrate", **{**migrate.values, "zone": "us-east-1b", "instance": "web-1"}))) == ["instance"]
    assert forms.field_errors(blank("migrate", **{**migrate.values, "zone": "us-east-1b"})) == {}
    assert list(forms.field_errors(blank("migrate", channel=None, **{**migrate.values, "zone": "us-east-1b"}))) == ["channel"]
    tag = forms.field_errors(blank("tag", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", tags=("aws:x=1",)))
    assert list(tag) == ["tags"] and "`aws:x` is not a tag key" in tag["tags"]
    lt = forms.field_errors(blank("distribute", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev",), distribute_options=("default",)))
    assert list(lt) == ["distribute_options"]
    assert list(forms.field_errors(blank())) == ["operation"]


def test_the_form_shows_only_the_chosen_operations_fields():
    cfg = config()
    view = forms.request_form(cfg, "C0PLATFORM")
    assert view["callback_id"] == forms.REQUEST_FORM_VIEW and len(view["title"]["text"]) <= 24
    inputs = lambda v: [b["block_id"] for b in v["blocks"] if b["type"] == "input"]  # noqa: E731
    assert inputs(view) == ["operation", "channel"]
    operation = view["blocks"][1]
    assert operation["dispatch_action"] is True
    assert [o["value"] for o in operation["element"]["options"]] == ["share", "unshare", "copy", "distribute", "tag", "migrate", "retire"]
    shown = {op: inputs(forms.request_form(cfg, "C0PLATFORM", None, forms.FormAnswers(op))) for op in forms.OPERATIONS}
    assert shown["share"] == ["operation", "ami", "source", "region", "targets", "target_other", "duration", "share_options", "reason", "channel"]
    assert shown["tag"] == ["operation", "ami", "source", "region", "tags", "reason", "channel"]
    assert "duration" not in shown["copy"] and "instance" not in shown["share"] and "share_with" in shown["distribute"]
    share = {b["block_id"]: b for b in forms.request_form(cfg, "C0PLATFORM", None, forms.FormAnswers("share"))["blocks"] if b.get("block_id")}
    assert share["duration"]["element"]["type"] == "static_select"
    assert [o["value"] for o in share["duration"]["element"]["options"]][:2] == ["1h", "4h"]
    assert [o["value"] for o in share["source"]["element"]["options"]] == list(cfg.accounts)
    assert share["region"]["element"]["initial_option"]["value"] == cfg.bot.default_region
    assert {o["value"] for o in share["region"]["element"]["options"]} == {"us-east-1", "eu-west-1"}
    assert share["ami"]["element"]["type"] == "external_select"
    assert share["channel"]["element"]["initial_conversation"] == "C0PLATFORM"
    assert forms.request_form(cfg, None)["blocks"][-1]["element"]["default_to_current_conversation"] is True
    assert forms.opened_in(view) == "C0PLATFORM"


def test_what_an_unreadable_command_still_says_prefills_the_form():
    cfg = config()
    a = forms.prefilled('shaer ami-0123456789ABCDEF0 from 1111-1111-1111:eu-west-1 to dev,nowhere for 7d allowcopy reason "QA run', cfg)
    assert a.operation == "share"
    assert dict(a.values) == {"ami": "ami-0123456789abcdef0", "source": "prod", "region": "eu-west-1", "targets": ("dev",),
                              "duration": "7d", "share_options": ("allow-copy",), "reason": "QA run"}
    several = forms.prefilled("copy ami-0123456789abcdef0 from prod to dev:us-east-1,dev:eu-west-1 verify kms", cfg)
    assert several.operation == "distribute" and several.get("target_regions") == ("us-east-1", "eu-west-1")
    assert forms.prefilled("frobnicate everything", cfg).operation is None
    # What it holds is offered only where it is a valid choice (Slack refuses others).
    view = forms.request_form(cfg, "C0PLATFORM", None, forms.prefilled("share ami-0123456789abcdef0 from prod:ap-south-7 to dev for 5d", cfg))
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["region"]["element"]["initial_option"]["value"] == cfg.bot.default_region
    assert "initial_option" not in blocks["duration"]["element"]
    assert forms.offers_form("shaer x") and forms.offers_form("copy x") and not forms.offers_form("status x")


def test_unshare_text_undoes_the_share():
    assert forms.unshare_text("share ami-0123456789abcdef0 from prod to dev,qa for 7d", "us-east-1") == \
        "unshare ami-0123456789abcdef0 from prod:us-east-1 to dev,qa"
    assert forms.unshare_text("share ami-0123456789abcdef0 from prod:eu-west-1 to org for 1d", None) == \
        "unshare ami-0123456789abcdef0 from prod:eu-west-1 to org"


def test_help_of_one_verb_uses_the_configured_command():
    text = grammar.usage_for("copy", "/amibot")
    assert text.startswith("/amibot copy") and "e.g. /amibot copy ami-" in text
    assert "share" not in text and "/ami " not in text
    assert grammar.usage("/amibot").count("/amibot ") == len(grammar.VERBS)


def test_a_required_reason_is_required_in_the_form_too():
    import dataclasses

    cfg = config()
    strict = dataclasses.replace(cfg, bot=dataclasses.replace(cfg.bot, require_reason=True))
    reason = lambda c: next(b for b in forms.request_form(c, "C0", None, forms.FormAnswers("tag"))["blocks"] if b.get("block_id") == "reason")  # noqa: E731
    assert reason(cfg)["optional"] is True and reason(strict)["optional"] is False
