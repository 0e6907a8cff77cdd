"""``/ami audit``: who can use an AMI, each way in marked with the amibot request that
made it or flagged as made outside amibot; and the drift check, which compares what
amibot believes is in force with AWS for every AMI it touched.

What amibot made comes from the store: the done (not undone) steps of requests that
may still be in force (``operations.CHANGED_AWS_STATES``) — the launch permissions
they added, snapshot permissions, grant ids and key-policy statement Sids.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aws.audit import ImageAccess, read_image_access
from aws.errors import MISSING, is_aws_error, read_outcome
from aws.sessions import AwsSessions
from bot import messages
from bot.config import Config
from bot.requests import STEP_DONE, Request

log = logging.getLogger("amibot.drift")

# AWS calls one drift run may make (pacing is botocore's adaptive retry mode, the
# sessions' "drift" tag); AMIs past it are not read this run and keep their findings.
# Configured as ``[bot] drift_call_budget``; this is its default.
DRIFT_CALL_BUDGET = 2000


@dataclass
class Ledger:
    """What amibot added and believes is in force, by resource, with the request."""

    launch: dict[tuple[str, str, str, str], str] = field(default_factory=dict)  # (account, region, image, who) -> R-n
    snapshot: dict[tuple[str, str, str, str], str] = field(default_factory=dict)  # (account, region, snapshot, account) -> R-n
    grants: dict[str, tuple[str, str, str, str, str]] = field(default_factory=dict)  # grant id -> (R-n, account, region, key, grantee)
    sids: dict[str, str] = field(default_factory=dict)  # key-policy Sid -> R-n
    images: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (account, region, image) -> source alias hint
    # Grants made within the consistency window: AWS may not list them yet ("not
    # visible yet", not "revoked outside amibot"), as for every resource amibot creates.
    recent: set[str] = field(default_factory=set)
    # AMIs of requests changed within the window: "not found" may be "not visible yet".
    recent_images: set[tuple[str, str, str]] = field(default_factory=set)


def _who(entry: dict[str, str]) -> str:
    return entry.get("UserId") or entry.get("OrganizationArn") or entry.get("OrganizationalUnitArn") or entry.get("Group") or "?"


def build_ledger(requests: list[Request], recent_since: float | None = None) -> Ledger:
    """What the done steps of ``requests`` added (``recent_since``: requests changed
    since then made grants AWS may not list yet)."""
    ledger = Ledger()
    for request in requests:
        rid = request.display_id
        recent = recent_since is not None and (request.updated_at or 0) >= recent_since
        for step in request.steps:
            result, params = step.result, step.params
            where = (step.account_id, step.region)
            image = params.get("image_id") or result.get("image_id")
            if step.action in ("ec2.add_launch_permission", "ec2.share_copy") and image:
                ledger.images[(*where, image)] = step.account_alias  # touched, even if since undone
                if recent:
                    ledger.recent_images.add((*where, image))
            if step.state != STEP_DONE:
                continue
            if step.action in ("ec2.add_launch_permission", "ec2.share_copy"):
                if image:
                    for entry in result.get("added", []):
                        ledger.launch[(*where, image, _who(entry))] = rid
            elif step.action == "ec2.add_snapshot_permission":
                for snapshot, accounts in (result.get("added") or {}).items():
                    for account in accounts:
                        ledger.snapshot[(*where, snapshot, account)] = rid
            elif step.action in ("kms.create_grant", "kms.create_autoscaling_grant") and result.get("grant_id"):
                ledger.grants[result["grant_id"]] = (rid, *where, params["key_arn"], params.get("grantee_principal", ""))
                if recent:
                    ledger.recent.add(result["grant_id"])
            elif step.action == "kms.add_key_policy_statement" and result.get("sid"):
                ledger.sids[result["sid"]] = rid
            if step.action == "ec2.share_copy":
                for grant_id in (result.get("grant_ids") or {}).values():
                    ledger.grants[grant_id] = (rid, *where, result.get("kms_key_arn") or "", "")
    return ledger


def _mark(rid: str | None) -> str:
    return f"amibot {rid}" if rid else ":warning: *not made by amibot*"


def _account_label(config: Config, who: str) -> str:
    found = config.account_by_id(who) if who.isdigit() else None
    return f"`{found.alias}` ({who})" if found else messages.escape(who)


def audit_text(config: Config, access: ImageAccess, ledger: Ledger, alias: str) -> str:
    """The audit of one AMI in words, every line marked."""
    a, r, img = access.owner_id, access.region, access.image_id
    lines = [
        f"*Audit of {img}* `{messages.escape(access.name)}` in `{alias}` ({a}) {r} — read-only, {access.calls} AWS calls",
        "*Launch permission*",
    ]
    if not access.launch_permissions:
        lines.append("• nobody but the owner")
    for entry in access.launch_permissions:
        who = _who(entry)
        lines.append(f"• {_account_label(config, who)} — {_mark(ledger.launch.get((a, r, img, who)))}")
    lines.append("*Snapshot permission (createVolumePermission: can copy the data out)*")
    if not any(access.snapshot_permissions.values()):
        lines.append("• nobody but the owner")
    for snapshot, entries in access.snapshot_permissions.items():
        for entry in entries:
            who = _who(entry)
            lines.append(f"• {snapshot}: {_account_label(config, who)} — {_mark(ledger.snapshot.get((a, r, snapshot, who)))}")
    for key in access.keys:
        label = f"{key.aliases[0]} ({key.arn})" if key.aliases else key.arn
        lines.append(f"*Key {messages.escape(label)}* ({'AWS-managed' if key.manager == 'AWS' else 'customer-managed'})")
        if not key.grants and not key.outside_statements and not (ledger.recent & set(ledger.grants)):
            lines.append("• no grants, no policy statement for other accounts")
        for grant in key.grants:
            made = ledger.grants.get(grant.get("GrantId") or "")
            lines.append(
                f"• grant `{grant.get('GrantId')}` to {messages.escape(str(grant.get('GranteePrincipal')))} "
                f"({', '.join(grant.get('Operations') or [])}) — {_mark(made[0] if made else None)}"
            )
        listed = {g.get("GrantId") for g in key.grants}
        for grant_id, (rid, acct, region, key_arn, grantee) in ledger.grants.items():
            if grant_id in ledger.recent and grant_id not in listed and key_arn == key.arn and (acct, region) == (a, r):
                lines.append(f"• grant `{grant_id}` to {messages.escape(grantee)} — {_mark(rid)} (just made: AWS does not list it yet)")
        for statement in key.outside_statements:
            sid = statement.get("Sid") or "(no Sid)"
            principal = statement.get("Principal")
            condition = f" if {statement['Condition']}" if statement.get("Condition") else ""
            lines.append(f"• policy statement `{messages.escape(sid)}`: {messages.escape(str(principal))}{messages.escape(condition)} — {_mark(ledger.sids.get(sid))}")
    public = "*yes: launch permission for everyone (`Group: all`)*" if access.public else "no"
    lines.append(f"*Public*: {public}; AMI block public access: {access.image_block_public_access or 'unknown'}; "
                 f"snapshot block public access: {access.snapshot_block_public_access or 'unknown'}")
    lines += [f"_{messages.escape(n)}_" for n in access.notes]
    return "\n".join(lines)


# -- drift ---------------------------------------------------------------------------------


@dataclass
class Finding:
    """One difference between amibot's record and AWS."""

    id: str
    account_id: str
    region: str
    image_id: str
    kind: str  # added_outside | removed_outside
    subject: str
    detail: str
    fix: str
    request: str | None = None


