"""``failover evacuate`` end to end: the real executable, the source the plugin's ``moto_server``
account, the target Azurite (behind a ``LatencyProxy`` where the copy must be slower than the
deadline). What is checked: exit codes, the JSON-lines events and summary, the state store's
records and the objects Azurite holds afterwards."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clikit import FAILOVER

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.testing.emulators import Azurite
from failover.testing.proxy import LatencyProxy
from providers.libcloud.drivers import forget_adapters

SERVICE_TAGS = [{"Key": "service", "Value": "social-app"}]
_names = itertools.count(1)
LOGS = 160  # objects of the low-priority bucket


def seed(clients, bucket: str, count: int, size: int) -> dict[str, str]:
    """A tagged bucket of ``count`` objects; key -> MD5."""
    s3 = clients("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": SERVICE_TAGS})
    objects = {}
    for index in range(count):
        body = os.urandom(size)
        s3.put_object(Bucket=bucket, Key=f"part-{index:04d}.bin", Body=body)
        objects[f"part-{index:04d}.bin"] = hashlib.md5(body).hexdigest()
    return objects


def storage(azurite: Azurite, port: int | None = None) -> dict[str, Any]:
    options = {**azurite.driver_options, "secret": "${env:AZURITE_KEY}"}
    if port is not None:
        options["port"] = port
    return {"driver": "azure_blobs", "options": options, "container_prefix": "evac-"}


def stored(azurite: Azurite, bucket: str) -> dict[str, str]:
    """key -> MD5 of the content Azurite holds in the bucket's container."""
    forget_adapters()
    replica = storage_target(StorageSpec(**storage(azurite)))
    return {item.key: hashlib.md5(b"".join(replica.download_stream(bucket, item.key))).hexdigest()
            for item in replica.iter_objects(bucket)}


def events_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def records(state: Path, container: str) -> int:
    with sqlite3.connect(state / "state.db") as database:
        return database.execute("SELECT count(*) FROM replica_objects WHERE container = ?", (container,)).fetchone()[0]


