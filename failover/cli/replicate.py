"""``failover replicate``: keep what cannot be rebuilt off the source, on the target, ahead of time.

The command runs sections one after the other (``SECTIONS``), each copying one kind of
data and reporting it as a part of the JSON document and a table on stderr:

- ``buckets``: the latest snapshot's buckets into their containers on the target storage,
  incrementally, verified by MD5 (``failover.replication``); ``--bucket`` picks some;
- ``zones``: the snapshot's public DNS zones (those ``copy-dns-zones`` copies by default),
  their record sets read from the source now, mirrored onto the target DNS writing only
  the sets that differ, apex SOA and NS left to the target (``failover.zonemirror``);
- ``databases``: a dump of each database of the config's ``databases`` (``pg_dump -Fc``,
  or ``mysqldump`` gzipped) streamed into the target's dumps container, verified, the
  newest ``keep`` kept (``failover.dumps``).

Every section checks its inputs before any section runs: an unknown bucket, a config
database not in the snapshot or of an engine without dumps, a profile without the
storage or DNS a section needs, an unset secret, are input errors and nothing is read
or written. With ``--delete``, what the source no longer has is deleted from the
replicas (objects, record sets; never dumps, which ``keep`` governs), and a mass
deletion (the source listing nothing, or more than a tenth of a replica going) is
refused unless ``--force``.

Exit codes (DESIGN.md): 1 when a section failed (a refused mass deletion, a copy or dump
that did not verify, a dump tool that failed), 2 for invalid input (found before
anything is read or written), 4 when the source or the target cannot be reached or
refuses the credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, Self

import typer
from rich import box
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from failover.cli.common import (
    ConfigOption,
    DebugOption,
    JsonOption,
    console,
    load,
    open_state,
    print_json,
    table_console,
)
from failover.config import Config, DatabaseSpec, resolve_secrets
from failover.dnsnames import selected_zones
from failover.dumps import DumpResult, check_dsn, database_dsn, dump_database, prune
from failover.engine.lock import ServiceLock
from failover.keytext import shown
from failover.adapters import source_storage, source_zones
from failover.errors import (
    ConfigError,
    InputError,
    OperationFailed,
    Problem,
    TransientError,
)
from failover.ports import SourceZones
from failover.manifest import Database, DnsZone, Manifest, now_iso
from failover.naming import DUMPS_BUCKET, dump_format
from failover.replication import (
    DEFAULT_WORKERS,
    BucketResult,
    CopyProgress,
    Replicator,
    is_local_disk,
)
from failover.state import SnapshotInfo, StateStore, new_id
from failover.targets import Targets
from failover.zonemirror import (
    MirrorRefused,
    ZonePass,
    mirror_zone,
)

app = typer.Typer()

MAX_WORKERS = 64


@dataclass(frozen=True)
class Options:
    target: str
    delete: bool
    force: bool
    buckets: list[str]
    workers: int
    sections: tuple[str, ...] = ("buckets", "zones", "databases")


@dataclass
class Replication:
    """What every section works from: the config, the latest snapshot and the target profile."""

    config: Config
    store: StateStore
    snapshot: SnapshotInfo
    manifest: Manifest
    targets: Targets
    options: Options
    progress: TransferProgress

    @property
    def sections(self) -> list[Section]:
        """The parts to replicate (``--only``), in their fixed order."""
        return [section for section in SECTIONS if section.name in self.options.sections]


@dataclass
class SectionReport:
    """A section's part of the JSON document, its table for people, and what failed in it."""

    document: dict[str, Any]
    table: Table | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Section(Protocol):
    name: str  # its key in the JSON document

    def check(self, replication: Replication) -> None:
        """Raise InputError for what is wrong with the inputs, before any section runs."""

    def run(self, replication: Replication) -> SectionReport: ...


