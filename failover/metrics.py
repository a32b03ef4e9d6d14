"""``--metrics FILE``: what ``check`` and ``replicate`` found, in the Prometheus text format,
for node_exporter's textfile collector (the monitoring that already pages people).

Every series carries ``service``, ``target`` and ``command`` (``check`` or ``replicate``),
so the two commands' files can sit in one collector directory without clashing. Besides
what the command measured (each check's verdict; objects and bytes copied), both write
the ages that matter for alerts as the state store holds them at that moment: the
snapshot's, each bucket replica's and zone mirror's, each database dump's, the last
drill's, with the configured ``rpo`` and ``rto`` to compare them with.

The file is replaced atomically (a temporary file in the same directory, flushed, then
``os.replace``), so the collector never reads half a file; it gets the permissions the
umask leaves of 0666, as any file the user writes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from failover.checks.base import FAIL, parse_time
from failover.config import Config
from failover.errors import InputError, Problem
from failover.state import StateStore

LABELS = ("service", "target", "command")

# name -> (help, extra labels). The README documents exactly these.
SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "failover_up": ("1: the command ran to its verdict; the other series of this file are from that run", ()),
    "failover_exit_code": ("The command's exit code (0 ok; 1 not ready or a part failed)", ()),
    "failover_duration_seconds": ("Wall-clock time of the command", ()),
    "failover_last_run_timestamp_seconds": ("When the command finished (Unix time)", ()),
    "failover_ready": ("check: 1 when no check failed (the service could fail over now), else 0", ()),
    "failover_check_ready": ("check: 1 when the check passed or warned, 0 when it failed", ("check",)),
    "failover_check_warning": ("check: 1 when the check passed with a warning", ("check",)),
    "failover_check_duration_seconds": ("check: time the check took", ("check",)),
    "failover_snapshot_age_seconds": ("Age of the latest snapshot", ()),
    "failover_replica_age_seconds": ("Age of a replica: since the source was listed (bucket) or read (zone) "
                                     "for its last completed pass", ("kind", "name")),
    "failover_dump_age_seconds": ("Age of the newest dump of a database on the target", ("database",)),
    "failover_drill_age_seconds": ("Age of the last finished drill", ()),
    "failover_drill_rto_seconds": ("Recovery time the last finished drill measured", ()),
    "failover_drill_succeeded": ("1 when the last finished drill succeeded and left the target clean", ()),
    "failover_rpo_seconds": ("readiness.rpo of the config", ()),
    "failover_rto_seconds": ("readiness.rto of the config", ()),
    "failover_replicate_objects_copied": ("replicate: objects copied into a bucket's replica by this run",
                                          ("bucket",)),
    "failover_replicate_bytes_copied": ("replicate: bytes copied into a bucket's replica by this run", ("bucket",)),
    "failover_replicate_failed": ("replicate: 1 when a bucket, zone or database of this run failed",
                                  ("kind", "name")),
    "failover_dump_bytes": ("replicate: size of the dump of a database taken by this run", ("database",)),
}


def check_path(path: Path | None) -> None:
    """An input error (exit 2) for a ``--metrics`` file that cannot be written where it is asked."""
    if path is None:
        return
    if path.is_dir():
        raise InputError([Problem(file="arguments", field="--metrics", message=f"{path} is a directory")])
    if not path.parent.is_dir():
        raise InputError([Problem(file="arguments", field="--metrics",
                                  message=f"directory {path.parent} does not exist")])


class Metrics:
    """One file's series, built with prometheus-client's gauges in a registry of their own."""

    def __init__(self, config: Config, target: str, command: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = {"service": config.service, "target": target, "command": command}
        self._gauges = {name: Gauge(name, help_text, [*LABELS, *extra], registry=self.registry)
                        for name, (help_text, extra) in SERIES.items()}

    def set(self, series: str, value: float | int | bool, /, **labels: str) -> None:
        self._gauges[series].labels(**self.base, **labels).set(float(value))

    def outcome(self, exit_code: int, duration_s: float) -> None:
        self.set("failover_up", 1)
        self.set("failover_exit_code", exit_code)
        self.set("failover_duration_seconds", duration_s)
        self.set("failover_last_run_timestamp_seconds", time.time())

    def state(self, config: Config, store: StateStore, target: str, now: datetime | None = None) -> None:
        """The ages the state store holds now, with the objectives to compare them with."""
        now = now or datetime.now(UTC)

        def age(when: str | None) -> float | None:
            return None if when is None else max(0.0, (now - parse_time(when)).total_seconds())

        service = config.service
        self.set("failover_rpo_seconds", config.readiness.rpo)
        self.set("failover_rto_seconds", config.readiness.rto)
        snapshots = store.snapshots(service)
        if snapshots:
            self.set("failover_snapshot_age_seconds", age(snapshots[-1].taken_at))
        for bucket, record in _newest(store.replications(service, target), "bucket").items():
            self.set("failover_replica_age_seconds", age(record.listed_at), kind="bucket", name=bucket)
        for zone, record in _newest(store.zone_mirrors(service, target), "zone").items():
            self.set("failover_replica_age_seconds", age(record.read_at), kind="zone", name=zone)
        for database, record in _newest(reversed(store.dumps(service, target)), "database").items():
            self.set("failover_dump_age_seconds", age(record.started_at), database=database)
        finished = [drill for drill in store.drills(service, target) if drill.status != "running"]
        if finished:
            drill = finished[0]
            self.set("failover_drill_age_seconds", age(drill.ended_at or drill.started_at))
            self.set("failover_drill_succeeded", drill.status == "succeeded" and drill.clean is not False)
            if drill.rto_s is not None:
                self.set("failover_drill_rto_seconds", drill.rto_s)

    def check_report(self, report: Any) -> None:
        self.set("failover_ready", report.ready)
        for result in report.checks:
            self.set("failover_check_ready", result.status != FAIL, check=result.name)
            self.set("failover_check_warning", result.status == "warn", check=result.name)
            self.set("failover_check_duration_seconds", result.elapsed_s, check=result.name)

    def replicate_document(self, document: dict[str, Any]) -> None:
        for row in document.get("buckets", {}).get("items", []):
            self.set("failover_replicate_objects_copied", row.get("copied") or 0, bucket=row["bucket"])
            self.set("failover_replicate_bytes_copied", row.get("copied_bytes") or 0, bucket=row["bucket"])
            self.set("failover_replicate_failed", bool(row.get("error")), kind="bucket", name=row["bucket"])
        for row in document.get("zones", {}).get("items", []):
            self.set("failover_replicate_failed", bool(row.get("error")), kind="zone", name=row["zone"])
        for row in document.get("databases", {}).get("items", []):
            self.set("failover_replicate_failed", bool(row.get("error")), kind="database", name=row["database"])
            if row.get("bytes") is not None and not row.get("error"):
                self.set("failover_dump_bytes", row["bytes"], database=row["database"])

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def write(self, path: Path) -> None:
        write_atomically(path, self.text())


def _newest(records: Iterable[Any], key: str) -> dict[str, Any]:
    """The last record of each ``key`` value, from records ordered oldest first."""
    newest: dict[str, Any] = {}
    for record in records:
        newest[getattr(record, key)] = record
    return newest


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once: a reader sees the old file or the new one, whole."""
    path = Path(path)
    umask = os.umask(0)
    os.umask(umask)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_check_metrics(path: Path | None, config: Config, store: StateStore, report: Any, exit_code: int) -> None:
    if path is None:
        return
    metrics = Metrics(config, report.target, "check")
    metrics.check_report(report)
    metrics.state(config, store, report.target)
    metrics.outcome(exit_code, report.elapsed_s)
    metrics.write(path)


def write_replicate_metrics(path: Path | None, config: Config, store: StateStore, target: str,
                            document: dict[str, Any], exit_code: int) -> None:
    if path is None:
        return
    metrics = Metrics(config, target, "replicate")
    metrics.replicate_document(document)
    metrics.state(config, store, target)
    metrics.outcome(exit_code, document.get("elapsed_s") or 0.0)
    metrics.write(path)
