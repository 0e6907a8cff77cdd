"""What a retire request says: its risk line on the card and in the Approve confirm."""

from __future__ import annotations

from bot.requests import Request

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
