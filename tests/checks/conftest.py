"""Readiness check tests: real target peers (the emulator fixtures of tests/conftest.py)
shared by a module's tests, a kit per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from checkkit import Kit, Peers

from failover.testing.emulators import Azurite, PowerDns
from failover.testing.servers import MotoServer
from providers.libcloud.drivers import forget_adapters


@pytest.fixture(scope="module")
def peers(moto_server: MotoServer, azurite: Azurite, powerdns: PowerDns) -> Iterator[Peers]:
    yield Peers(moto_server, azurite, powerdns)
    forget_adapters()


@pytest.fixture
def kit(tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Iterator[Kit]:
    built = Kit(tmp_path, peers, monkeypatch)
    yield built
    built.close()
