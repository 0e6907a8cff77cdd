"""The approval policy's rules: parsed with errors naming the rule, evaluated first
match wins, and checked by ``amibot doctor`` (unknown verbs, shadowed rules)."""

from __future__ import annotations

import pytest

from bot import policy
from bot.config import parse_config
from bot.errors import ConfigError, PreflightError
from offline import rehearsal

VERBS = ("share", "unshare", "copy", "distribute", "tag", "migrate")


def config(rules: str, escalation: str = ""):
    owners = f'owners = ["{rehearsal.OWNER}", "S0PLATFORM"]\n'
    return parse_config(rehearsal.SANDBOX_TOML.replace(owners, owners + escalation) + rules, {})


@pytest.mark.parametrize("rules, key, word", [
    ('[[policy]]\nname = "a"\napprove = "maybe"', 'policy[1] "a".approve', "auto"),
    ('[[policy]]\nname = "a"\nfrom = ["staging"]', 'policy[1] "a".from', "not a configured account"),
    ('[[policy]]\nname = "a"\nto = [1]', 'policy[1] "a".to', "list of names"),
    ('[[policy]]\nname = "a"\nmax_duration_hours = 0', 'policy[1] "a".max_duration_hours', "out of range"),
    ('[[policy]]\nname = "a"\napprove = "auto"\nbreak_glass = true', 'policy[1] "a".break_glass', "no meaning"),
    ('[[policy]]\nname = "a"\n[[policy]]\nname = "a"', "policy[2].name", "earlier rule"),
    ('[[policy]]\nname = "a"\nwho = "me"', "policy[1].who", "not a known key"),
    ('[[policy]]\napprove = "auto"', "policy[1].name", "required"),
    ('[[policy]]\nname = "<!channel>"', "policy[1].name", "not a rule name"),
])
def test_each_rule_error_names_the_rule(rules, key, word):
    with pytest.raises(ConfigError) as caught:
        config(rules)
    assert caught.value.key == key and word in str(caught.value)


def test_escalation_keys_parse_and_are_checked():
    assert config("", 'escalate_to = ["S0ONCALL"]\nescalate_after_hours = 4\n').escalations["prod"].after_hours == 4
    with pytest.raises(ConfigError) as caught:
        config("", 'escalate_to = ["S0ONCALL"]\n')
    assert caught.value.key == "accounts.prod.escalate_after_hours"


def test_first_match_wins_tags_and_targets():
    c = config('[[policy]]\nname = "golden"\nami_tags = { golden = "yes" }\napprove = "auto"\n'
               '[[policy]]\nname = "to-dev"\nto = ["dev"]\napprove = "two-owners"\n'
               '[[policy]]\nname = "org"\nto = ["org"]\nmax_duration_hours = 24\n')
    to_dev = {"source": "prod", "targets": ["dev"]}
    assert policy.evaluate(c, "share", to_dev, {"golden": "yes"}).rule.name == "golden"
    assert policy.evaluate(c, "share", to_dev, {"golden": "no"}).rule.name == "to-dev"
    assert policy.evaluate(c, "tag", {"source": "prod"}, None).rule.name == "to-dev"  # `to` is ignored for verbs without targets
    assert policy.evaluate(c, "share", {"source": "prod", "targets": ["dev", "prod"]}, {}).rule is None  # every target must be in `to`
    org = policy.evaluate(c, "share", {"source": "prod", "targets": [], "organization": True}, {})
    assert org.rule.name == "org"
    with pytest.raises(PreflightError, match='Policy `org` allows only time-boxed'):
        policy.check_duration(org, "share", {"duration_seconds": None})


def test_doctor_names_unknown_verbs_and_shadowed_rules():
    c = config('[[policy]]\nname = "all-prod"\nfrom = ["prod"]\n'
               '[[policy]]\nname = "prod-share"\nfrom = ["prod"]\noperations = ["share"]\n'
               '[[policy]]\nname = "typo"\noperations = ["shaer"]\n')
    problems = policy.rule_problems(c, VERBS)
    assert any('policy "prod-share" is never used: policy "all-prod" comes first' in p for p in problems)
    assert any('policy "typo": operations shaer is not a verb' in p for p in problems)
    assert policy.rule_problems(config('[[policy]]\nname = "a"\nami_tags = { x = "1" }\n[[policy]]\nname = "b"\n'), VERBS) == []
