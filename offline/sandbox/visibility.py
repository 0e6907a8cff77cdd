"""Cross-account visibility of AMIs and snapshots.

AWS shows another account's AMI only to accounts with launch permission (account id,
``all``, the caller's Organization or one of its OUs), and another account's snapshot
only with ``createVolumePermission``; it never shows the owner's tags to them.
"""

from __future__ import annotations

import re
from typing import Any

from offline.sandbox.state import _State


_ORG_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:organization/(?P<org>o-[a-z0-9]+)$")
_OU_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:ou/(?P<org>o-[a-z0-9]+)/(?P<ou>ou-[a-z0-9-]+)$")


def _can_launch(state: _State, ami: Any, account: str) -> bool:
    """AWS: an account sees/launches an AMI it owns, a public one, or one shared with it
    by account id, by its Organization or by an OU it is in."""
    if ami.owner_id == account:
        return True
    return _shared_with(state, ami, account) or ami.is_public


def _shared_with(state: _State, ami: Any, account: str) -> bool:
    org = state.org_of(account)
    ous = state.ou_path(account)
    for perm in ami.launch_permissions:
        if perm.get("UserId") == account:
            return True
        m = _ORG_ARN.match(perm.get("OrganizationArn") or "")
        if m and org and m.group("org") == org:
            return True
        m = _OU_ARN.match(perm.get("OrganizationalUnitArn") or "")
        if m and org and m.group("org") == org and m.group("ou") in ous:
            return True
    return False


def _can_restore(snapshot: Any, account: str) -> bool:
    """AWS: a snapshot can be read (described, copied) by its owner and by accounts
    with createVolumePermission (account ids or ``all``; organisations cannot be named)."""
    return (
        snapshot.owner_id == account
        or account in snapshot.create_volume_permission_userids
        or "all" in snapshot.create_volume_permission_groups
    )


_VIEW_CLASSES: dict[type, type] = {}


def _foreign_view(obj: Any) -> Any:
    """A copy of an EC2 model as another account sees it: AWS never shows an owner's
    user-defined tags to the accounts an AMI or snapshot is shared with."""
    base = type(obj)
    cls = _VIEW_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (base,), {"get_tags": lambda self: [], "__module__": base.__module__})
        _VIEW_CLASSES[base] = cls
    view = object.__new__(cls)
    view.__dict__.update(obj.__dict__)
    return view
