"""The target side of an encrypted share or copy: can the target's own roles launch it?

Before approval (when ``accounts.<a>.launch_roles`` is set) the plan shows IAM's
answer per role (``iam:SimulatePrincipalPolicy`` from the target's amibot role); the
verification asks again after the share (``verify.launch_roles``); and the final
message of every encrypted share or copy shows the IAM policy the target's launching
roles need, ready to paste.
"""

from __future__ import annotations

from typing import Callable

from aws.actions.launchroles import CheckLaunchRoles, simulate_launch_roles
from aws.errors import is_aws_error, translate
from bot import slacktext
from bot.config import AccountConfig
from bot.requests import PlannedStep
from bot.verbs.common import PlanningContext


def plan_lines(ctx: PlanningContext, target: AccountConfig, region: str, key_arns: list[str], image_id: str) -> list[str]:
    """What IAM says now about the target's launch roles (read-only; an error is
    shown, never a refusal: the roles are the target's business)."""
    return start_plan_lines(ctx, target, region, key_arns, image_id)()


def start_plan_lines(ctx: PlanningContext, target: AccountConfig, region: str, key_arns: list[str], image_id: str) -> Callable[[], list[str]]:
    """Start asking IAM about the target's launch roles (every simulation at once, on
    the preflight's reads); the returned call waits and gives :func:`plan_lines`' lines."""
    if not target.launch_roles or not key_arns:
        return lambda: []
    asked = ctx.reads.start(f"launch roles of {target.alias}", lambda: simulate_launch_roles(
        ctx.sessions.client("iam", target.id, region, ctx.tag), list(target.launch_roles), key_arns, region, image_id,
        list(target.pass_roles), reads=ctx.reads))

    def lines() -> list[str]:
        try:
            answers = asked.result()
        except Exception as error:
            if not is_aws_error(error):
                raise
            failure = translate(error)
            return [slacktext.escape(f"Launch roles of `{target.alias}`: could not ask IAM ({failure.code}: {failure.aws_message})")]
        out = [slacktext.escape(f"Launch roles of `{target.alias}` (config `launch_roles`), asked of IAM: {a.line()}") for a in answers]
        if not all(a.can_launch for a in answers):
            out.append(f"Roles that cannot launch yet need the IAM policy shown in the final message (for {', '.join(key_arns)}).")
        return out

    return lines


def check_steps(target: AccountConfig, region: str, key_arns: list[str], image_id: str) -> list[PlannedStep]:
    """The verification step asking IAM again once the share is in place."""
    if not target.launch_roles or not key_arns:
        return []
    check = CheckLaunchRoles.Params(image_id=image_id, key_arns=list(key_arns), roles=list(target.launch_roles),
                                    pass_roles=list(target.pass_roles))
    return [CheckLaunchRoles.plan(target, region, check)]
