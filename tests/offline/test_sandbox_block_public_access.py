"""The sandbox's block public access (which moto lacks): per account and region,
unblocked until enabled, read back as AWS answers."""

from offline import rehearsal


def test_block_public_access_is_per_account_and_region(sandbox):
    prod = sandbox.session(rehearsal.PROD, rehearsal.REGION).client("ec2")
    assert prod.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert prod.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert prod.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    other = sandbox.session(rehearsal.PROD, rehearsal.OTHER_REGION).client("ec2")
    assert other.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    prod.enable_snapshot_block_public_access(State="block-all-sharing")
    assert prod.get_snapshot_block_public_access_state()["State"] == "block-all-sharing"
    sandbox.reset()
    assert prod.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