def _finding(kind: str, account: str, region: str, image: str, subject: str, detail: str, fix: str, request: str | None = None) -> Finding:
    digest = hashlib.sha256(f"{kind}|{account}|{region}|{image}|{subject}".encode()).hexdigest()[:20]
    return Finding(f"drift-{digest}", account, region, image, kind, subject, detail, fix, request)


def compare(config: Config, access: ImageAccess, ledger: Ledger, alias: str) -> list[Finding]:
    """Findings for one AMI: access in AWS amibot did not grant, and access amibot
    granted that is gone."""
    a, r, img = access.owner_id, access.region, access.image_id
    found: list[Finding] = []
    src = f"{alias}:{r}"
    in_aws = {_who(e) for e in access.launch_permissions}
    for who in sorted(in_aws):
        if (a, r, img, who) not in ledger.launch:
            target = _alias_of(config, who)
            found.append(_finding("added_outside", a, r, img, f"launch:{who}",
                                  f"launch permission on {img} for {who}, not granted by amibot",
                                  f"/ami unshare {img} from {src} to {target}"))
    for (acct, region, image, who), rid in ledger.launch.items():
        if (acct, region, image) == (a, r, img) and who not in in_aws:
            target = _alias_of(config, who)
            found.append(_finding("removed_outside", a, r, img, f"launch:{who}",
                                  f"launch permission on {img} for {who}, granted by {rid}, was removed outside amibot",
                                  f"/ami share {img} from {src} to {target}", rid))
    for snapshot, entries in access.snapshot_permissions.items():
        for who in {_who(e) for e in entries}:
            if (a, r, snapshot, who) not in ledger.snapshot:
                found.append(_finding("added_outside", a, r, img, f"snapshot:{snapshot}:{who}",
                                      f"createVolumePermission on {snapshot} (of {img}) for {who}, not granted by amibot",
                                      f"/ami unshare {img} from {src} to {who}"))
    for key in access.keys:
        present = {g.get("GrantId") for g in key.grants}
        for grant in key.grants:
            principal = str(grant.get("GranteePrincipal") or "")
            if grant.get("GrantId") not in ledger.grants and f":{a}:" not in principal and "amazonaws.com" not in principal:
                found.append(_finding("added_outside", a, r, img, f"grant:{grant.get('GrantId')}",
                                      f"KMS grant {grant.get('GrantId')} on {key.arn} to {principal}, not made by amibot",
                                      f"aws kms revoke-grant --key-id {key.arn} --grant-id {grant.get('GrantId')} (if it is not wanted)"))
        for grant_id, (rid, acct, region, key_arn, grantee) in ledger.grants.items():
            if key_arn == key.arn and (acct, region) == (a, r) and grant_id not in present and grant_id not in ledger.recent:
                found.append(_finding("removed_outside", a, r, img, f"grant:{grant_id}",
                                      f"KMS grant {grant_id} on {key.arn} to {grantee}, made by {rid}, was revoked outside amibot",
                                      f"/ami share {img} from {src} to {_alias_of(config, grantee.split(':')[4] if grantee.count(':') >= 4 else grantee)}", rid))
    return found


