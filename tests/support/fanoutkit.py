"""What the fan-out tests share (tests/fanout/): the secrets in the environment, the seeded source
buckets, a config from moto S3 to Azurite, and the check that every object is there once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import yaml
from libcloud.storage.providers import Provider, get_driver

from failover.config import Config, load_config
from failover.testing.emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from failover.testing.servers import MotoServer

ROOT = Path(__file__).resolve().parents[2]
# Values no task may carry: the AWS secret key and Azurite's account key, read by workers from their environment.
AWS_SECRET = "aws-secret-FANOUT-7f3c9d0e1b"
SECRET_ENV = {
    "AWS_ACCESS_KEY_ID": "fanout-key-id",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "FANOUT_AZ_KEY": AZURITE_KEY,
}
BUCKETS = {"media": 30, "logs": 20}  # bucket -> objects


def body_of(bucket: str, n: int) -> bytes:
    return (f"{bucket}/{n}:".encode() * 200)[: 1000 + 37 * n]


def source_objects(server: MotoServer, bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for item in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys if ".." not in key}


def write_config(directory: Path, endpoint_url: str, azurite: Azurite, prefix: str) -> Config:
    options = {**azurite.driver_options, "secret": "${env:FANOUT_AZ_KEY}"}
    data = {
        "service": "social-app",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}, "endpoint_url": endpoint_url},
        "targets": {"fallback": {"storage": {"driver": "azure_blobs", "options": options, "container_prefix": prefix}}},
    }
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def stored_in_azurite(azurite: Azurite, container: str) -> dict[str, bytes]:
    """Every blob of ``container`` with its bytes, read back from Azurite by a driver of the test's own."""
    driver = get_driver(Provider.AZURE_BLOBS)(key=AZURITE_ACCOUNT, secret=AZURITE_KEY, host="127.0.0.1",
                                              port=azurite.port, secure=False)
    blobs = driver.list_container_objects(driver.get_container(container))
    names = [blob.name for blob in blobs]
    assert len(names) == len(set(names))
    return {blob.name: b"".join(driver.download_object_as_stream(blob)) for blob in blobs}


def assert_every_object_there_once(source: MotoServer, azurite: Azurite, prefix: str, result: Any) -> None:
    assert result.ok, [(bucket.bucket, bucket.failed) for bucket in result.buckets]
    for bucket in result.buckets:
        expected = source_objects(source, bucket.bucket)
        stored = stored_in_azurite(azurite, prefix + bucket.bucket)
        assert sorted(stored) == sorted(expected)
        assert {key: hashlib.md5(body).hexdigest() for key, body in stored.items()} == {
            key: hashlib.md5(body).hexdigest() for key, body in expected.items()}
        # one result per key copied, every one of them ok and verified
        assert sorted(bucket.results) == sorted(expected)
        assert bucket.copied == len(expected) and not bucket.failed
