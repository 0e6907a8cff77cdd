"""What the requester reads (issue 18): the results a request made, first, and the
short DMs that reach them without following the thread (approved, progress of a
long copy, the ending with a link to the thread). Words only: the lifecycle
(:mod:`bot.lifecycle`) decides when they are said and enqueues them.
"""

from __future__ import annotations

from typing import Any

from bot import messages, slacktext
from bot.requests import STEP_DONE, Request
from bot.verbs import registry

PROGRESS_DM_SECONDS = 300.0  # a long copy's progress reaches the requester at most every 5 minutes
NEXT_STEP = {
    "copy": "Launch it by its id in that account-region; the copy is the target account's own (delete it there when done).",
    "distribute": "Launch each copy by its id in its account-region; each is that account's own.",
    "share": "It can be launched from the target account(s) by its id now.",
}


def made(request: Request) -> list[tuple[str, str, str, str]]:
    """The AMIs the request made: (account name, account id, region (escaped), AMI
    id), as its checks from the target saw them."""
    found = []
    for step in request.steps:
        image = step.result.get("image_id") if step.action == "verify.copy" and step.state == STEP_DONE else None
        if image:
            found.append((step.account_alias, step.account_id, slacktext.escape(step.region), image))
    return found


def made_lines(request: Request) -> list[str]:
    """The head of a final message: each new AMI, linked to the EC2 console in its
    region, with its account; then what the requester does next."""
    amis = made(request)
    lines = []
    if request.kind == "copy" and len(amis) == 1:
        alias, account, region, image = amis[0]
        lines.append(f"The copy is {messages.console_link(region, image)} in `{slacktext.escape(alias)}` ({account}) {region}.")
    else:
        lines += [f"• `{slacktext.escape(alias)}` ({account}) {region}: {messages.console_link(region, image)}" for alias, account, region, image in amis]
    if request.kind == "share" and request.params.get("image_id"):
        region = str(request.params.get("region"))
        lines.append(f"Shared: {messages.console_link(region, request.params['image_id'])} from `{slacktext.escape(request.params.get('source'))}` "
                     f"{slacktext.escape(region)}.")
    if lines and request.kind in NEXT_STEP:
        lines.append("*Next:* " + NEXT_STEP[request.kind])
    return lines


def statement_button(request: Request) -> list[dict[str, Any]] | None:
    """The final reply's blocks when it has an IAM statement to show: its text, and a
    button that opens the statement in a modal (``None``: text alone)."""
    if not registry.statement(request):
        return None
    return [{"type": "button", "action_id": messages.VIEW_STATEMENT_ACTION, "value": request.display_id,
             "text": {"type": "plain_text", "text": "View IAM statement"}}]


def ended_dm(request: Request, text: str) -> str:
    """The requester's DM when a request ends: the first line of the final reply,
    without mentioning them to themself, the new AMIs, and a link to the thread."""
    head = text.splitlines()[0].replace(messages.mention(request.requester) + " ", "", 1) if text else request.display_id
    head = head.replace(messages.mention(request.requester), "you")  # e.g. "cancelled by you": never a mention of them to themself
    amis = ", ".join(f"{messages.console_link(region, image)} ({slacktext.escape(alias)} {region})" for alias, _, region, image in made(request))
    return head + (f"\nNew: {amis}" if amis else "") + f"\nDetails: {messages.thread_link(request)}."


def approved_dm(request: Request, by: str) -> str:
    """The requester's DM when the last approval came (who approved it)."""
    return (f":white_check_mark: {request.display_id} approved by {by}: {registry.alert(request)}. Starting now; "
            f"I will DM you when it ends. {messages.thread_link(request, 'Thread')}.")


def progress_dm(request: Request, elapsed: float, percent: int | None) -> str:
    """A long copy's progress for the requester: elapsed time, and an estimate from
    the copy's own progress (linear in its percentage)."""
    said = f":hourglass_flowing_sand: {request.display_id} ({registry.alert(request)}) running for {_duration(elapsed)}"
    if percent and 0 < percent < 100:
        said += f": {percent} % copied, about {_duration(elapsed * (100 - percent) / percent)} to go"
    return said + f". {messages.thread_link(request, 'Thread')}."


def copy_percent(request: Request) -> int | None:
    """The lowest progress of the copies still in flight (their own percentage)."""
    found = [int(s.result["progress"]) for s in request.steps
             if s.action == "ec2.wait_image_available" and s.state != STEP_DONE and isinstance(s.result.get("progress"), (int, float))]
    return min(found) if found else None


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return "under a minute"
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"
