"""Unshare an AMI: remove exactly what amibot's shares added, and say what else is there.

The plan lists every removal: launch permission, snapshot permission, the KMS grants
amibot made (found by their recorded ids in the store, and by their ``amibot-`` name
with ``ListGrants`` for grants a lost database no longer knows), and, for an
organisation or OU, amibot's key-policy statements (the approver sees each policy
before and after). Launch or snapshot permission amibot did not add is still removed
(unshare is an explicit request) and the plan says so; grants and key-policy
statements amibot did not make are kept and listed, since they may serve something
else. A grant that amibot made for another request (another AMI on the same key, a
copy in flight) is kept too.

When the unshare succeeds, the earlier share requests it removed are settled in the
store (``bot.verbs.unshare.settle``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from aws.actions import Action, ActionParams, ImageFacts, account_root, keypolicy
from aws.actions.autoscaling import autoscaling_role
from aws.actions.keypolicy import RemoveKeyPolicyStatements
from aws.actions.grants import RevokeKmsGrants, list_grants
from aws.actions.share import RemoveLaunchPermission, RemoveSnapshotPermission
from bot import slacktext
from bot.config import AccountConfig
from bot.errors import PreflightError, UnknownAccountError
from bot.verbs.common import PlanningContext, Prepared, approver_accounts, facts_for_message, preflight_read
from bot.verbs.common import key_label as _key_label
from bot.verbs.share.plan import (
    org_entry,
    policy_change_lines,
    read_key_policy,
    require_organization,
)
from bot.requests import STEP_DONE, PlannedStep, Request, Step
from bot.verbs.lexer import ACCOUNT_ID_RE

if TYPE_CHECKING:  # the command types are only annotations here: the verb's folder imports this module
    from bot.verbs.unshare.command import UnshareCommand

GRANT_ACTIONS = ("kms.create_grant", "kms.create_autoscaling_grant")


@dataclass
class _Target:
    label: str  # how the plan names it
    account_id: str
    name: str = ""  # how the card names it: the configured name, else the id


@dataclass
class _Plan:
    steps: list[PlannedStep] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    settles: set[str] = field(default_factory=set)  # display ids of earlier requests this removes
    policies: dict[str, dict[str, str]] = field(default_factory=dict)


def _done_steps(requests: list[Request]) -> Iterator[tuple[Request, Step]]:
    for request in requests:
        for step in request.steps:
            if step.state == STEP_DONE:
                yield request, step


def _is_share_of(request: Request, image_id: str, region: str) -> bool:
    return request.kind == "share" and request.params.get("image_id") == image_id and request.params.get("region") == region


def _recorded_grants(done: list[tuple[Request, Step]], key_arn: str, principals: dict[str, str]) -> dict[str, tuple[Request, str, float | None]]:
    """The grants on ``key_arn`` to one of ``principals`` that ``done`` steps made, by
    grant id: (the request that made it, its grantee, when CreateGrant answered)."""
    found: dict[str, tuple[Request, str, float | None]] = {}
    for request, step in done:
        grantee = step.params.get("grantee_principal")
        if step.action in GRANT_ACTIONS and step.params.get("key_arn") == key_arn and grantee in principals and step.result.get("grant_id"):
            found.setdefault(step.result["grant_id"], (request, grantee, step.result.get("created_at")))
    return found


def unshare_targets(ctx: PlanningContext, refs: tuple[str, ...], source: AccountConfig) -> list[_Target]:
    """The accounts to unshare from. A 12-digit id that is not configured is
    accepted: taking access away from an unknown account is always safe."""
    targets = []
    for ref in refs:
        try:
            account = ctx.config.account(ref)
            target = _Target(f"`{account.alias}` ({account.id})", account.id, account.alias)
        except UnknownAccountError:
            if not ACCOUNT_ID_RE.fullmatch(ref):
                raise
            target = _Target(f"account {ref}", ref, ref)
        if target.account_id == source.id:
            raise PreflightError(f"`{ref}` is the source account itself.", fix="Name the accounts to unshare from after `to`.")
        targets.append(target)
    return targets


class _Planner:
    """Reads what is in place (read-only) and matches it with the store's records."""

    def __init__(self, ctx: PlanningContext, source: AccountConfig, region: str, facts: ImageFacts):
        self.ctx, self.source, self.region, self.facts = ctx, source, region, facts
        self.plan = _Plan()
        earlier = ctx.find_requests()
        self.own = [(r, s) for r, s in _done_steps(earlier) if _is_share_of(r, facts.image_id, region)]
        self.others = [(r, s) for r, s in _done_steps(earlier) if not _is_share_of(r, facts.image_id, region)]
        self.ec2 = ctx.sessions.client("ec2", source.id, region, f"preflight-{ctx.uid}")
        self.kms = ctx.sessions.client("kms", source.id, region, f"preflight-{ctx.uid}")

    def step(self, action: type[Action], params: ActionParams, **context: Any) -> None:
        self.plan.steps.append(action.plan(self.source, self.region, params, **context))

    def added_by(self, action: str, match: Any) -> list[Request]:
        """Earlier shares of this image whose done ``action`` step added ``match``."""
        found = []
        for request, step in self.own:
            if step.action == action and match(step.result) and request not in found:
                found.append(request)
        return found

    # -- launch permission ------------------------------------------------------------

    def launch_permission(self, entries: list[tuple[dict[str, str], str]]) -> None:
        """Remove the entries that are in place; say who added each."""
        present = [(entry, label) for entry, label in entries if entry in self.facts.launch_permissions]
        for entry, label in entries:
            if (entry, label) not in present:
                self.plan.checked.append(f"{label} has no launch permission on {self.facts.image_id}: nothing to remove there")
        if not present:
            return
        origins = []
        for entry, label in present:
            by = self.added_by("ec2.add_launch_permission", lambda result, entry=entry: entry in result.get("added", []))
            self.plan.settles.update(r.display_id for r in by)
            origins.append(f"{label} (" + (f"added by {', '.join(r.display_id for r in by)}" if by else "*not added by amibot*: removed because you ask") + ")")
        params = {"image_id": self.facts.image_id, "account_ids": [e["UserId"] for e, _ in present if "UserId" in e]}
        for entry, _ in present:
            if "OrganizationArn" in entry:
                params["organization_arn"] = entry["OrganizationArn"]
            if "OrganizationalUnitArn" in entry:
                params["ou_arn"] = entry["OrganizationalUnitArn"]
        self.step(RemoveLaunchPermission, RemoveLaunchPermission.Params.from_dict(params), origins=origins)

    # -- snapshot permission --------------------------------------------------------------

    def snapshot_permission(self, targets: list[_Target]) -> None:
        """Remove the targets' createVolumePermission on each snapshot that has it."""
        wanted = {t.account_id for t in targets}
        by_accounts: dict[tuple[str, ...], list[str]] = {}
        for snapshot_id in self.facts.snapshot_ids:
            permissions = preflight_read(
                f"Could not read the snapshot permissions of {snapshot_id}",
                lambda snapshot_id=snapshot_id: self.ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"],
            )
            accounts = tuple(sorted(wanted & {p.get("UserId") for p in permissions}))
            if accounts:
                by_accounts.setdefault(accounts, []).append(snapshot_id)
        for accounts, snapshot_ids in by_accounts.items():
            origins = []
            for account in accounts:
                by = self.added_by("ec2.add_snapshot_permission", lambda result, a=account: any(a in added for added in result.get("added", {}).values()))
                self.plan.settles.update(r.display_id for r in by)
                origins.append(f"{account} (" + (f"added by {', '.join(r.display_id for r in by)}" if by else "*not added by amibot*: removed because you ask") + ")")
            self.step(RemoveSnapshotPermission, RemoveSnapshotPermission.Params(snapshot_ids=snapshot_ids, account_ids=list(accounts)), origins=origins)

    # -- grants -----------------------------------------------------------------------------

    def grants(self, targets: list[_Target]) -> None:
        """Per key: revoke the grants amibot made to the targets (their root principal
        and their Auto Scaling role) by the ids it recorded; keep and list the others.

        ListGrants is eventually consistent: a grant made seconds ago may not be listed
        yet. So the listing never decides that a recorded grant is gone (RevokeGrant's
        own answer does, at run time), nor that another request's grant is absent;
        it only finds the grants amibot has no record of."""
        principals = {}
        for target in targets:
            principals[account_root(target.account_id, self.region)] = f"the root of {target.label}"
            principals[autoscaling_role(target.account_id, self.region)] = f"the Auto Scaling role of {target.label}"
        for key in self.facts.keys:
            live = preflight_read(f"Could not read the grants of {key.arn}", lambda key=key: list_grants(self.kms, key.arn))
            mine = _recorded_grants(self.own, key.arn, principals)
            elsewhere = _recorded_grants(self.others, key.arn, principals)
            revoke, origins, created = [], [], {}
            for grant_id, (request, grantee, created_at) in mine.items():
                revoke.append(grant_id)
                if created_at is not None:
                    created[grant_id] = float(created_at)
                self.plan.settles.add(request.display_id)
                origins.append(f"`{grant_id}` to {principals[grantee]} (made by {request.display_id})")
            for grant_id, (request, grantee, _) in elsewhere.items():
                if grant_id not in mine:
                    self.plan.after.append(
                        f"Kept: grant `{grant_id}` on {_key_label(key)} to {principals[grantee]} belongs to {request.display_id} "
                        "(another AMI on this key, or a request still in force)."
                    )
            for grant in live:
                grantee = grant.get("GranteePrincipal")
                grant_id, name = grant["GrantId"], grant.get("Name") or ""
                if grantee not in principals or grant_id in mine or grant_id in elsewhere:
                    continue
                if name.startswith("amibot-"):
                    revoke.append(grant_id)
                    origins.append(f"`{grant_id}` to {principals[grantee]} (named `{name}`: made by amibot, not in its records, e.g. a lost database; it may also serve other AMIs on this key)")
                else:
                    self.plan.after.append(
                        f"Kept: grant `{grant_id}` on {_key_label(key)} to {principals[grantee]} was not made by amibot"
                        + (f" (name `{name}`)" if name else "")
                        + f"; revoke it by hand if it should go: `aws kms revoke-grant --key-id {key.arn} --grant-id {grant_id}`."
                    )
            if revoke:
                self.step(RevokeKmsGrants, RevokeKmsGrants.Params(key_arn=key.arn, grant_ids=revoke, created_at=created or None), key_label=_key_label(key), origins=origins)

    # -- key policy (organisation / OU) ---------------------------------------------------

    def key_policy_statements(self, suffix: str, who: str) -> None:
        """Per key: remove amibot's statements for this organisation or OU (Sid
        ``amibot-<org or OU id>``, on older keys ``amibot-<uid>-<…>``) unless another
        AMI's share relies on them, showing the policy before and after."""
        for key in self.facts.keys:
            text = read_key_policy(self.ctx, self.source, self.region, key.arn)
            policy = json.loads(text)
            present = keypolicy.sids(policy)
            mine = {
                s.result["sid"]: (r, s.result.get("policy_before"))
                for r, s in self.own
                if s.action == "kms.add_key_policy_statement" and s.params.get("key_arn") == key.arn and s.result.get("sid", "").endswith(f"-{suffix}")
            }
            elsewhere = {
                s.result["sid"]: r
                for r, s in self.others
                if s.action == "kms.add_key_policy_statement" and s.params.get("key_arn") == key.arn and s.result.get("sid")
            }
            remove, origins = [], []
            for sid in present:
                if sid in mine and sid in elsewhere:
                    # One statement per organisation / OU (aws.actions.keypolicy): another
                    # AMI's share on this key relies on it too, so it stays.
                    self.plan.settles.add(mine[sid][0].display_id)
                    self.plan.after.append(f"Kept: key-policy statement `{sid}` on {_key_label(key)} also serves {elsewhere[sid].display_id} (another AMI on this key).")
                elif sid in mine:
                    remove.append(sid)
                    self.plan.settles.add(mine[sid][0].display_id)
                    origins.append(f"`{sid}` (added by {mine[sid][0].display_id})")
                elif sid.startswith("amibot-") and sid.endswith(f"-{suffix}"):
                    if sid in elsewhere:
                        self.plan.after.append(f"Kept: key-policy statement `{sid}` on {_key_label(key)} belongs to {elsewhere[sid].display_id} (another AMI on this key).")
                        continue
                    remove.append(sid)
                    origins.append(f"`{sid}` (amibot's by its Sid; not in its records)")
            if not remove:
                self.plan.checked.append(f"The key policy of {_key_label(key)} has no amibot statement for {who}: nothing to remove there")
                continue
            removed_statements = [s for s in keypolicy.statements(policy) if isinstance(s, dict) and s.get("Sid") in remove]
            after = keypolicy.without_sids(policy, remove)
            restore = [before for sid, (_, before) in mine.items() if sid in remove and before]
            after_text = next((t for t in restore if keypolicy.same_policy(json.loads(t), after)), keypolicy.render(after))
            self.plan.policies[key.arn] = {"before": text, "after": after_text}
            statements = RemoveKeyPolicyStatements.Params(key_arn=key.arn, sids=remove, restore_texts=restore)
            self.step(RemoveKeyPolicyStatements, statements, key_label=_key_label(key), origins=origins)
            self.plan.after += policy_change_lines(_key_label(key), key.arn, text, after_text, removed_statements, adding=False)


