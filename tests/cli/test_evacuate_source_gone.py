"""``failover evacuate`` when the account goes before the deadline: the source is a ``moto_server``
of this module's own (``moto_server`` of tests/conftest.py), stopped mid-evacuation; the target
Azurite. The passes end, ``--then`` runs at once, and a later start works from the stored snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
from clikit import FAILOVER

from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer

TAGS = [{"Key": "service", "Value": "social-app"}]


def test_the_source_going_away_ends_the_passes_and_runs_then(
    moto_server: MotoServer, azurite: Azurite, aws_env: None, write_config, failover, tmp_path: Path, monkeypatch,
) -> None:
    monkeypatch.setenv("AZURITE_KEY", azurite.driver_options["secret"])
    bucket = f"gone-{os.getpid()}"
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": TAGS})
    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"object-{index}", Body=b"x" * 100)
    config = write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}},
                "endpoint_url": moto_server.url},
        targets={"fallback": {"storage": {"driver": "azure_blobs", "container_prefix": "gone-",
                                          "options": {**azurite.driver_options, "secret": "${env:AZURITE_KEY}"}}}},
    )
    started = time.monotonic()
    process = subprocess.Popen([*FAILOVER, "evacuate", "-t", "fallback", "--deadline", "10m", "--then", "smoke",
                                "--json", "-c", str(config)], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    events = []
    for line in process.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "pass_done":
            moto_server.stop()  # the account is terminated
    process.wait(timeout=120)
    stderr = process.stderr.read()
    process.stderr.close()

    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 300  # long before the deadline: the source going away ended it
    names = [event["event"] for event in events]
    assert "source_gone" in names and names.index("source_gone") < names.index("then_started")
    summary = events[-1]
    assert summary["stopped_by"] == "source_gone" and summary["complete"] is True
    assert summary["buckets"][0]["copied"] == 5
    assert summary["then"]["playbook"] == "smoke" and summary["then"]["status"] == "succeeded"

    # Started again with the account gone: the stored snapshot, nothing missing that was recorded.
    again = failover("evacuate", "-t", "fallback", "--deadline", "10m", "--json", "-c", str(config))
    assert again.code == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    snapshot = next(event for event in events if event["event"] == "snapshot")
    assert snapshot["fresh"] is False and snapshot["reason"]
    summary = events[-1]
    assert summary["stopped_by"] == "source_gone" and summary["passes"] == 0
    assert summary["complete"] is True and summary["missing"] == []
    assert "the source does not answer" in again.stderr
