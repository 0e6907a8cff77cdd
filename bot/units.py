"""Running a plan whose steps are grouped in independent *units* (a distribution:
one unit per target account-region, ``params["unit"]``).

Steps without a unit are common: those before the units run first, in order (a
failure there fails the request and undoes what it did, as for any plan); those
after the units run once every unit has finished, failed or not (the removal of
the temporary share), and their failure is reported, never undone. Within the
units, each unit's steps run in order; a unit whose step waits (a copy in flight)
lets the others go on, so every target's copy is in flight at once; a unit whose
step fails has what it did undone (an unfinished copy deregistered, a finished one
kept) and its remaining steps left alone, and the other units continue.

The request ends ``succeeded`` (every unit done), ``partial`` (some failed) or
``failed`` (all failed), with one final message listing every target.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from aws.actions import Kept, StepWaiting, get_action
from bot import crashpoints, messages
from bot.requests import FAILED, PARTIAL, RUNNING, STEP_DONE, STEP_FAILED, STEP_PENDING, STEP_UNDONE, SUCCEEDED, Request, Step

if TYPE_CHECKING:
    from bot.worker import PlanRunner

log = logging.getLogger("amibot.units")


def unit_of(step: Step) -> str | None:
    """The unit a step belongs to (None: a common step)."""
    return step.params.get("unit")


def has_units(request: Request) -> bool:
    """Whether the request's plan is grouped in units."""
    return any(unit_of(s) for s in request.steps)


def units(request: Request) -> dict[str, list[Step]]:
    """Unit name → its steps in order (plan order of first appearance)."""
    grouped: dict[str, list[Step]] = {}
    for step in request.steps:
        if unit_of(step):
            grouped.setdefault(unit_of(step), []).append(step)  # type: ignore[arg-type]
    return grouped


def unit_state(steps: list[Step]) -> str:
    """``done``, ``failed``, or ``open`` (steps still to run)."""
    if any(s.state == STEP_FAILED for s in steps):
        return "failed"
    if all(s.state in (STEP_DONE, STEP_UNDONE) for s in steps):
        return "done"
    return "open"


