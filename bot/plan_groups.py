"""A plan whose steps are grouped by target (a distribution: one group per target
account-region), and what the engine says about it.

Steps outside every group are common: those before the groups run first, in order (a
failure there fails the request and undoes what it did, as for any plan); those
after the groups run once every group has finished, failed or not (the removal of
the temporary share), and their failure is reported, never undone. Within the
groups, each group's steps run in order; a group whose step waits (a copy in flight)
lets the others go on, so every target's copy is in flight at once; a group whose
step fails has what it did undone (an unfinished copy deregistered, a finished one
kept) and its remaining steps left alone, and the other groups continue.

The request ends ``succeeded`` (every group done), ``partial`` (some failed) or
``failed`` (all failed), with one final message listing every target.

A plan without groups is the simple case of the same shape: every step is a common
step "before", and there are no groups and nothing after.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from typing import Any, Mapping

from bot import messages, slacktext
from bot.requests import FAILED, PARTIAL, STEP_DONE, STEP_FAILED, STEP_PENDING, STEP_UNDONE, SUCCEEDED, Request, Step

# What a group's step still to run is waiting on: (group name, the action's progress words).
Waits = list[tuple[str, str | None]]

DONE, FAILED_GROUP, OPEN = "done", "failed", "open"


def group_name(params: Mapping[str, Any]) -> str | None:
    """The group (target) a step's params put it in; None: a common step.

    The stored key is ``"unit"`` (plans stored before the engine was one keep it)."""
    return params.get("unit")


def is_grouped(request: Request) -> bool:
    """Whether the request's plan has groups (a distribution)."""
    return any(group_name(s.params) for s in request.steps)


def groups(request: Request) -> dict[str, list[Step]]:
    """Group name → its steps in order (plan order of first appearance)."""
    grouped: dict[str, list[Step]] = {}
    for step in request.steps:
        name = group_name(step.params)
        if name:
            grouped.setdefault(name, []).append(step)
    return grouped


@dataclass
class Phases:
    """A plan cut in three: common steps before the groups, the groups, common steps after."""

    before: list[Step] = field(default_factory=list)
    groups: dict[str, list[Step]] = field(default_factory=dict)
    after: list[Step] = field(default_factory=list)


def phases(request: Request) -> Phases:
    """The request's plan cut in its three phases (a plain plan: all ``before``)."""
    cut = Phases(groups=groups(request))
    seen_group = False
    for step in request.steps:
        if group_name(step.params):
            seen_group = True
        else:
            (cut.after if seen_group else cut.before).append(step)
    return cut


def next_steps(request: Request) -> list[Step] | None:
    """The steps the engine would run next: the first common step not done; else the
    first pending step of each open group; else the first pending step after the
    groups. None when something else comes next (a failed common step whose handling
    must finish, or the ending)."""
    plan = phases(request)
    for step in plan.before:
        if step.state != STEP_DONE:
            return [step] if step.state == STEP_PENDING else None
    firsts = [next(s for s in steps if s.state == STEP_PENDING) for steps in plan.groups.values()
              if group_state(steps) == OPEN and any(s.state == STEP_PENDING for s in steps)]
    if firsts:
        return firsts
    return next(([s] for s in plan.after if s.state == STEP_PENDING), None)


def group_state(steps: list[Step]) -> str:
    """``done``, ``failed``, or ``open`` (steps still to run)."""
    if any(s.state == STEP_FAILED for s in steps):
        return FAILED_GROUP
    if all(s.state in (STEP_DONE, STEP_UNDONE) for s in steps):
        return DONE
    return OPEN


def failed_groups(request: Request) -> list[str]:
    return [name for name, steps in groups(request).items() if group_state(steps) == FAILED_GROUP]


def progress_text(request: Request, waits: Waits) -> str:
    """``2 of 4 available, dev:eu-west-1 42%, failed: prod:eu-west-1``."""
    grouped = groups(request)
    available = sum(1 for steps in grouped.values() if any(s.action == "ec2.wait_image_available" and s.state == STEP_DONE for s in steps)
                    or group_state(steps) == DONE)
    parts = [f"{available} of {len(grouped)} available"]
    for name, progress in waits:
        parts.append(f"{name} {progress.split(' ', 1)[-1] if progress else 'in progress'}")
    failed = failed_groups(request)
    if failed:
        parts.append("failed: " + ", ".join(failed))
    return ", ".join(parts)