@app.command()
def replicate(
    target: Annotated[str, typer.Option("--target", "-t", help="The target profile of the config to replicate to.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Also delete from the replicas what the source no longer has "
                                            "(objects, DNS record sets).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --delete: delete even when it would empty a replica or take more than a tenth of it.")
    ] = False,
    bucket: Annotated[
        list[str] | None,
        typer.Option("--bucket", "-b", metavar="NAME", show_default=False,
                     help="Copy only this snapshot bucket (repeatable; default: all). Zones and dumps are replicated either way."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, max=MAX_WORKERS, help="Objects copied at once.")
    ] = DEFAULT_WORKERS,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="PART", show_default=False,
                     help="Replicate only this part: buckets, zones or databases (repeatable; default: all three)."),
    ] = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Copy the latest snapshot's buckets, DNS zones and database dumps to the target, ahead of time.

    Buckets: only new or changed objects, verified by MD5. Zones: the snapshot's public
    zones, read from the source now, only differing record sets written. Databases: each
    of the config's `databases` dumped (pg_dump -Fc, or mysqldump gzipped) into the
    target's dumps container, verified, the newest `keep` kept. Never a mass deletion.
    """
    if force and not delete:
        raise InputError([Problem(file="arguments", field="--force", message="only means something with --delete")])
    options = Options(target=target, delete=delete, force=force, buckets=list(bucket or []), workers=workers,
                      sections=selected_sections(only))
    config = load(config_file)
    targets = Targets(config, target)  # an unknown profile is an input error
    with open_state(config) as store, TransferProgress() as progress:
        snapshot, manifest = store.load_snapshot(config.service, "latest")  # none yet: run `failover inventory`
        replication = Replication(config, store, snapshot, manifest, targets, options, progress)
        for section in replication.sections:
            section.check(replication)
        with service_lock(store, config.service):
            document, reports = run_sections(replication)
    if json_out:
        print_json(document)
    print_summary(document, reports)
    failures = [failure for report in reports.values() for failure in report.failures]
    if failures:
        raise OperationFailed("; ".join(failures))


@contextmanager
def service_lock(store: StateStore, service: str) -> Iterator[None]:
    """The service's lock while replicating: not while a run or a drill changes the target
    (a drill compares the target before and after; a run's sync-buckets writes the same
    containers). LockHeld (exit 3) names the holder."""
    lock, holder = ServiceLock(store, service), new_id("replicate")
    took_over = lock.acquire(holder)
    if took_over is not None:
        console.print(f"[yellow]took over the lock of {escape(service)} left by {escape(str(took_over))}, "
                      "whose process is gone[/]")
    try:
        yield
    finally:
        lock.release(holder)


def selected_sections(only: list[str] | None) -> tuple[str, ...]:
    """The ``--only`` parts, checked; all of them by default."""
    names = [section.name for section in SECTIONS]
    wanted = [part.strip().lower() for value in (only or []) for part in value.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in names]
    if unknown:
        raise InputError([Problem(file="arguments", field="--only",
                                  message=f"no part {', '.join(map(repr, unknown))} (parts: {', '.join(names)})")])
    return tuple(name for name in names if not wanted or name in wanted)


def run_sections(replication: Replication) -> tuple[dict[str, Any], dict[str, SectionReport]]:
    """Every section, one after the other; the JSON document and each section's report."""
    started_at, started = now_iso(), time.monotonic()
    reports = {section.name: section.run(replication) for section in replication.sections}
    document = {
        "service": replication.config.service, "target": replication.options.target,
        "snapshot": replication.snapshot.id, "started_at": started_at, "finished_at": now_iso(),
        "elapsed_s": round(time.monotonic() - started, 3), "parts": [section.name for section in replication.sections],
        "ok": not any(report.failures for report in reports.values()),
        **{name: report.document for name, report in reports.items()},
    }
    return document, reports


def print_summary(document: dict[str, Any], reports: dict[str, SectionReport]) -> None:
    for report in reports.values():
        if report.table is not None:
            table_console().print(report.table)
        for note in report.notes:
            console.print(f"[yellow]{escape(note)}[/]")
    outcome = "done" if document["ok"] else "[red]failed[/]"
    console.print(f"Replication of {document['service']} to {document['target']} {outcome} in {document['elapsed_s']:.1f}s"
                  f" (snapshot {document['snapshot']}).")




# -- buckets ----------------------------------------------------------------------------------

