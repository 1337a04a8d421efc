"""The S3 store against a real S3-compatible server (moto's, started on a free port): the
same flow stores the renditions in the bucket, the app serves them back, removal deletes
them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest

from dropline.adapters.storage import S3Store
from dropline.media import flows
from dropline.media.models import MediaOwner
from dropline.media.rules import Limits
from tests.builders import make_location, make_product
from tests.media.builders import image_bytes

LIMITS = Limits(max_bytes=2_000_000, max_side=4000, min_side=200)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # ready when it answers (polled, not slept on)
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def store(s3_endpoint, monkeypatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"media-{_free_port()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    return S3Store.connect(bucket=bucket, prefix="shop/", endpoint_url=s3_endpoint)


def test_the_bucket_holds_the_renditions_with_immutable_caching_and_loses_them_on_removal(
        db, clock, store):
    make_location(db)
    make_product(db, clock, name="Ember Oud")

    asset = flows.add_image(db, store, clock=clock, limits=LIMITS,
                            owner_kind=MediaOwner.product, owner_ref="ember-oud",
                            data=image_bytes(700, 500), alt="Ember Oud")

    listed = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(
        "shop/" + r["name"] for r in asset.renditions)
    jpeg = next(r["name"] for r in asset.renditions if r["format"] == "jpeg")
    head = store.client.head_object(Bucket=store.bucket, Key="shop/" + jpeg)
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert store.get(jpeg)[:3] == b"\xff\xd8\xff"

    flows.remove_image(db, store, clock=clock, media_id=asset.id)

    assert store.client.list_objects_v2(Bucket=store.bucket).get("Contents", []) == []
    assert store.get(jpeg) is None


def test_a_bad_file_puts_nothing_in_the_bucket(db, clock, store):
    make_location(db)
    make_product(db, clock, name="Ember Oud")

    with pytest.raises(Exception, match="not an image"):
        flows.add_image(db, store, clock=clock, limits=LIMITS, owner_kind=MediaOwner.product,
                        owner_ref="ember-oud", data=b"plain text")

    assert store.client.list_objects_v2(Bucket=store.bucket).get("Contents", []) == []
