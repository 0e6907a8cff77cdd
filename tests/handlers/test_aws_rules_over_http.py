"""AMIs AWS will not share or copy, refused before anyone is asked (over the real HTTP
endpoint, against the sandbox, which refuses the same things: see
tests/offline/test_sandbox_rules.py), a deprecated AMI shown with a WARNING line, and
a copy of an AMI another account shared into the source account.

Each refusal names the fix and the AWS documentation page (docs/aws-rules.md).
"""

from __future__ import annotations

from offline import rehearsal
from bot.requests import PENDING_APPROVAL

PROD, DEV = rehearsal.PROD, rehearsal.DEV
SRC, DST = rehearsal.REGION, rehearsal.OTHER_REGION
OUTSIDER = "333333333333"  # an account amibot is not configured for


def refused(harness, text: str) -> str:
    user = rehearsal.REQUESTER
    before = len(harness.fake.ephemerals(user))
    assert harness.slash(text).status == 200
    answer = harness.ephemeral_for(user, after=before)
    harness.settle()
    assert harness.bot.store.find() == [] and harness.fake.messages(harness.channel) == []
    return answer


def planned(harness, text: str) -> str:
    assert harness.slash(text).status == 200
    root = harness.root_for(" ".join(text.split()[:2]))
    harness.settle()
    assert harness.bot.store.get(1).state == PENDING_APPROVAL
    # The card is compact; the plan (checks, warnings, every call) is in its modal.
    return root["text"] + "\n" + "\n".join(str(b) for b in root.get("blocks", [])) + "\n" + harness.exact_changes(root)


def test_a_billing_coded_ami_is_not_copied_to_another_account(harness):
    image = harness.world.plain_image
    harness.world.sandbox.mark_image(image, usage_operation="RunInstances:0010", platform_details="Red Hat Enterprise Linux")
    answer = refused(harness, f"copy {image} from prod to dev")
    assert "billing product codes" in answer and "Red Hat Enterprise Linux" in answer
    assert "Images with EC2 BillingProduct codes cannot be copied to another AWS account" in answer
    assert "CopyingAMIs.html" in answer and "/ami share" in answer
    # Within the account it is allowed (the billing code stays with the account).
    harness.bot.store.find()  # nothing stored by the refusal
    planned(harness, f"copy {image} from prod to prod:{DST}")


def test_a_marketplace_ami_is_not_copied_to_another_account(harness):
    image = harness.world.plain_image
    harness.world.sandbox.mark_image(image, product_codes=["abcdef0123456789abcdef012"])
    answer = refused(harness, f"copy {image} from prod to dev")
    assert "abcdef0123456789abcdef012 (marketplace)" in answer


def test_an_instance_store_ami_is_not_copied(harness):
    image = harness.world.plain_image
    harness.world.sandbox.mark_image(image, instance_store=True)
    answer = refused(harness, f"copy {image} from prod to prod:{DST}")
    assert "instance store-backed" in answer and "EBS-backed image" in answer and "CopyingAMIs.html" in answer


def test_an_ami_with_archived_snapshots_is_neither_shared_nor_copied(harness):
    image = harness.world.encrypted_image
    harness.world.sandbox.mark_image(image, archived=True)
    for text in (f"share {image} from prod to dev", f"copy {image} from prod to dev"):
        answer = refused(harness, text)
        assert "archive tier" in answer and "aws ec2 restore-snapshot-tier --snapshot-id snap-" in answer
        assert "snapshot-archive.html" in answer


def test_an_ami_at_the_sharing_maximum_is_not_shared_further(harness):
    image = harness.world.plain_image
    harness.world.sandbox.mark_image(image, shared_with=1000)
    answer = refused(harness, f"share {image} from prod to dev")
    assert "already shared with 1000" in answer and "maximum of 1000" in answer and "sharingamis-explicit.html" in answer


def test_a_deprecated_ami_is_planned_with_a_warning(harness):
    image = harness.world.plain_image
    harness.world.sandbox.mark_image(image, deprecated_at="2025-01-31T00:00:00.000Z")
    text = planned(harness, f"share {image} from prod to dev")
    assert "WARNING:" in text and "deprecated on 2025-01-31" in text and "ami-deprecate.html" in text


def test_an_ami_shared_into_the_source_account_is_copied_by_it(harness):
    sandbox = harness.world.sandbox
    # An outside account owns the AMI and shared it with prod, snapshots included.
    foreign = sandbox.create_image(OUTSIDER, SRC, name="vendor-base-2026.10")
    outsider = sandbox.client("ec2", OUTSIDER, SRC)
    outsider.modify_image_attribute(ImageId=foreign, LaunchPermission={"Add": [{"UserId": PROD}]})
    snap = outsider.describe_images(ImageIds=[foreign])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    outsider.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[PROD])
    # Handing it on to a third account is the owner's call: refused, with the way round.
    answer = refused(harness, f"copy {foreign} from prod to dev")
    assert f"owned by account {OUTSIDER}" in answer and f"copy {foreign} from prod:{SRC} to prod" in answer
    text = planned(harness, f"copy {foreign} from prod to prod:{DST}")
    assert f"owned by account {OUTSIDER}" in text and "which makes the copy" in text
    request = harness.bot.store.get(1)
    assert request.approver_accounts == ["prod"]
    harness.click(rehearsal.OWNER, harness.root_for(f"copy {foreign}"))
    final = harness.final_reply(harness.root_for(f"copy {foreign}"))
    harness.settle()
    assert "succeeded" in harness.bot.store.get(1).state or "The copy is" in final["text"], final["text"]
    copies = sandbox.client("ec2", PROD, DST).describe_images(Owners=["self"])["Images"]
    assert [i["OwnerId"] for i in copies] == [PROD]


def test_an_ami_shared_into_the_source_account_without_snapshot_permission_is_refused(harness):
    sandbox = harness.world.sandbox
    foreign = sandbox.create_image(OUTSIDER, SRC, name="vendor-base-2026.10")
    sandbox.client("ec2", OUTSIDER, SRC).modify_image_attribute(ImageId=foreign, LaunchPermission={"Add": [{"UserId": PROD}]})
    answer = refused(harness, f"copy {foreign} from prod to prod:{DST}")
    assert "createVolumePermission" in answer and "allow-copy" in answer