class UnitRunner:
    """Runs one request's unit-grouped plan with the PlanRunner's store, sessions
    and notifier (one pass per call; waiting steps bring it back)."""

    def __init__(self, runner: "PlanRunner"):
        self.runner = runner
        self.store = runner.store
        self.notifier = runner.notifier

    def run(self, request_id: int) -> None:
        request = self.store.get(request_id)
        first_unit = next(s.seq for s in request.steps if unit_of(s))
        # 1. the common steps before the units
        for step in request.steps:
            if step.seq >= first_unit:
                break
            if unit_of(step) or step.state == STEP_DONE:
                continue
            if step.state == STEP_FAILED:
                self.runner._finish_failure(request_id, step, step.error or "the step failed")
                return
            outcome = self._execute(request_id, step)
            if outcome == "failed":
                failed = next(s for s in self.store.get(request_id).steps if s.seq == step.seq)
                self.runner._finish_failure(request_id, failed, failed.error or "the step failed")
            if outcome != "done":
                if isinstance(outcome, StepWaiting):
                    self._wait(request_id, [(step.description.split(":")[0], outcome)])
                return
        # 2. the units, each as far as it goes
        waits: list[tuple[str, StepWaiting]] = []
        for name, steps in units(self.store.get(request_id)).items():
            if unit_state(steps) != "open":
                continue
            for step in steps:
                if step.state != STEP_PENDING:
                    continue
                if self.store.get(request_id).state != RUNNING or self.runner.stopping.is_set():
                    return  # cancelled meanwhile, or shutting down: resume later
                outcome = self._execute(request_id, step)
                if isinstance(outcome, StepWaiting):
                    waits.append((name, outcome))
                    break
                if outcome == "failed":
                    self._undo_unit(request_id, name)
                    break
        if waits:
            self._wait(request_id, waits)
            return
        # 3. the common steps after the units (cleanup): reported, never undone
        for step in self.store.get(request_id).steps:
            if step.seq < first_unit or unit_of(step) or step.state != STEP_PENDING:
                continue
            outcome = self._execute(request_id, step)
            if isinstance(outcome, StepWaiting):
                self._wait(request_id, [("cleanup", outcome)])
                return
        self._finish(request_id)

    # -- one step -------------------------------------------------------------------

    def _execute(self, request_id: int, step: Step) -> Any:
        """Run one step: ``"done"``, ``"failed"`` (recorded with its words) or the
        StepWaiting it raised (its partial result checkpointed)."""
        request = self.store.get(request_id)
        crashpoints.reached(f"before:{step.seq}")
        try:
            result = get_action(step.action).execute(self.runner.context(request, step.seq), step.account_id, step.region, step.params)
        except StepWaiting as waiting:
            if waiting.result:
                self.store.save_step_progress(request_id, step.seq, {**step.result, **waiting.result})
            return waiting
        except Exception as error:  # turned into words by messages.error_text
            self.store.mark_step(request_id, step.seq, STEP_FAILED, error=messages.error_text(error))
            return "failed"
        self.store.mark_step(request_id, step.seq, STEP_DONE, result={**step.result, **result})
        crashpoints.reached(f"done:{step.seq}")
        return "done"

    def _undo_unit(self, request_id: int, name: str) -> None:
        """Undo what one failed unit did, newest first; what is kept or could not be
        undone is recorded on the failed step for the final message."""
        request = self.store.get(request_id)
        steps = units(request)[name]
        undone: list[str] = []
        remains: list[str] = []
        for step in reversed(steps):
            in_flight = step.state == STEP_PENDING and bool(step.result)
            if step.state != STEP_DONE and not in_flight:
                continue
            action = get_action(step.action)
            if not action.undoable:
                continue
            try:
                said = action.undo(self.runner.context(request, step.seq), step.account_id, step.region, step.params, step.result)
            except Kept as kept:
                remains.append(str(kept))
                continue
            except Exception as error:
                remains.append(f"{step.description} (undo failed: {messages.error_text(error)})")
                continue
            self.store.mark_step(request_id, step.seq, STEP_UNDONE)
            if said:
                undone.append(said)
        failed = next(s for s in steps if s.state == STEP_FAILED)
        self.store.save_step_progress(request_id, failed.seq, {**failed.result, "unit_undone": undone, "unit_remains": remains})

    # -- progress -------------------------------------------------------------------

    def progress_text(self, request: Request, waits: list[tuple[str, StepWaiting]]) -> str:
        """``2 of 4 available, dev:eu-west-1 42%, failed: prod:eu-west-1``."""
        grouped = units(request)
        available = sum(1 for steps in grouped.values() if any(s.action == "ec2.wait_image_available" and s.state == STEP_DONE for s in steps)
                        or (unit_state(steps) == "done"))
        failed = [name for name, steps in grouped.items() if unit_state(steps) == "failed"]
        parts = [f"{available} of {len(grouped)} available"]
        for name, waiting in waits:
            shown = (waiting.progress or "in progress").split(" ", 1)[-1] if waiting.progress else "in progress"
            parts.append(f"{name} {shown}")
        if failed:
            parts.append("failed: " + ", ".join(failed))
        return ", ".join(parts)

    def _wait(self, request_id: int, waits: list[tuple[str, StepWaiting]]) -> None:
        request = self.store.get(request_id)
        progress = self.progress_text(request, waits)
        now = self.runner.clock()
        retry = min(w.retry_after for _, w in waits)
        fields: dict[str, Any] = {"wake_at": now + retry * random.uniform(0.9, 1.1), "progress": progress}
        show = request.progress_shown_at is None or now - request.progress_shown_at >= self.runner.progress_edit_seconds
        if show:
            fields["progress_shown_at"] = now
        self.store.set_fields(request_id, **fields)
        if show:
            # The thread stays quiet: the one progress reply and the card, edited in place.
            self.notifier.progress(request_id, progress)
            self.notifier.update_root(request_id, progress=progress)

    # -- the end ----------------------------------------------------------------------

    def _finish(self, request_id: int) -> None:
        request = self.store.get(request_id)
        grouped = units(request)
        failed = [n for n, steps in grouped.items() if unit_state(steps) == "failed"]
        # The temporary share was removed by the cleanup step: record it as undone,
        # so nothing later (unshare, audit, drift) treats it as in force.
        for step in request.steps:
            if step.action == "plan.remove_temporary" and step.state == STEP_DONE:
                for seq in step.params.get("steps", []):
                    self.store.mark_step(request_id, int(seq), STEP_UNDONE)
        state = SUCCEEDED if not failed else (FAILED if len(failed) == len(grouped) else PARTIAL)
        detail = "every target done" if not failed else f"{len(failed)} of {len(grouped)} targets failed"
        if not self.store.transition(request_id, RUNNING, state, "amibot", detail, **({"error": detail} if failed else {})):
            return
        request = self.store.get(request_id)
        text = final_text(request)
        self.notifier.reply(request_id, text, broadcast=True, dedupe=f"final:{request_id}")
        self.notifier.update_root(request_id)
        if self.runner.notify_channel:
            self.notifier.post(self.runner.notify_channel, text, request_id, dedupe=f"notify:{request_id}")


