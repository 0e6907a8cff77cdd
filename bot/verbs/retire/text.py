"""What a retire request says: its risk line on the card and in the Approve confirm; and
what it settles after success (the shares a ``disable`` ended)."""

from __future__ import annotations

from typing import Any

from aws.actions import get_action
from aws.actions.holdings import launch_permission_resource
from aws.actions.retire import DisableImage
from aws.actions.share import launch_permission_entries
from bot.requests import ACTIVE, STEP_DONE, STEP_UNDONE, Request
from bot.verbs import cardtext
from bot.verbs.cardtext import CardFacts, ami, place
from bot.verbs.common import CHANGED_AWS_STATES

_WHAT = {
    "deprecate": "deprecates {what}: hidden from listings {when}, still launchable by id",
    "disable": "disables {what}: no new launches, and AWS removes every launch permission (everyone it was shared with loses it)",
    "deregister": "deregisters {what} and deletes its snapshots: cannot be undone (except from a Recycle Bin rule)",
}


def risk(request: Request) -> str:
    """A retire request's main risk, by mode, naming every account-region touched."""
    params = request.params
    targets = params.get("targets") or []
    what = f"{params.get('image_id')} in `{params.get('source')}`" + (
        f" and its {len(targets) - 1} cop{'y' if len(targets) == 2 else 'ies'} (" + ", ".join(f"`{t}`" for t in targets[1:]) + ")" if len(targets) > 1 else "")
    when = f"from {params['deprecate_at']}" if params.get("deprecate_at") else "from now"
    return _WHAT.get(params.get("mode"), "retires {what}").format(what=what, when=when)


def card(request: Request) -> CardFacts:
    """A retire request's card fields: where, and what everyone loses."""
    params = request.params
    copies = len(params.get("targets") or []) - 1
    route = place(params.get("source"), params.get("region")) + (f" and {copies} cop{'y' if copies == 1 else 'ies'}" if copies > 0 else "")
    access = {"deprecate": "still launchable by id", "disable": "nobody can launch it", "deregister": "gone, with its snapshots"}
    return CardFacts(subject=ami(request), route=route, access=access.get(params.get("mode"), "retired"),
                     duration="until enabled again" if params.get("mode") == "disable" else "permanent")


def settle_disabled(request: Request, store: Any, lifecycle: Any) -> list[str]:
    """After ``disable``: AWS removed every launch permission of the disabled AMIs, so
    amibot's records of those shares end with this request — their launch-permission
    steps are marked undone, their holdings ended, and an active time-boxed share with
    nothing else left ends ``revoked`` (through the lifecycle). Idempotent (a resume
    settles again)."""
    disabled = {(s.account_id, s.region, s.params.get("image_id")) for s in request.steps if s.action == DisableImage.name and s.state == STEP_DONE}
    notes: list[str] = []
    for other in store.find(states=CHANGED_AWS_STATES, limit=1_000_000) if disabled else ():
        if other.id == request.id:
            continue
        ended = False
        for step in other.steps:
            if step.state == STEP_DONE and step.action == "ec2.add_launch_permission" and (step.account_id, step.region, step.params.get("image_id")) in disabled:
                for entry in launch_permission_entries(step.params):
                    store.end_holding(launch_permission_resource(step.account_id, step.region, step.params["image_id"], entry), request.id)
                store.mark_step(other.id, step.seq, STEP_UNDONE)
                ended = True
        if not ended:
            continue
        other = store.get(other.id)
        left = [s for s in other.steps if s.state == STEP_DONE and get_action(s.action).undoable]
        if other.state == ACTIVE and not left and lifecycle.share_removed_by(other, request, how="retire: disabled"):
            notes.append(f"{other.display_id} (time-boxed share) ended: the image is disabled.")
        else:
            notes.append(f"{other.display_id}'s launch permission is recorded as gone (AWS removed it)"
                         + ("; its expiry removes only the rest." if other.state == ACTIVE else "."))
    return notes


def alert(request: Request) -> str:
    """What a retire request asks, for a lock screen: ``deregister base-al2023 in prod and 2 copies``."""
    params = request.params
    copies = len(params.get("targets") or []) - 1
    return (f"{params.get('mode') or 'retire'} {cardtext.alert_ami(request)} in {cardtext.alert_place(params.get('source'))}"
            + (f" and {copies} cop{'y' if copies == 1 else 'ies'}" if copies > 0 else ""))