def prepare_unshare(ctx: PlanningContext, command: UnshareCommand) -> Prepared:
    """Preflight an unshare and plan exactly the removals."""
    source = ctx.config.account(command.source.account)
    region = ctx.region_of(command.source.region)
    organization = require_organization(ctx.config, "Unsharing from an Organization or OU") if (command.organization or command.ou_id) else None
    targets = unshare_targets(ctx, command.targets, source)
    approvers = approver_accounts("unshare", source)
    ctx.check_approvers(approvers)
    facts = ctx.preflight_image(source, region, command.image_id)
    if facts.owner_id != source.id:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}, not by `{source.alias}` ({source.id}); only the owner can unshare it.",
            fix="Name the owning account after `from`.",
        )
    planner = _Planner(ctx, source, region, facts)
    plan = planner.plan
    plan.checked.append(f"{facts.image_id} {slacktext.code(facts.name, 128)} in {region}, owned by `{source.alias}` ({facts.owner_id})")
    if organization is not None:
        entry, who = org_entry(organization, command.ou_id)
        kind, value = next(iter(entry.items()))
        suffix = command.ou_id or organization.id
        # Match the ARN by the org/OU id: an entry added by hand may name another management account form.
        live = next((p for p in facts.launch_permissions if (p.get(kind) or "").endswith(f"/{suffix}")), entry)
        planner.launch_permission([(live, who)])
        planner.key_policy_statements(suffix, who)
        target_names = [suffix]
    else:
        planner.launch_permission([({"UserId": t.account_id}, t.label) for t in targets])
        planner.snapshot_permission(targets)
        planner.grants(targets)
        target_names = [t.account_id for t in targets]
        group_entries = [p for p in facts.launch_permissions if "OrganizationArn" in p or "OrganizationalUnitArn" in p]
        if group_entries:
            plan.after.append(
                "Still in place: launch permission for " + ", ".join(f"`{next(iter(p.values()))}`" for p in group_entries)
                + "; member accounts of it can still launch the AMI (unshare `org` or the OU to end that)."
            )
    if facts.public:
        plan.after.append("The image is *public* (amibot did not make it so and does not change that).")
    if not plan.steps:
        raise PreflightError(
            f"{facts.image_id} is not shared with {', '.join(target_names)} in {region}: no launch permission, snapshot permission, "
            "grant or key-policy statement to remove.",
            fix="`/ami list all` shows earlier requests; check the account and region after `from`.",
        )
    if plan.settles:
        plan.after.append(
            f"Earlier requests whose changes this removes: {', '.join(sorted(plan.settles))}. "
            "They are marked when this is done, so a time-boxed share does not remove anything a second time and ends as removed."
        )
    plan.after.append("Nothing is made public; nothing else on the image, its snapshots or keys changes.")
    return Prepared(
        kind="unshare",
        params={"image_id": facts.image_id, "source": source.alias, "region": region, "targets": [t.account_id for t in targets],
                "target_names": [t.name for t in targets], "organization": command.organization, "ou_id": command.ou_id},
        checked=plan.checked,
        approver_accounts=approvers,
        steps=plan.steps,
        after=plan.after,
        extra_facts={"image": facts_for_message(facts), "key_policies": plan.policies},
    )


# -- after success: settle the earlier shares --------------------------------------------
