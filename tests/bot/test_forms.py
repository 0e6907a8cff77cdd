"""The request form's builders and readers: limits, escaping, and the grammar as the
only judge of a submission."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot import forms, grammar
from offline import rehearsal


@dataclass
class Image:
    image_id: str
    name: str


def config():
    return rehearsal.sandbox_config(":memory:", "http://127.0.0.1:9/api/", env={})


def blank(**fields) -> forms.FormAnswers:
    base = forms.FormAnswers(operation=None, source=None, region=None, ami=None, instance=None, targets=(), target_other=None,
                             target_region=None, zone=None, kms=None, name=None, flags=(), duration=None, reason=None, channel="C0PLATFORM")
    return replace(base, **fields)


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
    a = blank(operation="share", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev",),
              flags=("allow-copy",), duration="7d", reason='release "42" for QA')
    text = forms.render(a)
    assert text == 'share ami-0123456789abcdef0 from prod:us-east-1 to dev allow-copy for 7d reason "release \'42\' for QA"'
    command = grammar.parse_command(text)
    assert isinstance(command, grammar.ShareCommand) and command.allow_copy and command.reason == "release '42' for QA"
    assert forms.field_errors(a) == {}


def test_field_errors_are_the_grammars_words_under_the_right_field():
    share = blank(operation="share", source="prod", region="us-east-1", ami="ami-0123456789abcdef0", targets=("dev",))
    assert forms.field_errors(replace(share, ami=None)).keys() == {"ami"}
    assert "AMI id" in forms.field_errors(replace(share, ami=None))["ami"]
    errors = forms.field_errors(replace(share, duration="3 fortnights"))
    assert list(errors) == ["duration"] and "a duration is a number of hours or days" in errors["duration"]
    assert list(forms.field_errors(replace(share, targets=()))) == ["targets"]
    assert list(forms.field_errors(replace(share, targets=(), target_other="everyone"))) == ["target_other"]
    copy = replace(share, operation="copy", flags=("allow-copy",))
    errors = forms.field_errors(copy)
    assert list(errors) == ["options"] and "does not go with `copy`" in errors["options"]
    assert list(forms.field_errors(replace(copy, flags=(), kms="not-a-key"))) == ["kms"]
    # Several targets make a distribution (issue 10): the copy form accepts them.
    assert list(forms.field_errors(replace(copy, flags=(), targets=("dev", "prod")))) == []
    migrate = blank(operation="migrate", source="prod", region="us-east-1", instance="i-0123456789abcdef0", zone="eu-west-1b")
    assert list(forms.field_errors(migrate)) == ["zone"]
    assert list(forms.field_errors(replace(migrate, zone="us-east-1b", instance="web-1"))) == ["instance"]
    assert forms.field_errors(replace(migrate, zone="us-east-1b")) == {}
    assert list(forms.field_errors(replace(migrate, zone="us-east-1b", channel=None))) == ["channel"]
    assert list(forms.field_errors(blank())) == ["operation"]


def test_the_form_offers_the_configured_accounts_and_regions():
    cfg = config()
    view = forms.request_form(cfg, "C0PLATFORM")
    assert view["callback_id"] == forms.REQUEST_FORM_VIEW and len(view["title"]["text"]) <= 24
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert [o["value"] for o in blocks["source"]["element"]["options"]] == list(cfg.accounts)
    assert blocks["region"]["element"]["initial_option"]["value"] == cfg.bot.default_region
    assert {o["value"] for o in blocks["region"]["element"]["options"]} == {"us-east-1", "eu-west-1"}
    assert blocks["ami"]["element"]["type"] == "external_select"
    assert blocks["channel"]["element"]["initial_conversation"] == "C0PLATFORM"
    assert forms.request_form(cfg, None)["blocks"][-1]["element"]["default_to_current_conversation"] is True


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
