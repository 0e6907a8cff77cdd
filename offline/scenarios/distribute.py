"""Demo scenarios: a distribution to several account-regions in one request, and
the audit (with the drift check) of the AMI it came from."""

from __future__ import annotations

from offline import rehearsal
from offline.scenarios.stage import Stage, blocks_text, request_id, wait

OUTSIDER = "333333333333"  # an account nobody configured: someone shared with it by hand


def play(stage: Stage) -> None:
    """Distribute prod's encrypted AMI to dev:eu-west-1 (copied already by the copy
    scenario: not copied again), prod:eu-west-1 and dev:us-west-2; one approval per
    account; every copy in flight at once, progress in the root message; the final
    message lists each target's AMI."""
    t, fake, world, channel, sandbox = stage.t, stage.fake, stage.world, stage.channel, stage.sandbox
    image = world.encrypted_image
    t.note("— distributing prod's CMK-encrypted AMI to three account-regions in one request —")
    text = f"distribute {image} from prod to dev:eu-west-1,prod:eu-west-1,dev:us-west-2"
    stage.ask(text)
    root = stage.root_for(f"distribute {image}")
    if not t.expect("one approval message with one plan for every target", bool(root)):
        return
    t.say("amibot", blocks_text(root))
    plan = stage.exact_changes(root)  # the compact card; the plan is in its modal
    t.expect("the plan lists each target with its key, name and tags", all(f"Target `{x}`" in plan for x in ("dev:eu-west-1", "prod:eu-west-1", "dev:us-west-2")) and "region=us-west-2" in plan)
    t.expect("dev:eu-west-1 already has its copy (the copy scenario): not copied again", "already copied by" in plan)
    sandbox.set_copy_duration(10)  # longer than the sandbox's visibility delay: the copies are seen pending
    try:
        t.say("@alice", "clicks [ Approve ] (prod)")
        stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
        t.say("@devops", "clicks [ Approve ] (dev)")
        stage.slack.click(rehearsal.DEV_OWNER, channel, root["ts"], "amibot_approve", request_id(root))
        # Shown on the card and in the one progress reply, both edited in place.
        progress = wait(lambda: next((m for m in [fake.message(channel, root["ts"]), *fake.thread(channel, root["ts"])]
                                      if m and "of 2 available" in (m.get("text") or "") + blocks_text(m)), None), 30)
        if progress:
            t.say("amibot (edited in place)", "\n".join(((progress.get("text") or "") + "\n" + blocks_text(progress)).strip().splitlines()[:3]))
        final = stage.final_reply(root, timeout=90)
    finally:
        sandbox.set_copy_duration(None)
    t.expect("the progress message showed the copies' progress (\"n of 2 available, …\")", bool(progress))
    bullets = [line for line in (final or {}).get("text", "").splitlines() if line.startswith("• `")]
    if not t.expect("the final message names every target's AMI (new ones linked to the EC2 console)",
                    len(bullets) >= 3 and all("ami-" in b for b in bullets) and ".console.aws.amazon.com/ec2/home?region=" in (final or {}).get("text", "")):
        return
    t.say("amibot (thread)", final["text"])
    stage.closing.append("Distribution, final message:\n" + final["text"])
    west = sandbox.session(rehearsal.DEV, "us-west-2").client("ec2")
    copies = [i for i in west.describe_images(Owners=["self"])["Images"] if any(tg["Key"] == "amibot:source-ami" for tg in i.get("Tags", []))]
    tags = {tg["Key"]: tg["Value"] for tg in copies[0].get("Tags", [])} if copies else {}
    t.expect("from dev's side in us-west-2: its own copy, tagged region=us-west-2 and app=payments", tags.get("region") == "us-west-2" and tags.get("app") == "payments")


def audit(stage: Stage) -> None:
    """Someone shares the AMI by hand with an account nobody configured; `/ami audit`
    flags it (and marks what amibot made), the drift check tells prod's owner once,
    and `/ami audit --drift` lists it."""
    t, fake, world, channel, sandbox = stage.t, stage.fake, stage.world, stage.channel, stage.sandbox
    image = world.encrypted_image
    t.note(f"— auditing {image}: shared with dev through amibot, and by hand in the console —")
    known = {m["ts"] for m in fake.messages(channel)}
    stage.ask(f"share {image} from prod to dev")
    root = wait(lambda: next((m for m in fake.messages(channel) if m["ts"] not in known and f"share {image}" in (m.get("text") or "")), None), 30)
    if root:
        t.say("@alice", "clicks [ Approve ]")
        stage.slack.click(rehearsal.OWNER, channel, root["ts"], "amibot_approve", request_id(root))
    shared = stage.final_reply(root, timeout=60) if root else None
    t.expect("the share through amibot is done", bool(shared))
    share_id = request_id(root) if root else "?"
    prod = sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2")
    prod.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": OUTSIDER}]})
    t.say("console", f"ModifyImageAttribute {image}: launch permission for {OUTSIDER} (outside amibot)")
    # An AMI's audit is for the owners of its account (issue 17): alice asks.
    before = len(fake.ephemerals(rehearsal.OWNER))
    stage.ask(f"audit {image} from prod", user=rehearsal.OWNER, who="alice")
    answer = wait(lambda: fake.ephemerals(rehearsal.OWNER)[before:] and fake.ephemerals(rehearsal.OWNER)[-1].get("text"), 30)
    t.say("amibot (only alice)", str(answer))
    if not t.expect("the audit flags the launch permission amibot did not make", bool(answer) and "not made by amibot" in next((x for x in str(answer).splitlines() if OUTSIDER in x), "")):
        return
    t.expect(f"the audit marks dev's launch permission and grant with {share_id}", f"amibot {share_id}" in next((x for x in str(answer).splitlines() if f"({rehearsal.DEV})" in x), "")
             and f"amibot {share_id}" in next((x for x in str(answer).splitlines() if "grant `" in x and rehearsal.DEV in x), ""))
    t.expect("the audit states its cost in AWS calls and the block-public-access state", "AWS calls" in str(answer) and "block public access" in str(answer))
    stage.closing.append("Audit:\n" + str(answer))
    stage.bot.clockwork.drift.check()  # the daily drift check, run now
    dm = wait(lambda: next((m for m in fake.messages(rehearsal.OWNER) if OUTSIDER in (m.get("text") or "")), None), 20)
    t.say("amibot (DM to alice)", (dm or {}).get("text", "(none)"))
    t.expect("the drift check told prod's owner, with the unshare that reconciles it", bool(dm) and f"/ami unshare {image} from prod:{rehearsal.REGION} to {OUTSIDER}" in dm.get("text", ""))
    stage.bot.clockwork.drift.check()
    t.expect("a second check tells nobody again", len([m for m in fake.messages(rehearsal.OWNER) if OUTSIDER in (m.get("text") or "")]) == 1)
    t.expect("what amibot granted (and later removed) raises no drift", all(OUTSIDER in r["detail"] for r in stage.bot.store.drift_findings()))
    result = stage.ask("audit --drift", user=rehearsal.OWNER, who="alice")
    t.expect("`/ami audit --drift` lists the finding", OUTSIDER in result.body)
