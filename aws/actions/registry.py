"""The one list of action modules: importing this module imports each of them, and
each registers its actions in ``ACTIONS`` (``aws.actions.base.register``). A new
action module is added here."""

from __future__ import annotations

from aws.actions import images, share, grants, keypolicy, autoscaling, migrate, verify, copy, target_checks, launchroles, tags, launch_template, distribute, retire
from aws.actions.base import ACTIONS, Action, get_action

ACTION_MODULES = (images, share, grants, keypolicy, autoscaling, migrate, verify, copy, target_checks, launchroles, tags, launch_template, distribute, retire)

__all__ = ["ACTIONS", "ACTION_MODULES", "Action", "get_action"]
