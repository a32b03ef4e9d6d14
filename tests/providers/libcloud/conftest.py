"""The libcloud adapters against real peers: moto_server (EC2 through the test shim, S3),
Azurite, PowerDNS and local disk. An emulator that is not installed fails the test with
the command that installs it; nothing is skipped."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from failover.testing.emulators import Azurite, EmulatorMissing, EmulatorProcess, PowerDns
from failover.testing.servers import MotoServer
from providers.libcloud.drivers import forget_adapters

logging.getLogger("werkzeug").setLevel(logging.ERROR)

EC2_SHIM = "failover.testing.ec2_shim:MotoEC2NodeDriver"


def started(emulator: EmulatorProcess | MotoServer):
    try:
        return emulator.start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def fresh_adapters() -> Iterator[None]:
    """Adapters are shared per profile within a process; each test starts without any."""
    forget_adapters()
    yield
    forget_adapters()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = started(MotoServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    emulator = started(Azurite())
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def powerdns() -> Iterator[PowerDns]:
    emulator = started(PowerDns())
    yield emulator
    emulator.stop()


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps names of one test apart from another's on a shared emulator."""
    return uuid.uuid4().hex[:8]
