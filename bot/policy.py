"""The approval policy: which ``[[policy]]`` rule applies to a request, and what it asks.

Rules are evaluated in file order and the first that matches wins; when none matches,
the request needs one owner of every account it touches (amibot's rule before policies
existed). A rule matches when the request's verb is in ``operations``, its source
account in ``from``, every account it gives access to in ``to`` (``"org"`` for a share
with the organization or an OU; ignored for verbs without targets) and the AMI carries
all of ``ami_tags`` (as the preflight read them; the plan records the tags it matched).

What the rule decided is stored in the request's facts under ``policy``
(:func:`decision_facts`), so the card, the history and the approvers see the rule that
applied even if the config changes later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from bot.config import Config, PolicyRule
from bot.config.policy import ANY, ORG
from bot.errors import PreflightError
from bot.slacktext import escape

AUTO, OWNERS, TWO_OWNERS = "auto", "owners", "two-owners"
NEEDED = {OWNERS: 1, TWO_OWNERS: 2}  # distinct approvers needed per account

# Words for the card and the plan.
_MODE_WORDS = {AUTO: "approved by the rule itself", OWNERS: "one owner of each account", TWO_OWNERS: "two distinct owners of each account"}


@dataclass(frozen=True)
class Decision:
    """The rule that applied to a request (None: no rule matched), and what it matched."""

    rule: PolicyRule | None
    matched_tags: dict[str, str] = field(default_factory=dict)

    @property
    def approve(self) -> str:
        """auto, owners or two-owners."""
        return self.rule.approve if self.rule else OWNERS


def touched(config: Config, kind: str, params: dict[str, Any]) -> tuple[str, list[str]]:
    """The request's source account and the accounts (or ``org``) it gives access to."""
    targets: list[str] = []
    if params.get("organization") or params.get("ou_id"):
        targets.append(ORG)
    for word in [*(params.get("targets") or []), *([params["target"]] if params.get("target") else []), *(params.get("share_with") or [])]:
        alias = str(word).split(":")[0]
        if alias.isdigit():  # unshare names accounts by id
            found = config.account_by_id(alias)
            alias = found.alias if found else alias
        if alias not in targets:
            targets.append(alias)
    return str(params.get("source") or ""), targets


def _in(words: tuple[str, ...], value: str) -> bool:
    return ANY in words or value in words


def matches(rule: PolicyRule, kind: str, source: str, targets: Iterable[str], tags: dict[str, str] | None) -> bool:
    """Whether ``rule`` applies to a request of verb ``kind`` from ``source`` to ``targets``
    on an AMI carrying ``tags`` (None: the verb read no AMI)."""
    if not _in(rule.operations, kind) or not _in(rule.sources, source):
        return False
    if not all(_in(rule.targets, t) for t in targets):
        return False
    if rule.ami_tags:
        return tags is not None and all(tags.get(k) == v for k, v in rule.ami_tags.items())
    return True


def evaluate(config: Config, kind: str, params: dict[str, Any], tags: dict[str, str] | None) -> Decision:
    """The first rule that matches, and the tags it matched; no match: :class:`Decision` (None)."""
    source, targets = touched(config, kind, params)
    for rule in config.policies:
        if matches(rule, kind, source, targets, tags):
            return Decision(rule, {k: (tags or {})[k] for k in rule.ami_tags})
    return Decision(None)


def check_duration(decision: Decision, kind: str, params: dict[str, Any]) -> None:
    """``max_duration_hours``: a longer time-boxed share, or one without ``for``, is
    refused before anyone is asked, naming the rule."""
    rule = decision.rule
    if rule is None or rule.max_duration_hours is None or kind != "share":
        return
    seconds = params.get("duration_seconds")
    limit, name = rule.max_duration_hours, escape(rule.name)
    if not seconds:
        raise PreflightError(f"Policy `{name}` allows only time-boxed shares of at most {limit} h, and this share has no end. Nobody was asked.",
                             fix=f"Add `for {limit}h` (or less) to the command.")
    if seconds > limit * 3600:
        raise PreflightError(f"Policy `{name}` allows shares of at most {limit} h; this one asks for {seconds / 3600:g} h. Nobody was asked.",
                             fix=f"Ask again with `for {limit}h` or less.")


def decision_facts(decision: Decision) -> dict[str, Any]:
    """What is stored with the request (``facts["policy"]``)."""
    rule = decision.rule
    return {"rule": rule.name if rule else None, "approve": decision.approve, "ami_tags": decision.matched_tags,
            "break_glass": bool(rule and rule.break_glass), "max_duration_hours": rule.max_duration_hours if rule else None}


def plan_line(facts: dict[str, Any]) -> str:
    """The plan's line naming the rule that applied (and the tags it matched)."""
    name = facts.get("rule")
    if not name:
        return "Approval: no `[[policy]]` rule matched, so one owner of each account decides."
    line = f"Approval: policy `{escape(name)}` — {_MODE_WORDS.get(facts.get('approve', OWNERS), facts.get('approve'))}"
    if facts.get("ami_tags"):
        line += "; the AMI carries " + ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in facts["ami_tags"].items())
    if facts.get("break_glass"):
        line += "; break-glass: an owner may approve their own request"
    return line + "."


def needed(request_facts: dict[str, Any]) -> int:
    """How many distinct approvers each account needs."""
    return NEEDED.get((request_facts.get("policy") or {}).get("approve", OWNERS), 1)


def break_glass(request_facts: dict[str, Any]) -> bool:
    """Whether the rule that applied lets an owner approve their own request."""
    return bool((request_facts.get("policy") or {}).get("break_glass"))


def max_hours(request_facts: dict[str, Any]) -> int | None:
    """The rule's ``max_duration_hours``, if any."""
    return (request_facts.get("policy") or {}).get("max_duration_hours")


def rule_problems(config: Config, verbs: Iterable[str]) -> list[str]:
    """What ``amibot doctor`` reports about the rules: verbs amibot does not have, and a
    rule no request can reach because an earlier rule matches everything it matches."""
    known = set(verbs)
    problems: list[str] = []
    for index, rule in enumerate(config.policies):
        unknown = [v for v in rule.operations if v != ANY and v not in known]
        if unknown:
            problems.append(f"{rule.label}: operations {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a verb "
                            f"(verbs that make requests: {', '.join(sorted(known))})")
        for earlier in config.policies[:index]:
            if _covers(earlier, rule):
                problems.append(f"{rule.label} is never used: {earlier.label} comes first and matches every request it matches")
                break
    return problems


def _covers(a: PolicyRule, b: PolicyRule) -> bool:
    def wider(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
        return ANY in x or (ANY not in y and set(y) <= set(x))

    return (wider(a.operations, b.operations) and wider(a.sources, b.sources) and wider(a.targets, b.targets)
            and all(b.ami_tags.get(k) == v for k, v in a.ami_tags.items()))
