"""Shared fixtures: a mock AWS account in-process (moto) and an inventory runner."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import boto3
import pytest

logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can ever reach a real account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Callable[[str, str], object]]:
    """A mock AWS account (moto in-process); yields ``client(service, region)``."""
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session()
        clients: dict[tuple[str, str], object] = {}

        def client(service: str, region: str = "us-east-1") -> object:
            if (service, region) not in clients:
                clients[(service, region)] = session.client(service, region_name=region)
            return clients[(service, region)]

        yield client


@pytest.fixture
def take_inventory(aws: Callable[[str, str], object]):
    """Run the real AWS inventory against the mock account: ``take_inventory(tags, regions)``."""
    from providers.aws.inventory import AwsInventory
    from providers.aws.session import AwsSession

    def run(tags: dict[str, str] | None = None, regions: list[str] | None = None):
        inventory = AwsInventory(
            service="svc",
            regions=regions or ["us-east-1"],
            selector=tags or {"service": "svc"},
            session=AwsSession(max_backoff=0.05),
        )
        return inventory.inventory()

    return run