@pytest.fixture
def azurite_key(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURITE_KEY", azurite.driver_options["secret"])


def test_a_deadline_too_close_then_a_kill_then_a_restart(
    clients, write_config, failover, azurite: Azurite, azurite_key: None, tmp_path: Path,
) -> None:
    run = f"{next(_names)}-{os.getpid()}"
    media, logs = f"media-{run}", f"logs-{run}"
    source = {media: seed(clients, media, 3, 1000), logs: seed(clients, logs, LOGS, 2000)}

    def slow_logs(seconds: float) -> LatencyProxy:
        """Azurite, each upload into the logs' container ``seconds`` late; the rest at once."""
        return LatencyProxy(f"http://127.0.0.1:{azurite.port}", latency_s=0,
                            latency_for=lambda method, path: seconds if method == "PUT" and logs in path else 0)

    def config(port: int | None) -> Path:
        return write_config(
            source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
            targets={"fallback": {"storage": storage(azurite, port)}}, evacuation={"priority": ["media-*"]},
        )

    # 1. Too close: each upload of the logs takes a second, two at a time: 80 s for the bucket. The
    # deadline leaves room for the snapshot on a loaded machine (it has taken over 45 s), not for the logs.
    with slow_logs(1.0) as proxy:
        slow = config(int(proxy.url.rsplit(":", 1)[1]))
        first = failover("evacuate", "-t", "fallback", "--deadline", "60s", "--workers", "2", "--json",
                         "-c", str(slow))
    assert first.code == 1, first.stderr
    events = events_of(first.stdout)
    summary = events[-1]
    assert summary["event"] == "summary" and summary["ok"] is False and summary["stopped_by"] == "deadline"
    planned = next(event for event in events if event["event"] == "planned")
    assert [row["bucket"] for row in planned["buckets"]] == [media, logs]
    rows = {row["bucket"]: row for row in summary["buckets"]}
    assert rows[media]["complete"] is True and rows[media]["copied"] == 3
    assert rows[logs]["complete"] is False and 0 < rows[logs]["copied"] < LOGS
    assert summary["missing"] == [{"bucket": logs, "objects": LOGS - rows[logs]["copied"],
                                   "bytes": 2000 * (LOGS - rows[logs]["copied"])}]
    assert any(event["event"] == "late" and logs in [item["bucket"] for item in event["short"]] for event in events)
    assert f"missing at the deadline: {logs}" in first.stderr
    # Nothing half-written: what the target holds is the source's, byte for byte, and recorded.
    assert stored(azurite, media) == source[media]
    held = stored(azurite, logs)
    assert len(held) == rows[logs]["copied"] == records(tmp_path / ".failover", f"evac-{logs}")
    assert all(source[logs][key] == md5 for key, md5 in held.items())

    # 2. Killed (SIGKILL) while copying, some copies done but not yet recorded.
    with slow_logs(0.3) as proxy:
        slow = config(int(proxy.url.rsplit(":", 1)[1]))
        process = subprocess.Popen([*FAILOVER, "evacuate", "-t", "fallback", "--deadline", "120s", "--workers", "4",
                                    "--json", "-c", str(slow)], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        try:
            for line in process.stdout:
                event = json.loads(line)
                if event["event"] == "progress" and event["parts"][1]["objects_done"] >= 8:
                    break
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            process.stdout.close()
    recorded_before = records(tmp_path / ".failover", f"evac-{logs}")
    assert recorded_before >= rows[logs]["copied"]

    # 3. Started again: it continues where it was, copies nothing twice, loses nothing, then runs --then.
    fast = config(None)
    last = failover("evacuate", "-t", "fallback", "--deadline", "45s", "--json", "--then", "smoke", "-c", str(fast))
    assert last.code == 0, last.stderr
    events = events_of(last.stdout)
    summary = events[-1]
    assert any(event["event"] == "lock_taken_over" for event in events)  # the killed one's
    again = next(event for event in events if event["event"] == "planned")["buckets"][1]
    assert again["bucket"] == logs and again["unchanged"] == recorded_before
    assert again["adopted"] + again["objects_left"] == LOGS - recorded_before  # done unrecorded: found, not copied
    rows = {row["bucket"]: row for row in summary["buckets"]}
    assert rows[logs]["copied"] == again["objects_left"] and rows[media]["copied"] == 0
    assert summary["complete"] is True and summary["missing"] == [] and summary["passes"] >= 2
    passes = [event for event in events if event["event"] == "pass_done"]
    assert passes[-1]["copied"] == 0  # a later pass: nothing new on the source, nothing copied
    assert summary["then"]["playbook"] == "smoke" and summary["then"]["status"] == "succeeded"
    assert stored(azurite, media) == source[media] and stored(azurite, logs) == source[logs]
    assert records(tmp_path / ".failover", f"evac-{logs}") == LOGS


@pytest.mark.parametrize(("args", "message"), [
    (["--deadline", "yesterday"], "--deadline: 'yesterday': neither"),
    (["--deadline", "2020-01-01T00:00:00Z"], "has passed already"),
    (["--deadline", "2030-01-01T00:00:00"], "needs its offset"),
    (["--deadline", "1h", "--scheduler", "not an address"], "--scheduler"),
    (["--deadline", "1h", "--then", "no-such-playbook"], "no-such-playbook"),
])
def test_bad_input_exits_2_and_nothing_is_done(write_config, failover, tmp_path: Path, args: list[str],
                                                message: str) -> None:
    path = write_config(targets={"fallback": {"storage": {"driver": "local", "options": {"key": str(tmp_path)}}}})

    result = failover("evacuate", "-t", "fallback", "-c", str(path), *args)

    assert result.code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".failover").exists()


def test_the_account_going_away_ends_the_passes_and_runs_then(
    account, clients, write_config, azurite: Azurite, azurite_key: None, tmp_path: Path,
) -> None:
    """The account is terminated mid-evacuation (moto refuses every key from then on, as AWS does
    a closed account's): the passes end, ``--then`` runs at once; started again, it works from
    the stored snapshot."""
    bucket = f"gone-{next(_names)}-{os.getpid()}"
    seed(clients, bucket, 5, 100)
    config = write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {"storage": storage(azurite)}},
    )
    evacuate = [*FAILOVER, "evacuate", "-t", "fallback", "--deadline", "10m", "--json", "-c", str(config)]
    process = subprocess.Popen([*evacuate, "--then", "smoke"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        events = []
        for line in process.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "pass_done" and events[-1]["pass"] == 1:
                account.enforce_auth(True)  # the account is terminated
        process.wait(timeout=120)
        stderr = process.stderr.read()

        assert process.returncode == 0, stderr
        names = [event["event"] for event in events]
        assert "source_gone" in names and names.index("source_gone") < names.index("then_started")
        summary = events[-1]
        assert summary["stopped_by"] == "source_gone" and summary["complete"] is True
        assert summary["buckets"][0]["copied"] == 5
        assert summary["then"]["playbook"] == "smoke" and summary["then"]["status"] == "succeeded"

        # Started again with the account gone: the stored snapshot; nothing recorded is missing.
        again = subprocess.run(evacuate, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        account.enforce_auth(False)
        process.stdout.close()
        process.stderr.close()
    assert again.returncode == 0, again.stderr
    events = events_of(again.stdout)
    snapshot = next(event for event in events if event["event"] == "snapshot")
    assert snapshot["fresh"] is False and snapshot["reason"]
    summary = events[-1]
    assert summary["stopped_by"] == "source_gone" and summary["passes"] == 0
    assert summary["complete"] is True and summary["missing"] == []
    assert "the source does not answer" in again.stderr
