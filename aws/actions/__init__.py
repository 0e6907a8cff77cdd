"""Every change amibot makes in AWS, one small class per action.

Each action is registered by name, declares the IAM permissions it uses (the IAM
policies are generated from these declarations, see ``aws.iam``), and has
``execute`` (idempotent: safe to run again after a crash) and, where the change can
be taken back, ``undo``, which removes exactly what ``execute`` added and nothing a
person had before. Its parameters are a typed dataclass (``Params``), and it
describes its own planned step (``plan``). In the manner of Cloud Custodian's
``c7n`` actions.

The base class and registry are in ``aws.actions.base``, the list of action modules
in ``aws.actions.registry``; this package re-exports what callers use.
"""

from __future__ import annotations

from aws.actions.base import (
    ACTIONS,
    SHARE_GRANT_OPERATIONS,
    Action,
    ActionParams,
    Kept,
    StepContext,
    StepWaiting,
    account_root,
    get_action,
    grant_name,
    image_of,
    register,
)
from aws.actions.inspect import PREFLIGHT_PERMISSIONS, AllowedImages, ImageFacts, KeyFacts, allowed_images, inspect_image
from aws.actions.plan import PlannedStep
from aws.actions.registry import ACTION_MODULES
from aws.partitions import partition_for

__all__ = [
    "ACTIONS", "ACTION_MODULES", "AllowedImages", "PREFLIGHT_PERMISSIONS", "SHARE_GRANT_OPERATIONS", "Action", "ActionParams", "ImageFacts", "allowed_images",
    "Kept", "KeyFacts", "PlannedStep", "StepContext", "StepWaiting", "account_root", "get_action", "grant_name", "image_of",
    "inspect_image", "partition_for", "register",
]
