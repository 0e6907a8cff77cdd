"""The verb registry: one folder per verb, one list, and everything the grammar says
about the verbs (usage, ``help <verb>``, which verbs take a reason, each verb's
options) generated from it, so none of it can disagree; each operation's card risk
line is its own (a tag request speaks of tags)."""

from __future__ import annotations

import dataclasses
import json
import importlib
import logging
import pathlib
import subprocess
import sys

import pytest

from bot import cards, grammar
from bot.errors import UsageError
from bot.requests import PENDING_APPROVAL, PlannedStep, Request, Step
from bot.verbs import registry
from bot.verbs.lexer import KEYWORDS, keyword_form

AMI = "ami-0123456789abcdef0"
VERBS_DIR = pathlib.Path(registry.__file__).parent


def example_words(verb: str) -> str:
    """The verb's own example, without ``/ami``."""
    return registry.verb(verb).syntax.example.removeprefix("/ami ")


def test_every_verb_is_one_folder_listed_once_in_the_registry():
    folders = sorted(p.name for p in VERBS_DIR.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(registry.names())
    assert len(set(registry.names())) == len(registry.ALL)
    for name in registry.names():
        record = importlib.import_module(f"bot.verbs.{name}").VERB
        assert record is registry.verb(name) and record.name == name


def test_usage_and_help_are_generated_from_the_registry():
    assert grammar.VERBS == registry.names()
    assert grammar.USAGE.splitlines() == [v.syntax.usage for v in registry.ALL]
    for v in registry.ALL:
        assert grammar.usage_for(v.name) == f"{v.syntax.usage}\ne.g. {v.syntax.example}"
        assert grammar.parse_command(f"help {v.name}") == grammar.HelpCommand(v.name)
        assert grammar.parse_command(example_words(v.name)) is not None  # every example parses
        for word in v.syntax.synonyms:
            assert registry.verb(word) is v
    with pytest.raises(UsageError) as info:
        grammar.parse_command("help nonsense")
    assert info.value.usage == grammar.USAGE


def test_the_reason_verbs_and_the_error_naming_them_are_one_list():
    takes = [v.name for v in registry.ALL if v.syntax.takes_reason]
    assert grammar.REASON_VERBS == tuple(takes)
    assert set(takes) == {"share", "unshare", "copy", "distribute", "tag", "migrate", "retire"}
    for v in registry.ALL:
        text = f'{example_words(v.name)} reason "release 2.3"'
        if v.syntax.takes_reason:
            assert grammar.parse_command(text).reason == "release 2.3"
        else:
            with pytest.raises(UsageError) as info:
                grammar.parse_command(text)
            assert info.value.detail == f"`reason` goes with a request ({', '.join(takes)}), not with `{v.name}`"


@pytest.mark.parametrize("verb", ["share", "unshare", "copy", "distribute", "audit", "migrate"])
def test_a_word_that_does_not_go_with_a_verb_names_its_options_from_the_registry(verb):
    options = registry.verb(verb).syntax.options
    foreign = "no-reboot" if verb != "migrate" else "allow-copy"
    with pytest.raises(UsageError) as info:
        grammar.parse_command(f"{example_words(verb)} {foreign}")
    said = f"its options are {options}" if options else "it takes no options"
    assert f"`{foreign}` does not go with `{verb}` ({said})" in info.value.detail
    assert grammar.VERB_OPTIONS[verb] == options


def test_every_option_a_verb_names_is_a_keyword_its_parser_takes():
    for v in registry.ALL:
        for option in filter(None, (o.strip() for o in v.syntax.options.split(","))):
            assert keyword_form(option.split()[0]) in KEYWORDS, (v.name, option)


def test_each_operation_is_prepared_by_its_own_verb_and_has_its_risk_line():
    operations = [v for v in registry.ALL if v.prepare is not None]
    assert {v.name for v in operations} == {"share", "unshare", "copy", "distribute", "tag", "migrate", "retire"}
    for v in operations:
        assert v.command is not None and v.risk is not None
        assert registry.is_operation(object.__new__(v.command))
    assert not registry.is_operation(grammar.StatusCommand("R-1"))
    assert list(registry.form_verbs()) == ["share", "unshare", "copy", "migrate"]


def a_request(kind: str, params: dict, steps: list[PlannedStep] = ()) -> Request:
    request = Request(
        id=3, uid="0123456789abcdef", kind=kind, state=PENDING_APPROVAL, requester="U0BOB", channel="C0PLATFORM",
        command_text=f"{kind} {AMI} from prod", params=params, facts={}, approver_accounts=["prod"], root_ts="1.2",
        created_at=1_700_000_000.0, expires_at=1_700_086_400.0, active_until=None, reminded=0, error=None, progress=None,
    )
    request.steps = [Step(3, i + 1, s.action, s.account_alias, s.account_id, s.region, s.params, s.description, "pending", {}, None)
                     for i, s in enumerate(steps)]
    return request


def test_a_tag_card_and_its_approve_confirm_speak_of_tags():
    tag = PlannedStep(action="ec2.tag_image", account_alias="prod", account_id="111111111111", region="eu-west-1",
                      params={"image_id": AMI, "snapshot_ids": ["snap-1"], "tags": {"app": "payments"}}, description="CreateTags")
    request = a_request("tag", {"image_id": AMI, "source": "prod", "region": "eu-west-1", "tags": {"app": "payments", "owner": "<!here>"}}, [tag])
    risk = cards.risk(request)
    assert risk.startswith(f"changes the tags of {AMI} and its snapshots in `prod`: `app=payments`")
    assert "&lt;!here&gt;" in risk and "<!here>" not in risk
    confirm = cards.confirm_approve(request)["text"]["text"]
    card = json.dumps(cards.card_blocks(request, {"prod": ["U0ALICE"]}))
    for text in (confirm, card):
        assert "changes the tags of" in text
        assert "cross-account" not in text and "organisation" not in text


def test_each_risk_line_names_who_gains_or_loses_what():
    share = a_request("share", {"image_id": AMI, "source": "prod", "targets": ["dev"], "allow_copy": True})
    assert cards.risk(share) == f"`dev` gains launch access to {AMI} in `prod`; with `allow-copy` the data can be copied out"
    # An OU share names the OU that gains access, and the key whose policy changes.
    policy = PlannedStep(action="kms.add_key_policy_statement", account_alias="prod", account_id="111111111111", region="us-east-1",
                         params={"key_arn": "arn:aws:kms:us-east-1:111111111111:key/k-1"}, description="PutKeyPolicy")
    org = a_request("share", {"image_id": AMI, "source": "prod", "targets": [], "organization": True, "ou_id": "ou-ab12-cd345678"}, [policy])
    assert cards.risk(org) == f"every account in OU ou-ab12-cd345678 gains launch access to {AMI} in `prod`; the key policy of k-1 in `prod` lets them use the key"
    # An unshare names the account, not its id (the plan stores both).
    unshare = a_request("unshare", {"image_id": AMI, "source": "prod", "targets": ["222222222222"], "target_names": ["dev"]})
    assert cards.risk(unshare) == f"`dev` loses launch access to {AMI} in `prod`" and "222222222222" not in json.dumps(cards.card_blocks(unshare, {}))
    copy = a_request("copy", {"image_id": AMI, "source": "prod", "target": "dev", "target_region": "us-east-2"})
    assert cards.risk(copy) == f"cross-account: a copy of {AMI}'s data goes from `prod` into `dev` (us-east-2), owned and controlled by `dev`"
    same = a_request("copy", {"image_id": AMI, "source": "prod", "target": "prod", "target_region": "us-east-2"})
    assert "cross-account" not in cards.risk(same) and "no other account gains access" in cards.risk(same)


def test_a_distribution_tells_region_copies_from_cross_account_ones_and_warns_of_aws_managed_keys():
    aws_ebs = {"arn": "arn:aws:kms:us-west-2:222222222222:key/x", "aliases": ["alias/aws/ebs"], "manager": "AWS"}
    own = {"arn": "arn:aws:kms:eu-west-1:111111111111:key/y", "aliases": ["alias/ami-prod"], "manager": "CUSTOMER"}
    spread = a_request("distribute", {"image_id": AMI, "source": "prod", "source_region": "us-east-1", "targets": ["dev:us-west-2", "prod:eu-west-1"],
                                      "share_with": ["staging"], "keys": {"dev:us-west-2": aws_ebs, "prod:eu-west-1": own}})
    risk = cards.risk(spread)
    assert risk.startswith(f"cross-account: copies of {AMI}'s data go from `prod` into `dev` (us-west-2)") and "`prod` (eu-west-1)" not in risk
    assert "also a copy in eu-west-1, same account `prod`" in risk and "shared with `staging`" in risk
    alone = a_request("distribute", {"image_id": AMI, "source": "prod", "targets": ["prod:eu-west-1"]})
    assert "cross-account" not in cards.risk(alone)
    card = json.dumps(cards.card_blocks(spread, {}))
    assert card.count("*Warning:*") == 1 and "`dev:us-west-2` gets a copy encrypted with the AWS-managed key alias/aws/ebs" in card
    both = a_request("distribute", {"image_id": AMI, "source": "prod", "targets": ["dev:us-west-2", "prod:eu-west-1"],
                                    "keys": {"dev:us-west-2": aws_ebs, "prod:eu-west-1": dict(aws_ebs, manager=None)}})
    assert "`dev:us-west-2`, `prod:eu-west-1` get copies encrypted with the AWS-managed key" in json.dumps(cards.card_blocks(both, {}))


def test_the_card_has_labelled_fields_within_block_kits_limits():
    share = a_request("share", {"image_id": AMI, "source": "prod", "region": "us-east-1", "targets": ["dev"], "reason": "load tests",
                                "duration_seconds": 4 * 3600})
    share.facts = {"image": {"name": "payments-api-2026.11", "keys": [{"arn": "arn:aws:kms:us-east-1:111111111111:key/k", "aliases": ["alias/ami-shared"]}]}}
    blocks = cards.card_blocks(share, {"prod": ["U0ALICE"]})
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "R-3 · share · waiting for approval"}}
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in blocks[1]["fields"]}
    assert fields == {"*Requester*": "<@U0BOB>", "*AMI*": f"payments-api-2026.11 ({AMI})", "*From → To*": "prod (us-east-1) → dev",
                      "*Access*": "launch, use the key alias/ami-shared (grant)", "*Duration*": "4 h, then removed automatically", "*Why*": "load tests"}
    text = json.dumps(blocks)
    assert text.count("load tests") == 1 and "R-3-0123456789abcdef" in blocks[-1]["elements"][0]["text"]  # the uid in the small print
    assert "<!date^1700086400^" in blocks[-1]["elements"][0]["text"] and ":white_check_mark:" not in text
    from offline.slack.blocks import _block_problems
    assert _block_problems(blocks, 50) == []
    too_long = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}, {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]
    assert len(_block_problems(too_long, 50)) == 2  # the fake Slack refuses what Slack refuses
    mrkdwn_confirm = dict(cards.confirm_approve(share), text={"type": "mrkdwn", "text": "x"})
    assert _block_problems([{"type": "actions", "elements": [{"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"},
                                                              "confirm": mrkdwn_confirm}]}], 50)


