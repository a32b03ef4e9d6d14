"""CLI tests run the real ``failover`` executable against a ``moto_server`` process (the
plugin's ``moto_account``; the other emulators are the fixtures of tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from clikit import FAILOVER, Result

from failover.testing.plugin import MotoAccount
from failover.testing.servers import MotoServer


@pytest.fixture
def account(moto_account: MotoAccount, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A fresh, empty AWS account behind ``AWS_ENDPOINT_URL`` for each test."""
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    return moto_account.server


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
