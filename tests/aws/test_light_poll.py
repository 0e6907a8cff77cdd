"""The light look between full ones (issue 20, item 4): DescribeImages with the
``state`` filter asks only for images no longer pending. The sandbox honours the
filter as AWS does (EC2 API Reference, DescribeImages, Filter.N ``state``), and a
deregistered image AWS answers empty for is only told apart by the unfiltered look."""

from __future__ import annotations

from aws.actions.images import NOT_PENDING, poll_images
from offline import rehearsal

PROD, SRC = rehearsal.PROD, rehearsal.REGION


def test_the_sandbox_leaves_pending_images_out_of_a_state_filtered_answer(sandbox, sandbox_session):
    ec2 = sandbox.client("ec2", PROD, SRC)
    pending, done = sandbox.create_image(PROD, SRC), sandbox.create_image(PROD, SRC)
    sandbox.hold_pending(pending)
    answer = ec2.describe_images(ImageIds=[pending, done], Filters=[{"Name": "state", "Values": list(NOT_PENDING)}])["Images"]
    assert [i["ImageId"] for i in answer] == [done]
    assert {i["ImageId"] for i in ec2.describe_images(ImageIds=[pending, done])["Images"]} == {pending, done}
    sandbox.hold_pending(False)


def test_a_light_look_reports_the_left_out_images_pending_at_their_last_progress(sandbox, sandbox_session):
    ec2 = sandbox.client("ec2", PROD, SRC)
    pending, done = sandbox.create_image(PROD, SRC), sandbox.create_image(PROD, SRC)
    sandbox.hold_pending(pending)
    statuses = poll_images(ec2, [pending, done], finished_only={pending: 40, done: 40})
    assert (statuses[pending].state, statuses[pending].progress) == ("pending", 40)
    assert (statuses[done].state, statuses[done].progress) == ("available", 100)
    sandbox.hold_pending(False)


def test_a_deregistered_image_looks_pending_to_the_light_look_and_missing_to_the_full_one(sandbox, sandbox_session):
    ec2 = sandbox.client("ec2", PROD, SRC)
    image = sandbox.create_image(PROD, SRC)
    ec2.deregister_image(ImageId=image)
    assert poll_images(ec2, [image], finished_only={image: 40})[image].state == "pending"  # why the full look stays
    assert poll_images(ec2, [image])[image].state == "missing"


def test_a_light_look_by_tag_names_no_ids_and_finds_only_the_tagged_finished_images(sandbox, sandbox_session):
    """The scheduler's light look (``marked``): the account's own images tagged
    ``amibot:disposable = true`` and no longer pending. An untagged finished image is
    not in that answer (it stays pending at its last progress until the full look):
    the tag, set at creation on every copy and migration image, is what is asked."""
    from aws.actions.disposable import DISPOSABLE, DISPOSABLE_TAG

    ec2 = sandbox.client("ec2", PROD, SRC)
    pending, done = sandbox.create_image(PROD, SRC, tags=DISPOSABLE), sandbox.create_image(PROD, SRC, tags=DISPOSABLE)
    untagged = sandbox.create_image(PROD, SRC)
    sandbox.hold_pending(pending)
    asked = [pending, done, untagged]
    statuses = poll_images(ec2, asked, finished_only=dict.fromkeys(asked, 40), marked=(DISPOSABLE_TAG, "true"))
    assert (statuses[pending].state, statuses[pending].progress) == ("pending", 40)
    assert (statuses[done].state, statuses[done].progress) == ("available", 100)
    assert (statuses[untagged].state, statuses[untagged].progress) == ("pending", 40)
    sandbox.hold_pending(False)
