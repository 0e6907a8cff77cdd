"""The target side of an encrypted share or copy: can the target's own roles launch it?

Before approval (when ``accounts.<a>.launch_roles`` is set) the plan shows IAM's
answer per role (``iam:SimulatePrincipalPolicy`` from the target's amibot role); the
verification asks again after the share (``verify.launch_roles``); and the final
message of every encrypted share or copy shows the IAM policy the target's launching
roles need, ready to paste.
"""

from __future__ import annotations

from typing import Any

from aws.actions.launchroles import CheckLaunchRoles, render_required_statement, simulate_launch_roles
from aws.errors import is_aws_error, translate
from bot import messages
from bot.config import AccountConfig
from bot.operations import PlanningContext, after_success
from bot.requests import STEP_DONE, PlannedStep


def plan_lines(ctx: PlanningContext, target: AccountConfig, region: str, key_arns: list[str], image_id: str) -> list[str]:
    """What IAM says now about the target's launch roles (read-only; an error is
    shown, never a refusal: the roles are the target's business)."""
    if not target.launch_roles or not key_arns:
        return []
    try:
        iam = ctx.sessions.client("iam", target.id, region, f"preflight-{ctx.uid}")
        answers = simulate_launch_roles(iam, list(target.launch_roles), key_arns, region, image_id)
    except Exception as error:
        if not is_aws_error(error):
            raise
        failure = translate(error)
        return [messages.escape(f"Launch roles of `{target.alias}`: could not ask IAM ({failure.code}: {failure.aws_message})")]
    lines = [messages.escape(f"Launch roles of `{target.alias}` (config `launch_roles`), asked of IAM: {a.line()}") for a in answers]
    if not all(a.can_launch for a in answers):
        lines.append(f"Roles that cannot launch yet need the IAM policy shown in the final message (for {', '.join(key_arns)}).")
    return lines


def check_steps(target: AccountConfig, region: str, key_arns: list[str], image_id: str) -> list[PlannedStep]:
    """The verification step asking IAM again once the share is in place."""
    if not target.launch_roles or not key_arns:
        return []
    check = CheckLaunchRoles.Params(image_id=image_id, key_arns=list(key_arns), roles=list(target.launch_roles))
    return [CheckLaunchRoles.plan(target, region, check)]


def statement_note(key_arns: list[str], region: str, who: str) -> str:
    """The final-message lines: the IAM policy ``who`` needs, in a code block."""
    return (
        f"Roles in {who} that launch it need IAM allowing the key too (the grant or key-policy statement is only "
        "the key's side). Attach this policy to them:\n"
        f"```{messages.escape(render_required_statement(key_arns, region))}```"
    )


def _verified_notes(request: Any) -> list[str]:
    return [
        messages.escape(step.result["final_note"])
        for step in request.steps
        if step.action == "verify.launch_roles" and step.state == STEP_DONE and step.result.get("final_note")
    ]


@after_success("share")
def share_launch_notes(request: Any, store: Any, notifier: Any) -> list[str]:
    """An encrypted share's final message: IAM's answers for the launch roles, and
    the statement every target's roles need."""
    keys = [k["arn"] for k in (request.facts.get("image") or {}).get("keys", [])]
    if not keys:
        return []
    who = ", ".join(f"`{t}`" for t in request.params.get("targets") or []) or "the organisation's accounts"
    return _verified_notes(request) + [statement_note(keys, request.params["region"], who)]


@after_success("copy")
def copy_launch_notes(request: Any, store: Any, notifier: Any) -> list[str]:
    """An encrypted copy's final message: the statement the target's roles need for
    the copy's key (the target's own key, used through EC2 like any other)."""
    key = request.params.get("kms_key_arn")
    if not key:
        return []
    return _verified_notes(request) + [statement_note([key], request.params["region"], f"`{request.params['target']}`")]
