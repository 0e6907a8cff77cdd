"""After an unshare succeeds: the earlier share requests it removed are settled in the
store, so a time-boxed share does not remove them a second time at expiry and ends
``revoked`` (through the lifecycle)."""

from __future__ import annotations

from typing import Any

from aws.actions import get_action
from aws.actions.share import launch_permission_entries
from bot.requests import ACTIVE, STEP_DONE, STEP_UNDONE, Request, Step
from bot.verbs.common import CHANGED_AWS_STATES
from bot.verbs.unshare.plan import GRANT_ACTIONS

def _removed(request: Request) -> tuple[list[dict[str, str]], dict[str, set[str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """What an unshare's done steps removed: launch entries, snapshot accounts,
    (key, grant id) pairs and (key, Sid) pairs."""
    launch: list[dict[str, str]] = []
    snapshots: dict[str, set[str]] = {}
    grants: set[tuple[str, str]] = set()
    sids: set[tuple[str, str]] = set()
    for step in request.steps:
        if step.state != STEP_DONE:
            continue
        # What work in flight still needed was kept (aws.actions.holdings): not removed.
        result = step.result or {}
        if step.action == "ec2.remove_launch_permission":
            launch += [e for e in launch_permission_entries(step.params) if e not in result.get("kept_entries", [])]
        elif step.action == "ec2.remove_snapshot_permission":
            for snapshot_id in step.params["snapshot_ids"]:
                kept = set(result.get("kept_accounts", {}).get(snapshot_id, []))
                snapshots.setdefault(snapshot_id, set()).update(a for a in step.params["account_ids"] if a not in kept)
        elif step.action == "kms.revoke_grants":
            grants.update((step.params["key_arn"], g) for g in step.params["grant_ids"])
        elif step.action == "kms.remove_key_policy_statements":
            sids.update((step.params["key_arn"], s) for s in step.params["sids"] if s not in result.get("kept_sids", []))
    return launch, snapshots, grants, sids


def _settled_result(step: Step, image_id: str, removed: tuple) -> dict[str, Any] | str | None:
    """For an earlier request's done step: STEP_UNDONE when the unshare removed all it
    added, a trimmed result when it removed part, None when it touched none of it."""
    launch, snapshots, grants, sids = removed
    result = step.result
    if step.action == "ec2.add_launch_permission" and step.params.get("image_id") == image_id:
        added = result.get("added", [])
        left = [e for e in added if e not in launch]
        if len(left) == len(added):
            return None
        return STEP_UNDONE if not left else {**result, "added": left}
    if step.action == "ec2.add_snapshot_permission":
        added = result.get("added", {})
        left = {snap: [a for a in accounts if a not in snapshots.get(snap, set())] for snap, accounts in added.items()}
        if left == added:
            return None
        return STEP_UNDONE if not any(left.values()) else {**result, "added": left}
    if step.action in GRANT_ACTIONS and (step.params.get("key_arn"), result.get("grant_id")) in grants:
        return STEP_UNDONE
    if step.action == "kms.add_key_policy_statement" and (step.params.get("key_arn"), result.get("sid")) in sids:
        return STEP_UNDONE
    return None


def settle_unshared(request: Request, store: Any, lifecycle: Any) -> list[str]:
    """Record in the earlier requests what this unshare removed: their steps are
    marked undone (or their results trimmed), so nothing is removed twice; an
    active time-boxed share with nothing left ends ``revoked``."""
    removed = _removed(request)
    image_id = request.params["image_id"]
    notes = []
    for other in store.find(states=CHANGED_AWS_STATES, limit=1_000_000):
        if other.id == request.id:
            continue
        changed = False
        for step in other.steps:
            if step.state != STEP_DONE:
                continue
            settled = _settled_result(step, image_id, removed)
            if settled is None:
                continue
            changed = True
            if settled == STEP_UNDONE:
                store.mark_step(other.id, step.seq, STEP_UNDONE)
            else:
                store.mark_step(other.id, step.seq, STEP_DONE, result=settled)
        if not changed:
            continue
        other = store.get(other.id)
        left = [s for s in other.steps if s.state == STEP_DONE and get_action(s.action).undoable]
        if other.state == ACTIVE and not left and lifecycle.share_removed_by(other, request):
            notes.append(f"{other.display_id} (time-boxed share) is marked removed.")
        else:
            notes.append(f"{other.display_id} now records these changes as removed, so nothing is removed twice"
                         + ("; its expiry removes only the rest." if other.state == ACTIVE else "."))
    return notes
