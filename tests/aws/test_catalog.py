"""The AMI picker's catalog: one DescribeImages (Owners=self) per account and region
per minute, searched by name or id, and an answer in time even while AWS is slow."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from aws.catalog import ImageCatalog
from offline.clock import Clock


class RecordingEc2:
    """A recording fake of the EC2 client's DescribeImages paginator."""

    def __init__(self, images, gate: threading.Event | None = None):
        self.images, self.gate, self.calls = images, gate, []

    def get_paginator(self, name):
        assert name == "describe_images"
        return self

    def paginate(self, **kwargs):
        self.calls.append(kwargs)
        if self.gate is not None:
            self.gate.wait(5)
        yield {"Images": self.images}


class Sessions:
    def __init__(self, clients):
        self.clients = clients

    def client(self, service, account_id, region, tag="bot"):
        return self.clients[(account_id, region)]


IMAGES = [
    {"ImageId": "ami-00000000000000001", "Name": "web-2026.01", "State": "available", "CreationDate": "2026-01-01T00:00:00Z"},
    {"ImageId": "ami-00000000000000002", "Name": "web-2026.02", "State": "available", "CreationDate": "2026-02-01T00:00:00Z"},
    {"ImageId": "ami-00000000000000003", "Name": "Batch", "State": "pending", "CreationDate": "2026-03-01T00:00:00Z"},
    {"ImageId": "ami-00000000000000004", "Name": "old", "State": "deregistered", "CreationDate": "2025-01-01T00:00:00Z"},
]


def test_one_describe_images_per_account_and_region_per_minute():
    ec2, other = RecordingEc2(IMAGES), RecordingEc2([])
    clock = Clock(at=1000.0)
    catalog = ImageCatalog(Sessions({("111", "us-east-1"): ec2, ("111", "eu-west-1"): other}), clock=clock)
    try:
        found = catalog.search("111", "us-east-1", "")
        assert [i.image_id for i in found.images] == ["ami-00000000000000003", "ami-00000000000000002", "ami-00000000000000001"]
        assert ec2.calls == [{"Owners": ["self"]}]
        assert [i.image_id for i in catalog.search("111", "us-east-1", "WEB-2026.02").images] == ["ami-00000000000000002"]
        assert [i.image_id for i in catalog.search("111", "us-east-1", "0000003").images] == ["ami-00000000000000003"]
        assert catalog.search("111", "eu-west-1", "").images == []
        assert len(ec2.calls) == 1 and len(other.calls) == 1
        clock.advance(61)  # the minute is over: asked again (behind the stale answer)
        assert len(catalog.search("111", "us-east-1", "web").images) == 2
        for _ in range(200):
            if len(ec2.calls) == 2:
                break
            threading.Event().wait(0.01)
        assert len(ec2.calls) == 2
    finally:
        catalog.shutdown()


def test_a_slow_aws_does_not_hold_the_answer():
    gate = threading.Event()
    ec2 = RecordingEc2(IMAGES, gate)
    catalog = ImageCatalog(Sessions({("111", "us-east-1"): ec2}), wait_seconds=0.05)
    try:
        first = catalog.search("111", "us-east-1", "web")
        assert first.images == [] and first.loading  # answered, saying it is still loading
        gate.set()
        for _ in range(100):
            found = catalog.search("111", "us-east-1", "web")
            if found.images:
                break
        assert len(found.images) == 2 and not found.loading
        assert len(ec2.calls) == 1  # the keystrokes meanwhile did not ask AWS again
    finally:
        catalog.shutdown()


def test_a_stale_list_is_answered_at_once_and_refreshed_behind():
    gate = threading.Event()
    ec2 = RecordingEc2(IMAGES)
    clock = Clock(at=1000.0)
    # An hour's wait for a fresh list: a search that waited for AWS would not answer while
    # AWS is held below.
    catalog = ImageCatalog(Sessions({("111", "us-east-1"): ec2}), wait_seconds=3600, clock=clock)
    try:
        assert len(catalog.search("111", "us-east-1", "web").images) == 2
        ec2.gate, ec2.images = gate, IMAGES[:1]  # AWS is now held, and one image is gone
        clock.advance(61)
        import time as _time
        with ThreadPoolExecutor(1) as pool:
            # The stale list answers while AWS is still held (the gate opens only after).
            stale = pool.submit(catalog.search, "111", "us-east-1", "web").result(timeout=30)
        assert not gate.is_set() and len(stale.images) == 2
        gate.set()
        for _ in range(200):
            if len(catalog.search("111", "us-east-1", "web").images) == 1:
                break
            _time.sleep(0.01)
        assert len(catalog.search("111", "us-east-1", "web").images) == 1
        assert len(ec2.calls) == 2
    finally:
        catalog.shutdown()
