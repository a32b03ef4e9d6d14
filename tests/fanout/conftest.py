"""Fixtures of the fan-out tests: the secrets in the environment, and the source's buckets on the
module's ``moto_server`` (tests/conftest.py), with configs copying them into the module's Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fanoutkit import BUCKETS, SECRET_ENV, body_of, write_config

from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer


@pytest.fixture(scope="module")
def secrets_env() -> Iterator[None]:
    """The secrets in this process's environment, which worker processes started from it inherit."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRET_ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def source(moto_server: MotoServer, secrets_env: None) -> MotoServer:
    """Two buckets with objects of different sizes, one with metadata, and one key no target may hold."""
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1")
    for bucket, count in BUCKETS.items():
        s3.create_bucket(Bucket=bucket)
        for n in range(count):
            s3.put_object(Bucket=bucket, Key=f"dir/{n:03d}.bin", Body=body_of(bucket, n))
    s3.put_object(Bucket="media", Key="tagged.txt", Body=b"hello", ContentType="text/plain", Metadata={"owner": "ops"})
    s3.put_object(Bucket="media", Key="a/../escape", Body=b"x")  # refused: a '..' segment
    return moto_server


@pytest.fixture
def config_for(tmp_path: Path, source: MotoServer, azurite: Azurite):
    return lambda prefix: write_config(tmp_path, source.url, azurite, prefix)
