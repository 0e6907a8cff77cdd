"""`/ami retire` survives a restart in the middle: the bot process is SIGKILLed right
after DeregisterImage went through in AWS and before it was recorded; the next
process finishes the request once, with one final message (tests/bot/test_crash_recovery.py
has the machinery)."""

from __future__ import annotations

from offline import rehearsal
from bot.store import Store
from tests.bot.test_crash_recovery import bot_process, server_sandbox  # noqa: F401 (the module fixture)
from offline.slack import FakeSlack


def test_sigkill_after_deregister_went_through_then_restart(server_sandbox, tmp_path):  # noqa: F811
    server_sandbox.reset()
    world = rehearsal.seed(server_sandbox)
    rehearsal.enforce_generated_policies(server_sandbox, rehearsal.sandbox_config(str(tmp_path / "policy.db"), env={}))
    fake = FakeSlack(usergroups=rehearsal.USERGROUPS)
    fake.start()
    bot = bot_process(tmp_path, server_sandbox, fake)
    image = world.plain_image
    prod = server_sandbox.session(rehearsal.PROD).client("ec2")
    snapshot = prod.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    try:
        bot.start(pause_at="executed:1")  # DeregisterImage done in AWS, not recorded
        assert bot.slack.slash(rehearsal.REQUESTER, rehearsal.CHANNEL, f"retire {image} from prod deregister").status == 200
        root = fake.wait_for(lambda: next((m for m in fake.messages(rehearsal.CHANNEL) if image in m.get("text", "")), None), 30)
        bot.slack.click(rehearsal.OWNER, rehearsal.CHANNEL, root["ts"], "amibot_approve", "R-1")
        bot.wait_paused("executed:1")
        bot.kill()
        assert image not in {i["ImageId"] for i in prod.describe_images(Owners=["self"])["Images"]}  # it did go through
        bot.start()
        final = fake.wait_for(lambda: [m for m in fake.thread(rehearsal.CHANNEL, root["ts"]) if m.get("reply_broadcast")], 60)
        assert len(final) == 1 and "is done" in final[0]["text"], final
        request = Store(str(tmp_path / "amibot.db")).get(1)
        assert request.state == "succeeded", request.error
        assert [s.state for s in request.steps] == ["done"]
        assert snapshot not in {s["SnapshotId"] for s in prod.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    finally:
        bot.stop()
        fake.stop()