def final_text(request: Request) -> str:
    """The final message: every target with its new AMI id (and what else was done
    for it), or why it failed and what was undone; then the cleanup."""
    grouped = units(request)
    failed = [n for n, steps in grouped.items() if unit_state(steps) == "failed"]
    who = messages.mention(request.requester)
    if not failed:
        head = f":tada: {who} {request.display_id} is done: `{request.command_text}` — {len(grouped)} of {len(grouped)} targets."
    elif len(failed) == len(grouped):
        head = f":x: {who} {request.display_id} failed: `{request.command_text}` — no target succeeded."
    else:
        head = f":warning: {who} {request.display_id} is partly done: `{request.command_text}` — {len(grouped) - len(failed)} of {len(grouped)} targets."
    lines = [head]
    for name, steps in grouped.items():
        if name in failed:
            step = next(s for s in steps if s.state == STEP_FAILED)
            line = f"• `{name}`: failed at {step.description.split(':')[0]} — {step.error}"
            if step.result.get("unit_undone"):
                line += " Undone: " + "; ".join(step.result["unit_undone"]) + "."
            if step.result.get("unit_remains"):
                line += " Remains: " + "; ".join(step.result["unit_remains"]) + "."
            lines.append(line)
            continue
        image = next((s.result.get("image_id") for s in steps if s.action == "verify.copy" and s.result.get("image_id")), None)
        image = image or next((s.params.get("image_id") for s in steps if s.params.get("image_id")), None)
        extras = [s.result["outcome"] for s in steps if s.action in ("ec2.share_copy", "ec2.launch_template_version") and s.result.get("outcome")]
        if any(s.action == "verify.test_launch" and s.state == STEP_DONE for s in steps):
            extras.append("test launch passed")
        lines.append(f"• `{name}`: `{image}`" + (f" ({'; '.join(extras)})" if extras else ""))
    for skipped in request.params.get("skipped", []):
        lines.append(f"• `{skipped['unit']}`: `{skipped['image_id']}` (copied by {skipped['by']}; not copied again)")
    cleanup = [s for s in request.steps if not unit_of(s) and s.action == "plan.remove_temporary"]
    for step in cleanup:
        if step.state == STEP_FAILED:
            lines.append(f"Could not remove the temporary share: {step.error} Remove it by hand (`/ami audit` shows it).")
        elif step.result.get("summary"):
            lines.append(f"Temporary share removed: {step.result['summary']}.")
    if failed:
        lines.append("To retry the failed targets, ask for the same distribution again: the targets that have their copy are not copied again.")
    return "\n".join(lines)
