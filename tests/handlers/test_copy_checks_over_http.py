"""Every operation that copies runs the checks /ami copy runs (bot/verbs/copy_checks.py):
/ami distribute refuses before anyone is asked what a copy would refuse."""

from __future__ import annotations

from offline import rehearsal

PROD, DEV = rehearsal.PROD, rehearsal.DEV


def refusal(harness, text: str) -> str:
    before = len(harness.fake.ephemerals(rehearsal.REQUESTER))
    harness.slash(text)
    harness.settle()
    return harness.ephemeral_for(rehearsal.REQUESTER, after=before)


def test_a_distribution_runs_the_checks_a_copy_runs_before_anyone_is_asked(harness):
    """A name taken in one destination, share-with of a copy under aws/ebs, an AMI the
    source does not own: each refused with the fix; nothing asked, nothing stored."""
    image = harness.world.encrypted_image
    harness.world.sandbox.create_image(DEV, "eu-west-1", name="payments-api")
    taken = refusal(harness, f"distribute {image} from prod to dev:us-east-1,dev:eu-west-1 name payments-api")
    assert "already has an AMI named `payments-api` in eu-west-1" in taken
    aws_ebs = refusal(harness, f"distribute {image} from prod to dev:us-east-1 kms alias/aws/ebs share-with prod")
    assert "AWS-managed key" in aws_ebs and "kms <key>" in aws_ebs
    # An AMI another account shared into prod: only its owner can hand it on to dev.
    foreign = harness.world.sandbox.create_image(DEV, rehearsal.REGION, name="dev-owned")
    harness.world.sandbox.client("ec2", DEV, rehearsal.REGION).modify_image_attribute(ImageId=foreign, LaunchPermission={"Add": [{"UserId": PROD}]})
    shared_in = refusal(harness, f"distribute {foreign} from prod to dev:eu-west-1")
    assert "only its owner can share it" in shared_in
    assert harness.bot.store.find() == []
