"""``failover inventory`` of a libcloud source as a user sees it: a source that does not answer
exits 4 with one line naming it and stores nothing; an unset secret exits 2 naming the field."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from clikit import FAILOVER

from failover.testing.servers import free_port


def write_config(tmp_path: Path) -> Path:
    options = {"key": "testing", "secret": "${env:SRC_SECRET}", "host": "127.0.0.1", "port": free_port(),
               "secure": False}
    config = {
        "service": "social-app",
        "source": {"provider": "libcloud",
                   "compute": {"driver": "failover.testing.ec2_shim:MotoEC2NodeDriver", "options": options},
                   "select": {"tags": {"service": "social-app"}}},
    }
    path = tmp_path / "failover.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def inventory(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "SRC_SECRET"} | env
    return subprocess.run([*FAILOVER, "inventory", "--config", str(write_config(tmp_path))], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=120, check=False)


def test_a_source_that_does_not_answer_exits_4_and_stores_nothing(tmp_path: Path) -> None:
    done = inventory(tmp_path, SRC_SECRET="a-long-source-secret")
    assert done.returncode == 4, done.stderr
    assert "compute source (failover.testing.ec2_shim:MotoEC2NodeDriver)" in done.stderr
    assert "Traceback" not in done.stderr and "a-long-source-secret" not in done.stderr
    snapshots = subprocess.run([*FAILOVER, "snapshots", "--json", "--config", str(tmp_path / "failover.yaml")],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert snapshots.returncode == 0 and json.loads(snapshots.stdout)["snapshots"] == []


def test_an_unset_secret_exits_2_naming_the_field(tmp_path: Path) -> None:
    done = inventory(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "source.compute.options.secret" in done.stderr and "SRC_SECRET is not set" in done.stderr


def test_validate_resolves_the_source_drivers_without_the_network(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text().replace("failover.testing.ec2_shim:MotoEC2NodeDriver", "digitalocen")
    path.write_text(text + "targets:\n  fallback:\n    compute: {driver: digitalocean, options: {key: x}}\n")
    done = subprocess.run([*FAILOVER, "validate", "standard", "--config", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "source.compute.driver: 'digitalocen' is neither a libcloud provider name" in done.stderr
