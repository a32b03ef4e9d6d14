"""The libcloud adapters against real peers: moto_server (EC2 through the test shim, S3),
Azurite, PowerDNS (the emulator fixtures of tests/conftest.py) and local disk. An emulator
that is not installed fails the test with the command that installs it; nothing is skipped."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from failover.testing.servers import MotoServer
from providers.libcloud.drivers import forget_adapters

logging.getLogger("werkzeug").setLevel(logging.ERROR)

EC2_SHIM = "failover.testing.ec2_shim:MotoEC2NodeDriver"


@pytest.fixture(autouse=True)
def fresh_adapters() -> Iterator[None]:
    """Adapters are shared per profile within a process; each test starts without any."""
    forget_adapters()
    yield
    forget_adapters()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps names of one test apart from another's on a shared emulator."""
    return uuid.uuid4().hex[:8]
