"""``failover demo --from libcloud``: the same story from a source read only through libcloud
drivers (EC2-compatible compute, objects on disk, DNS in a zone file), offline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from clikit import FAILOVER


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "COLUMNS": "120"}
    return subprocess.run([*FAILOVER, "demo", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.slow
def test_the_story_from_a_libcloud_source(tmp_path: Path) -> None:
    done = demo(tmp_path, "--from", "libcloud", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    assert doc["source"]["provider"] == "libcloud" and doc["source"]["terminated"] is True
    assert doc["source"]["reachable_during_run"] is False
    # the service of us-east-1's compute API, its container and its zone; no database (none is read)
    assert doc["snapshot"]["counts"] == {"node": 3, "firewall": 1, "bucket": 1, "dns_zone": 1}
    assert {node["source_name"] for node in doc["nodes"]} == {"web-1", "web-2", "worker-1"}
    assert doc["objects"]["read_from"] == "replica" and doc["objects"]["verified"] == doc["objects"]["expected"] == 13
    assert doc["dns"]["rewritten_to_new_ips"] is True
    assert doc["drill"]["clean"] is True and doc["check"]["ready"] is True
    assert doc["replication"]["dump"] is None
    assert "libcloud" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "tmp").iterdir()) == [], "the demo left temporary files"


def test_an_unknown_source_is_bad_input(tmp_path: Path) -> None:
    done = demo(tmp_path, "--from", "gcp")
    assert done.returncode == 2
    assert "--from" in done.stderr and "'gcp' is not a demo source (known: aws, libcloud)" in done.stderr
