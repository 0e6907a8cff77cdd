"""The sandbox answers Allowed AMIs as AWS does (offline/sandbox/ec2_allowed_images.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

PROD, DEV = "111111111111", "222222222222"
REGION = "us-east-1"


def test_allowed_amis_hide_a_shared_ami_whose_owner_matches_no_provider(sandbox):
    image = sandbox.create_image(PROD, REGION)
    sandbox.client("ec2", PROD, REGION).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": DEV}]})
    dev = sandbox.client("ec2", DEV, REGION)
    assert dev.get_allowed_images_settings()["State"] == "disabled"
    assert dev.describe_images(ImageIds=[image])["Images"]
    sandbox.set_allowed_images(DEV, REGION, "enabled", ["amazon"])
    assert dev.get_allowed_images_settings()["ImageCriteria"] == [{"ImageProviders": ["amazon"]}]
    assert not dev.describe_images(ImageIds=[image])["Images"]  # invisible, even asked for by id
    assert sandbox.client("ec2", PROD, REGION).describe_images(ImageIds=[image])["Images"]  # own AMIs never restricted
    dev.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    assert dev.describe_images(ImageIds=[image])["Images"][0]["ImageAllowed"] is False
    sandbox.set_allowed_images(DEV, REGION, "enabled", ["amazon", PROD])
    assert dev.describe_images(ImageIds=[image])["Images"]
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        dev.enable_allowed_images_settings(AllowedImagesSettingsState="on")
    dev.disable_allowed_images_settings()
    assert dev.get_allowed_images_settings()["State"] == "disabled"