class Buckets:
    """Each snapshot bucket into its container on the target's storage, one pass per bucket,
    so that a bucket's failure (a refused mass deletion) leaves the others replicated."""

    name = "buckets"

    def check(self, replication: Replication) -> None:
        if not self.selected(replication):
            return  # no bucket to copy: a profile without storage is fine (DNS only, say)
        spec = replication.targets.profile.storage
        where = f"targets.{replication.options.target}.storage"
        if spec is None:
            raise ConfigError([Problem(file=str(replication.config.path), field=where,
                                       message="replicate copies the snapshot's buckets into the target's storage, and this profile has"
                                               " none (--only zones --only databases replicates the rest)")])
        build_driver(replication.targets.storage)

    def selected(self, replication: Replication) -> list[Any]:
        """The snapshot's buckets, or those named with --bucket; an unknown name is an input error."""
        in_snapshot = {item.id: item for item in replication.manifest.of_kind("bucket")}
        wanted = replication.options.buckets or sorted(in_snapshot)
        unknown = [name for name in wanted if name not in in_snapshot]
        if unknown:
            known = ", ".join(sorted(in_snapshot)) or "none"
            raise InputError([Problem(file="arguments", field="--bucket",
                                      message=f"no bucket {', '.join(unknown)} in snapshot {replication.snapshot.id} (it has: {known})")])
        return [in_snapshot[name] for name in dict.fromkeys(wanted)]

    def run(self, replication: Replication) -> SectionReport:
        buckets = self.selected(replication)
        if not buckets:
            return SectionReport(document={"items": [], "totals": totals([])})
        replicator = self._replicator(replication, buckets)
        rows = [self._replicate_one(replication, replicator, item) for item in buckets]
        document = {"items": rows, "totals": totals(rows)}
        failures = [f"bucket {row['bucket']}: {row['error']}" for row in rows if row["error"]]
        notes = [
            f"bucket {row['bucket']}: {len(row['refused_keys'])} key(s) not copied: "
            + "; ".join(f"{shown(key)} ({why})" for key, why in list(row["refused_keys"].items())[:5])
            for row in rows if row["refused_keys"]
        ]
        return SectionReport(document=document, table=buckets_table(document), failures=failures, notes=notes)

    def _replicator(self, replication: Replication, buckets: list[Any]) -> Replicator:
        options, config = replication.options, replication.config
        source = source_storage(config, {item.id: item.region for item in buckets}, options.workers)
        return Replicator(
            source, replication.targets.storage, replication.store, service=config.service, target_name=options.target,
            workers=options.workers, local_disk=is_local_disk(replication.targets.profile.storage),
            progress=replication.progress.update,
        )

    def _replicate_one(self, replication: Replication, replicator: Replicator, item: Any) -> dict[str, Any]:
        options = replication.options
        started = time.monotonic()
        with replication.progress.bucket(item.id):
            try:
                result = replicator.replicate([item.id], delete=options.delete, force=options.force).buckets[0]
            except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
                done = getattr(exc, "bucket_result", None)  # what the failed pass had done
                return bucket_row(item.id, replication.targets.storage.container_name(item.id), done,
                                  time.monotonic() - started, error=str(exc))
        return bucket_row(item.id, result.container, result, time.monotonic() - started)


def build_driver(storage: Any) -> None:
    """Build the storage driver now: unset secrets and options the driver refuses are input
    errors, found before anything is read or written."""
    storage.keeps_metadata  # noqa: B018 - reading it builds the driver