def test_after_success_hooks_run_in_order_with_the_third_argument_passed_through(caplog, monkeypatch):
    seen = []
    request = a_request("migrate", {"instance_id": "i-0123456789abcdef0"})

    def first(req, store, third):
        seen.append(("first", store, third))
        raise RuntimeError("boom")

    def second(req, store, third):
        seen.append(("second", store, third))
        return ["done"]

    monkeypatch.setitem(registry._BY_NAME, "migrate", dataclasses.replace(registry.verb("migrate"), after_success=(first, second)))
    with caplog.at_level(logging.ERROR):
        assert registry.settle_after_success(request, "store", "lifecycle") == ["done"]
    assert seen == [("first", "store", "lifecycle"), ("second", "store", "lifecycle")]
    assert "after-success hook of R-3 failed" in caplog.text


def test_the_launch_role_notes_and_the_settling_hooks_belong_to_their_verbs():
    from bot.verbs.copy.plan import settle_copy
    from bot.verbs.migrate.plan import report_new_instance
    from bot.verbs.unshare.settle import settle_unshared
    from bot.verbs.copy import text as copy_text
    from bot.verbs.share import text as share_text

    assert registry.verb("share").after_success == (share_text.launch_notes,)
    assert registry.verb("copy").after_success == (copy_text.launch_notes, settle_copy)
    assert registry.verb("unshare").after_success == (settle_unshared,)
    assert registry.verb("migrate").after_success == (report_new_instance,)


def test_every_verb_module_imports_first_in_a_fresh_interpreter():
    """Python runs a package's ``__init__`` before its modules, an edge the import-cycle
    count does not see: a verb's folder imports its planning module, whose package
    must not need the registry while the registry is being built. So each module a
    caller may import first (a verb's command, a planning module) must import alone."""
    modules = sorted(
        {f"bot.verbs.{name}.command" for name in registry.names() if (VERBS_DIR / name / "command.py").exists()}
        | {f"bot.verbs.{name}.plan" for name in registry.names() if (VERBS_DIR / name / "plan.py").exists()}
        | {f"bot.verbs.{p.stem}" for p in VERBS_DIR.glob("*.py") if p.stem != "__init__"}
    )
    runs = {m: subprocess.Popen([sys.executable, "-c", f"import {m}; import bot.grammar"], stderr=subprocess.PIPE, text=True) for m in modules}
    failed = {m: run.communicate()[1].strip().splitlines()[-1:] for m, run in runs.items() if run.wait() != 0}
    assert not failed
