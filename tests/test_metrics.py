"""``--metrics FILE`` of ``check`` and ``replicate``: the real executable on an emulated world
(moto_server source, EC2 on moto, local-disk storage, PowerDNS, PostgreSQL), the files parsed back
with prometheus-client's own parser."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from clikit import snapshot_taken
from prometheus_client.parser import text_string_to_metric_families

from failover.metrics import SERIES
from failover.testing.plugin import started_world
from failover.testing.world import EmulatedWorld

BUCKET = "social-app-media"
LABELS = {"service": "social-app", "target": "fallback"}


def parse(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {labels other than service/target/command, sorted: value}."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            labels = dict(sample.labels)
            command = labels.pop("command")
            assert {key: labels.pop(key) for key in LABELS} == LABELS, sample
            found.setdefault(sample.name, {})[tuple(sorted(labels.items()))] = sample.value
            found.setdefault("_commands", {})[(("command", command),)] = 1
    return found


@pytest.fixture(scope="module")
def world() -> Iterator[EmulatedWorld]:
    with started_world(storage="local", postgres=True) as built:
        taken = built.failover("inventory")
        assert taken.code == 0, taken.stderr
        yield built


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)




@pytest.mark.slow
def test_replicate_and_check_write_the_documented_series(world: EmulatedWorld) -> None:
    out = world.workdir / "textfile"
    out.mkdir()
    replicate_file, check_file = out / "failover-replicate.prom", out / "failover-check.prom"

    with umask(0o027):
        replicated = world.failover("replicate", "--target", world.target, "--json", "--metrics", str(replicate_file))
    assert replicated.code == 0, replicated.stderr
    document = json.loads(replicated.stdout)
    assert stat.S_IMODE(replicate_file.stat().st_mode) == 0o640  # 0666 less the umask
    metrics = parse(replicate_file)
    assert metrics["_commands"] == {(("command", "replicate"),): 1}
    assert set(metrics) - {"_commands"} <= set(SERIES)
    assert metrics["failover_up"] == {(): 1.0} and metrics["failover_exit_code"] == {(): 0.0}
    assert metrics["failover_duration_seconds"][()] > 0
    copied = next(row for row in document["buckets"]["items"] if row["bucket"] == BUCKET)
    assert copied["copied"] > 0
    assert metrics["failover_replicate_objects_copied"][(("bucket", BUCKET),)] == copied["copied"]
    assert metrics["failover_replicate_bytes_copied"][(("bucket", BUCKET),)] == copied["copied_bytes"]
    assert metrics["failover_replicate_failed"][(("kind", "bucket"), ("name", BUCKET))] == 0
    ages = metrics["failover_replica_age_seconds"]
    assert 0 <= ages[(("kind", "bucket"), ("name", BUCKET))] < 600
    zones = [row["zone"] for row in document["zones"]["items"]]
    assert zones and all(0 <= ages[(("kind", "zone"), ("name", zone))] < 600 for zone in zones)
    dumps = {row["database"]: row for row in document["databases"]["items"]}
    assert dumps and all(0 <= metrics["failover_dump_age_seconds"][(("database", name),)] < 600 for name in dumps)
    assert all(metrics["failover_dump_bytes"][(("database", name),)] == row["bytes"] for name, row in dumps.items())
    assert metrics["failover_rpo_seconds"] == {(): 3600.0}
    assert 0 <= metrics["failover_snapshot_age_seconds"][()] < 600
    assert [p.name for p in out.iterdir()] == [replicate_file.name]  # no temporary file left behind

    again = world.failover("replicate", "--target", world.target, "--metrics", str(replicate_file))
    assert again.code == 0, again.stderr
    assert parse(replicate_file)["failover_replicate_objects_copied"][(("bucket", BUCKET),)] == 0

    checked = world.failover("check", "standard", "--target", world.target, "--json", "--metrics", str(check_file))
    report = json.loads(checked.stdout)
    assert checked.code == (0 if report["ready"] else 1), checked.stderr
    metrics = parse(check_file)
    assert metrics["_commands"] == {(("command", "check"),): 1}
    readiness = {dict(labels)["check"]: value for labels, value in metrics["failover_check_ready"].items()}
    assert readiness == {item["name"]: float(item["status"] != "fail") for item in report["checks"]}
    assert metrics["failover_ready"] == {(): float(report["ready"])}
    assert metrics["failover_exit_code"] == {(): float(checked.code)}
    assert readiness["snapshot-age"] == 1.0 and readiness["replicas"] == 1.0, report
    assert (("kind", "bucket"), ("name", BUCKET)) in metrics["failover_replica_age_seconds"]
    assert sorted(p.name for p in out.iterdir()) == sorted([check_file.name, replicate_file.name])


@pytest.mark.slow
def test_a_failing_check_is_0_and_the_verdict_not_ready(world: EmulatedWorld) -> None:
    check_file = world.workdir / "stale.prom"
    with snapshot_taken(world, "2020-01-15T10:30:00Z"):
        checked = world.failover("check", "standard", "--target", world.target, "--metrics", str(check_file))
    assert checked.code == 1, checked.stderr
    metrics = parse(check_file)
    assert metrics["failover_check_ready"][(("check", "snapshot-age"),)] == 0.0
    assert metrics["failover_ready"] == {(): 0.0}
    assert metrics["failover_exit_code"] == {(): 1.0}
    assert metrics["failover_snapshot_age_seconds"][()] > 5 * 365 * 86400


def test_a_metrics_file_in_a_missing_directory_is_an_input_error(world: EmulatedWorld) -> None:
    missing = world.workdir / "no-such-dir" / "m.prom"
    for command in (["check", "standard"], ["replicate"]):
        done = world.failover(*command, "--target", world.target, "--metrics", str(missing))
        assert done.code == 2, done.stderr
        assert "--metrics" in done.stderr and "no-such-dir" in done.stderr and "Traceback" not in done.stderr
    assert not missing.parent.exists()