def bucket_row(bucket: str, container: str, result: BucketResult | None, elapsed: float, error: str | None = None) -> dict[str, Any]:
    counts = {name: getattr(result, name, 0) for name in ("objects", "bytes", "copied", "copied_bytes", "skipped", "deleted")}
    refused = dict(result.refused) if result is not None else {}
    return {
        "bucket": bucket, "container": container, **counts, "refused": len(refused), "refused_keys": refused,
        "created_container": bool(result and result.created_container),
        "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(counts["copied_bytes"], elapsed), "error": error,
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {name: sum(row[name] for row in rows)
              for name in ("objects", "bytes", "copied", "copied_bytes", "skipped", "deleted", "refused")}
    elapsed = sum(row["elapsed_s"] for row in rows)
    return {**summed, "failed": sum(1 for row in rows if row["error"]), "elapsed_s": round(elapsed, 3),
            "bytes_per_s": _rate(summed["copied_bytes"], elapsed)}


def _rate(size: int, seconds: float) -> int:
    return round(size / seconds) if seconds > 0 else 0


def buckets_table(document: dict[str, Any]) -> Table:
    table = Table(title="Buckets", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("bucket", no_wrap=True)
    for heading in ("objects", "size", "copied", "skipped", "deleted", "refused", "time", "rate"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in document["items"]:
        table.add_row(*_cells(f"[red]{escape(row['bucket'])} (failed)[/]" if row["error"] else escape(row["bucket"]), row))
    if len(document["items"]) > 1:
        table.add_section()
        table.add_row(*_cells("total", document["totals"]))
    return table


def _cells(label: str, row: dict[str, Any]) -> list[str]:
    return [
        label, str(row["objects"]), _size(row["bytes"]), f"{row['copied']} ({_size(row['copied_bytes'])})",
        str(row["skipped"]), str(row["deleted"]), str(row["refused"]), f"{row['elapsed_s']:.1f}s",
        f"{_size(row['bytes_per_s'])}/s",
    ]


def _size(size: int) -> str:
    return decimal(size).replace(" bytes", " B").replace(" byte", " B")


# -- zones ------------------------------------------------------------------------------------

class Zones:
    """The snapshot's public DNS zones (what ``copy-dns-zones`` copies by default), read from
    the source now and mirrored onto the target DNS, one pass per zone, so that a zone's
    failure (a refused mass deletion, a zone gone from the source) leaves the others mirrored."""

    name = "zones"

    def selected(self, replication: Replication) -> list[DnsZone]:
        return selected_zones(replication.manifest, None)

    def check(self, replication: Replication) -> None:
        zones = self.selected(replication)
        if not zones:
            return
        spec, config = replication.targets.profile.dns, replication.config
        where = f"targets.{replication.options.target}.dns"
        if spec is None:
            names = ", ".join(zone.name for zone in zones)
            raise ConfigError([Problem(file=str(config.path), field=where,
                                       message=f"replicate mirrors the snapshot's DNS zones ({names}), and this profile has no dns target"
                                               " (--only buckets --only databases replicates the rest)")])
        resolve_secrets(spec.options, file=str(config.path), field=f"{where}.options")  # unset: an input error, now

    def run(self, replication: Replication) -> SectionReport:
        zones = self.selected(replication)
        source = source_zones(replication.config) if zones else None
        rows = [self._mirror_one(replication, source, zone) for zone in zones]
        document = {"items": rows, "totals": zone_totals(rows)}
        failures = [f"zone {row['zone']}: {row['error']}" for row in rows if row["error"]]
        notes = []
        for row in rows:
            if row["refused_sets"]:
                notes.append(f"zone {row['zone']}: {len(row['refused_sets'])} record set(s) refused: " + "; ".join(
                    f"{shown(item['name'])} {item['type']} ({item['reason']})" for item in row["refused_sets"][:5]))
            if row["skipped"]:
                notes.append(f"zone {row['zone']}: {len(row['skipped'])} record set(s) not mirrored: " + "; ".join(
                    f"{item['name']} {item['type']} ({item['reason']})" for item in row["skipped"][:5]))
            if row["extra"] and not replication.options.delete and not row["error"]:
                notes.append(f"zone {row['zone']}: {len(row['extra'])} record set(s) on the target are not on the source,"
                             f" left alone (--delete deletes them): {', '.join(row['extra'][:5])}")
        return SectionReport(document=document, table=zones_table(document) if rows else None, failures=failures, notes=notes)

    def _mirror_one(self, replication: Replication, source: SourceZones, zone: DnsZone) -> dict[str, Any]:
        options, config = replication.options, replication.config
        started = time.monotonic()
        try:
            read_at = now_iso()
            fresh = source.read(zone)  # unreachable or refused: exit 4 at once
            result = mirror_zone(
                replication.targets.dns, replication.store, fresh, service=config.service, target_name=options.target,
                read_at=read_at, delete=options.delete, force=options.force,
            )
        except MirrorRefused as exc:
            return zone_row(zone.name, None, time.monotonic() - started, error=str(exc), refused=exc.refused)
        except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
            return zone_row(zone.name, None, time.monotonic() - started, error=str(exc))
        return zone_row(result.zone, result, time.monotonic() - started)


def zone_row(zone: str, result: ZonePass | None, elapsed: float, error: str | None = None, refused: int = 0) -> dict[str, Any]:
    counts = {name: getattr(result, name, 0) for name in ("record_sets", "written", "unchanged", "deleted")}
    refused_sets = list(result.refused_sets) if result else []
    return {
        "zone": zone, **counts, "refused": refused + len(refused_sets), "refused_sets": refused_sets,
        "created_zone": bool(result and result.created_zone),
        "elapsed_s": round(elapsed, 3), "error": error,
        "written_sets": list(result.written_sets) if result else [], "deleted_sets": list(result.deleted_sets) if result else [],
        "extra": list(result.extra) if result else [], "skipped": list(result.skipped) if result else [],
        "digest": result.digest if result else None,
    }


def zone_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {name: sum(row[name] for row in rows) for name in ("record_sets", "written", "unchanged", "deleted", "refused")}
    return {**summed, "created_zones": sum(1 for row in rows if row["created_zone"]),
            "failed": sum(1 for row in rows if row["error"]), "elapsed_s": round(sum(row["elapsed_s"] for row in rows), 3)}


def zones_table(document: dict[str, Any]) -> Table:
    table = Table(title="DNS zones", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("zone", no_wrap=True)
    for heading in ("record sets", "written", "unchanged", "deleted", "refused", "time"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in document["items"]:
        label = escape(row["zone"]) + (" (created)" if row["created_zone"] else "")
        table.add_row(*_zone_cells(f"[red]{escape(row['zone'])} (failed)[/]" if row["error"] else label, row))
    if len(document["items"]) > 1:
        table.add_section()
        table.add_row(*_zone_cells("total", document["totals"]))
    return table


def _zone_cells(label: str, row: dict[str, Any]) -> list[str]:
    return [label, *(str(row[name]) for name in ("record_sets", "written", "unchanged", "deleted", "refused")),
            f"{row['elapsed_s']:.1f}s"]


# -- databases --------------------------------------------------------------------------------

class Databases:
    """A dump of each database of the config's ``databases`` (keyed by its name in the snapshot),
    streamed from the engine's dump tool into the target's dumps container, verified, recorded;
    then the older dumps beyond the database's ``keep`` are deleted. One database's failure
    (a wrong password) leaves the others dumped."""

    name = "databases"

    def selected(self, replication: Replication) -> list[tuple[str, DatabaseSpec, Database]]:
        """The config's databases with their snapshot resource; InputError for a name the
        snapshot does not have or an engine failover cannot dump."""
        config, snapshot = replication.config, replication.snapshot
        in_snapshot = {db.name: db for db in replication.manifest.of_kind("database")}
        problems, selected = [], []
        for name, spec in config.databases.items():
            db = in_snapshot.get(name)
            if db is None:
                known = ", ".join(sorted(in_snapshot)) or "none"
                problems.append(Problem(file=str(config.path), field=f"databases.{name}",
                                        message=f"no database {name} in snapshot {snapshot.id} (it has: {known})"))
            elif dump_format(db.engine) is None:
                problems.append(Problem(file=str(config.path), field=f"databases.{name}",
                                        message=f"engine {db.engine} has no dump format (failover dumps PostgreSQL, MySQL and MariaDB)"))
            else:
                selected.append((name, spec, db))
        if problems:
            raise InputError(problems)
        return selected

    def check(self, replication: Replication) -> None:
        selected = self.selected(replication)
        if not selected:
            return
        config = replication.config
        if replication.targets.profile.storage is None:
            raise ConfigError([Problem(file=str(config.path), field=f"targets.{replication.options.target}.storage",
                                       message="replicate stores database dumps in the target's storage, and this profile has none"
                                               " (--only buckets --only zones replicates the rest)")])
        for name, spec, db in selected:  # the DSN read now to check it, and read again when dumping
            check_dsn(database_dsn(spec, file=str(config.path), name=name), db.engine, file=str(config.path), name=name)
        build_driver(replication.targets.storage)

    def run(self, replication: Replication) -> SectionReport:
        selected = self.selected(replication)
        rows = [self._dump_one(replication, name, spec, db) for name, spec, db in selected]
        document = {"items": rows, "totals": database_totals(rows)}
        failures = [f"database {row['database']}: {row['error']}" for row in rows if row["error"]]
        return SectionReport(document=document, table=databases_table(document) if rows else None, failures=failures)

    def _dump_one(self, replication: Replication, name: str, spec: DatabaseSpec, db: Database) -> dict[str, Any]:
        options, config, storage = replication.options, replication.config, replication.targets.storage
        started = time.monotonic()
        result, pruned = None, []
        with replication.progress.transfer(f"{name} (dump)") as advance:
            try:
                dsn = database_dsn(spec, file=str(config.path), name=name)  # from the environment, now
                result = dump_database(
                    storage, replication.store, service=config.service, target_name=options.target,
                    database=name, engine=db.engine, dsn=dsn, progress=advance,
                )
                pruned = prune(storage, replication.store, service=config.service, target_name=options.target,
                               database=name, engine=db.engine, keep=spec.keep)
            except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
                return database_row(name, db.engine, storage.container_name(DUMPS_BUCKET), result, pruned,
                                    time.monotonic() - started, error=str(exc))
        return database_row(name, db.engine, storage.container_name(DUMPS_BUCKET), result, pruned, time.monotonic() - started)


def database_row(
    database: str, engine: str, container: str, result: DumpResult | None, pruned: list[str], elapsed: float,
    error: str | None = None,
) -> dict[str, Any]:
    size = result.bytes if result else 0
    return {
        "database": database, "engine": engine, "container": container, "key": result.key if result else None,
        "taken_at": result.taken_at if result else None, "bytes": size, "md5": result.md5 if result else None,
        "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(size, elapsed), "pruned": list(pruned), "error": error,
    }


def database_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    size, elapsed = sum(row["bytes"] for row in rows), sum(row["elapsed_s"] for row in rows)
    return {"dumped": sum(1 for row in rows if row["key"] and not row["error"]), "bytes": size,
            "pruned": sum(len(row["pruned"]) for row in rows), "failed": sum(1 for row in rows if row["error"]),
            "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(size, elapsed)}


def databases_table(document: dict[str, Any]) -> Table:
    table = Table(title="Database dumps", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("database", no_wrap=True)
    table.add_column("key", no_wrap=True)
    for heading in ("size", "pruned", "time", "rate"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in document["items"]:
        label = f"[red]{escape(row['database'])} (failed)[/]" if row["error"] else escape(row["database"])
        table.add_row(label, escape(row["key"] or "-"), _size(row["bytes"]), str(len(row["pruned"])),
                      f"{row['elapsed_s']:.1f}s", f"{_size(row['bytes_per_s'])}/s")
    return table


SECTIONS: tuple[Section, ...] = (Buckets(), Zones(), Databases())


# -- progress ---------------------------------------------------------------------------------

class TransferProgress:
    """One bar per bucket on stderr while it is copied, with bytes/s; only on a terminal."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TextColumn("{task.fields[objects]}"), TimeElapsedColumn(), console=console, transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def bucket(self, name: str) -> Iterator[None]:
        """Show ``name`` while its pass runs (listing first, then the copy)."""
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(name, total=None, objects="listing")
        try:
            yield
        finally:
            if self._progress is not None:
                self._progress.remove_task(self._tasks.pop(name))

    @contextmanager
    def transfer(self, name: str) -> Iterator[Callable[[int], None]]:
        """A bar for one stream of unknown size (a database dump) while it runs; yields the
        callback that takes the bytes sent so far."""
        if self._progress is None:
            yield lambda done: None
            return
        task = self._progress.add_task(name, total=None, objects="streaming")
        try:
            yield lambda done: self._progress.update(task, completed=done)
        finally:
            self._progress.remove_task(task)

    def update(self, progress: CopyProgress) -> None:
        """The Replicator's progress callback (from its worker threads)."""
        task = self._tasks.get(progress.bucket)
        if self._progress is not None and task is not None:
            self._progress.update(
                task, total=progress.bytes_total, completed=progress.bytes_done,
                objects=f"{progress.objects_done}/{progress.objects_total} objects",
            )