def ending(request: Request) -> tuple[str, str]:
    """The final state of a grouped request whose groups all finished, and why."""
    grouped, failed = groups(request), failed_groups(request)
    if not failed:
        return SUCCEEDED, "every target done"
    return (FAILED if len(failed) == len(grouped) else PARTIAL), f"{len(failed)} of {len(grouped)} targets failed"


def final_text(request: Request) -> str:
    """The final message: every target with its new AMI id (and what else was done
    for it), or why it failed and what was undone; then the cleanup."""
    grouped = groups(request)
    failed = failed_groups(request)
    who = messages.mention(request.requester)
    if not failed:
        head = f":tada: {who} {request.display_id} is done: {slacktext.code(request.command_text)} — {len(grouped)} of {len(grouped)} targets."
    elif len(failed) == len(grouped):
        head = f":x: {who} {request.display_id} failed: {slacktext.code(request.command_text)} — no target succeeded."
    else:
        head = f":warning: {who} {request.display_id} is partly done: {slacktext.code(request.command_text)} — {len(grouped) - len(failed)} of {len(grouped)} targets."
    lines = [head]
    for name, steps in grouped.items():
        lines.append(_failed_line(name, steps) if name in failed else _done_line(name, steps))
    for skipped in request.params.get("skipped", []):
        lines.append(f"• `{group_name(skipped)}`: {slacktext.code(skipped['image_id'])} (copied by {skipped['by']}; not copied again)")
    for step in (s for s in request.steps if not group_name(s.params) and s.action == "plan.remove_temporary"):
        if step.state == STEP_FAILED:
            lines.append(f"Could not remove the temporary share: {step.error} Remove it by hand (`/ami audit` shows it).")
        elif step.result.get("summary"):
            lines.append(f"Temporary share removed: {slacktext.escape(step.result['summary'])}.")
    if failed and request.kind == "retire":
        lines.append("To retry the failed ones, ask again for those account-regions.")
    elif failed:
        lines.append("To retry the failed targets, ask for the same distribution again: the targets that have their copy are not copied again.")
    return "\n".join(lines)


def _failed_line(name: str, steps: list[Step]) -> str:
    step = next(s for s in steps if s.state == STEP_FAILED)
    line = f"• `{name}`: failed at {step.description.split(':')[0]} — {step.error}"
    if step.result.get("unit_undone"):
        line += " Undone: " + "; ".join(step.result["unit_undone"]) + "."
    if step.result.get("unit_remains"):
        line += " Remains: " + "; ".join(step.result["unit_remains"]) + "."
    return line


def _done_line(name: str, steps: list[Step]) -> str:
    image = next((s.result.get("image_id") for s in steps if s.action == "verify.copy" and s.result.get("image_id")), None)
    image = image or next((s.params.get("image_id") for s in steps if s.params.get("image_id")), None)
    extras = [s.result["outcome"] for s in steps if s.action in ("ec2.share_copy", "ec2.launch_template_version") and s.result.get("outcome")]
    extras += [s.result["summary"] for s in steps if s.action in ("ec2.deprecate_image", "ec2.disable_image", "ec2.deregister_image") and s.result.get("summary")]
    if any(s.action == "verify.test_launch" and s.state == STEP_DONE for s in steps):
        extras.append("test launch passed")
    # Where the image is: the step that checked it from the target (or made it), not the group's first step (the source's grant).
    where = next((s for s in steps if s.action == "verify.copy"), None) or next((s for s in steps if s.action == "ec2.copy_image"), steps[0])
    region = where.region
    account = f" ({where.account_id})" if where.account_id else ""
    shown = messages.console_link(region, image)
    return f"• `{name}`{account}: {shown}" + (f" ({'; '.join(extras)})" if extras else "")