def _alias_of(config: Config, account: str) -> str:
    found = config.account_by_id(account) if account.isdigit() else None
    return found.alias if found else account


def finding_text(finding: Finding, alias: str) -> str:
    verb = "granted outside amibot" if finding.kind == "added_outside" else "removed outside amibot"
    return (f":mag: Drift in `{alias}` ({finding.account_id}) {finding.region}: {messages.escape(finding.detail)} ({verb}). "
            f"To reconcile: `{messages.escape(finding.fix)}`")


class DriftChecker:
    """The scheduled drift check: every AMI amibot touched, read once per tick of
    the check (per account-region, in order), findings stored and reported once."""

    def __init__(self, config: Config, store: Any, sessions: AwsSessions, notifier: Any, find_requests: Any, clock: Any,
                 call_budget: int | None = None):
        self.call_budget = config.bot.drift_call_budget if call_budget is None else call_budget
        self.config = config
        self.store = store
        self.sessions = sessions
        self.notifier = notifier
        self.find_requests = find_requests
        self.clock = clock

    def due(self) -> bool:
        last = self.store.last_drift_check()
        return last is None or self.clock() - last >= self.config.bot.drift_check_hours * 3600

    def check(self) -> list[Finding]:
        """Compare every AMI amibot touched with AWS; store new findings, resolve the
        ones gone, report each new one once to the owners of its account."""
        self.store.set_drift_checked(self.clock())
        ledger = build_ledger(self.find_requests(), recent_since=self.clock() - self.config.bot.consistency_window_seconds)
        findings: list[Finding] = []
        unread: set[tuple[str, str, str]] = set()
        shared: dict[Any, Any] = {}  # one read per key and per account-region's block-public-access state
        spent = 0
        gone = self.store.drift_gone_images()
        for (account, region, image), _ in sorted(ledger.images.items()):
            owner = self.config.account_by_id(account)
            if owner is None or (account, region, image) in gone:
                continue
            if spent >= self.call_budget:
                # Out of this run's budget: not read, so its findings stay as they were.
                unread.add((account, region, image))
                continue
            try:
                access = read_image_access(self.sessions, account, region, image, "drift-check", shared=shared)
                spent += access.calls
            except Exception as error:  # aws.errors.read_outcome says what it means
                if not is_aws_error(error) or read_outcome(error) != MISSING:
                    # Throttled, a 5xx, refused: nothing is known; its findings stay as they were.
                    unread.add((account, region, image))
                    log.warning("drift: could not read %s in %s %s: %s", image, account, region, error)
                elif (account, region, image) not in ledger.recent_images:
                    # MISSING past the consistency window: the AMI no longer exists, so
                    # nothing of it is open any more; pruned, later runs do not ask again.
                    self.store.forget_drift_image(account, region, image, self.clock())
                spent += 1
                continue
            if access.unread:
                unread.add((account, region, image))
                continue
            findings += compare(self.config, access, ledger, owner.alias)
        self.store.record_drift(findings, self.clock(), unread=unread)
        self.report()
        return findings

    def report(self) -> int:
        """Tell each unreported finding to its account's owners (a DM each), once."""
        sent = 0
        for row in self.store.drift_findings(unreported_only=True):
            owner = self.config.account_by_id(row["account_id"])
            alias = owner.alias if owner else row["account_id"]
            finding = Finding(row["id"], row["account_id"], row["region"], row["image_id"], row["kind"], row["subject"], row["detail"], row["fix"], row["request"])
            text = finding_text(finding, alias)
            people = [o for o in (owner.owners if owner else []) if not o.startswith("S")]
            for person in people:
                self.notifier.post(person, text, None, dedupe=f"{row['id']}:{person}")
            groups = [o for o in (owner.owners if owner else []) if o.startswith("S")]
            if groups and self.config.bot.notify_channel:
                self.notifier.post(self.config.bot.notify_channel, " ".join(messages.mention(g) for g in groups) + " " + text, None, dedupe=f"{row['id']}:groups")
            self.store.mark_drift_reported(row["id"], self.clock())
            sent += 1
        return sent


def drift_list_text(config: Config, rows: list[dict[str, Any]]) -> str:
    """``/ami audit --drift``: the open findings."""
    if not rows:
        return "No drift: what amibot granted is what AWS has, for every AMI it touched (last check: see `/ami audit --drift` after the next daily run)."
    lines = [f"*Drift findings* ({len(rows)} open)"]
    for row in rows:
        owner = config.account_by_id(row["account_id"])
        verb = "granted outside amibot" if row["kind"] == "added_outside" else "removed outside amibot"
        lines.append(f"• `{owner.alias if owner else row['account_id']}` {row['region']}: {messages.escape(row['detail'])} ({verb}) — fix: `{messages.escape(row['fix'])}`")
    return "\n".join(lines)
