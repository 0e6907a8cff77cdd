"""ARN partitions: ``aws``, ``aws-cn`` (China), ``aws-us-gov`` (GovCloud), ...

Every ARN amibot builds takes its partition from the region it is for, never a
hard-coded ``arn:aws:`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
"""

from __future__ import annotations

import functools

import boto3


@functools.lru_cache(maxsize=None)
def partition_for(region: str) -> str:
    """The ARN partition of a region, from botocore's endpoint data
    (``boto3.Session().get_partition_for_region``)."""
    return boto3.session.Session().get_partition_for_region(region)
