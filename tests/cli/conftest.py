"""CLI tests run the real ``failover`` executable against a ``moto_server`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from failover.testing.emulators import Azurite, EmulatorMissing
from failover.testing.servers import MotoServer

FAILOVER = [sys.executable, "-m", "failover.cli.main"]
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # for replicatekit


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    try:
        emulator = Azurite().start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def account(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A fresh, empty AWS account behind ``AWS_ENDPOINT_URL`` for each test."""
    moto_server.reset()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.url,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FAILOVER_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    yield moto_server


@pytest.fixture
def clients(account: MotoServer):
    session = boto3.session.Session()
    return lambda service, region="us-east-1": session.client(service, region_name=region, endpoint_url=account.url)


@pytest.fixture
def write_config(tmp_path: Path):
    def write(**overrides: object) -> Path:
        config = {
            "service": "social-app",
            "state": ".failover",
            "source": {"provider": "aws", "regions": ["us-east-1", "eu-west-1"], "select": {"tags": {"service": "social-app"}}},
        }
        config.update(overrides)
        path = tmp_path / "failover.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


@pytest.fixture
def failover(tmp_path: Path):
    """Run the real CLI in a subprocess, in ``tmp_path``."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120, umask: int = -1) -> Result:
        proc = subprocess.run(
            [*FAILOVER, *args], cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})}, umask=umask,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
