"""Real object storage for the tests: moto's standalone S3 server on a free loopback port.

``s3_server`` (one per test session) serves the S3 protocol over HTTP; ``s3_storage`` gives a test its
own bucket and points django-storages at it, with short-lived signed URLs. ``s3_storage.env`` holds
the same configuration as environment variables, for a worker process (tests/integration/worker.py).
Import both fixtures into a test module (``from tests.s3 import s3_server, s3_storage``).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # moto accepts any key
SIGNED_URL_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of an S3 server on loopback."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class S3Storage:
    endpoint: str
    bucket: str
    client: Any

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_QUERYSTRING_EXPIRE": str(SIGNED_URL_SECONDS),
            "RENDER_SHARE_STEMS": "true",
        }

    def names(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture
def s3_storage(s3_server: str, settings: Any, isolated_media: Any) -> S3Storage:
    """This test's own bucket as the media storage (MEDIA_ROOT stays, and must stay, empty)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    bucket = f"backtrack-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": SIGNED_URL_SECONDS,
                "signature_version": "s3v4",
                "file_overwrite": True,
            },
        },
    }
    settings.RENDER_SHARE_STEMS = True
    return S3Storage(endpoint=s3_server, bucket=bucket, client=client)
