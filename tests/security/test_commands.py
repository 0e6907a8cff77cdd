"""The attacker's view of slash commands, over the real HTTP endpoint: what a member of
the workspace can make the bot show or do with ``/ami`` (issue 17)."""

from __future__ import annotations

from offline import rehearsal
from bot import slacktext
from bot.requests import SUCCEEDED

HOSTILE_VALUE = "<!channel> <https://evil.example/login|Approve here> <@U0ALICE>"


def _clean(text: str) -> None:
    assert not slacktext.unmeant_markup(text), slacktext.unmeant_markup(text)


def test_tag_values_reach_no_surface_as_markup(harness):
    """Finding 1: `/ami tag … "note=<!channel> <https://…|Approve here> <@U0ALICE>"` —
    the exact-changes modal, status, the progress reply and the next plan's "Tags now"
    show the value escaped, never as a live link or mention."""
    image = harness.world.encrypted_image
    harness.slash(f'tag {image} from prod "note={HOSTILE_VALUE}"')
    root = harness.root_for(f"tag {image}")
    _clean(harness.exact_changes(root))
    status = harness.slash("status R-1", user=rehearsal.OWNER).json()["text"]
    assert "CreateTags" in status
    _clean(status)
    harness.click(rehearsal.OWNER, root)
    harness.final_reply(root)
    harness.settle()
    assert harness.bot.store.get(1).state == SUCCEEDED
    for message in harness.fake.thread(harness.channel, root["ts"]):
        _clean(message.get("text") or "")
    harness.slash(f"tag {image} from prod other=1")
    second = harness.root_for(f"tag {image} from prod other")
    changes = harness.exact_changes(second)
    assert "Tags now" in changes and "&lt;!channel&gt;" in changes
    _clean(changes)
