"""``failover replicate``: keep what cannot be rebuilt off the source, on the target, ahead of time.

The command runs sections one after the other, each copying one kind of data and
reporting it as a part of the JSON document and a table on stderr: today the snapshot's
buckets; DNS zones and database dumps slot in as further sections (``SECTIONS``).

Exit codes (DESIGN.md): 1 when a section failed (a refused mass deletion, a copy that did
not verify), 2 for invalid input (found before anything is read or written), 4 when the
source or the target cannot be reached or refuses the credentials.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, Self

import typer
from rich import box
from rich.console import Console
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
)
from failover.config import Config
from failover.errors import (
    ConfigError,
    InputError,
    OperationFailed,
    Problem,
    TransientError,
)
from failover.manifest import Manifest, now_iso
from failover.replication import (
    DEFAULT_WORKERS,
    BucketResult,
    CopyProgress,
    Replicator,
    is_local_disk,
)
from failover.state import SnapshotInfo, StateStore
from failover.targets import Targets
from providers.base import source_storage

app = typer.Typer()

MAX_WORKERS = 64
LOG_WIDTH = 120  # not on a terminal (a log, a CI job): wide enough for every column unshortened


@dataclass(frozen=True)
class Options:
    target: str
    delete: bool
    force: bool
    buckets: list[str]
    workers: int


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
        bool, typer.Option("--delete", help="Also delete from the replicas what the source no longer has.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --delete: delete even when it would empty a replica or take more than a tenth of it.")
    ] = False,
    bucket: Annotated[
        list[str] | None,
        typer.Option("--bucket", "-b", metavar="NAME", show_default=False,
                     help="Replicate only this snapshot bucket (repeatable; default: all)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, max=MAX_WORKERS, help="Objects copied at once.")
    ] = DEFAULT_WORKERS,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Copy the latest snapshot's buckets to the target, incrementally and verified; never a mass deletion."""
    if force and not delete:
        raise InputError([Problem(file="arguments", field="--force", message="only means something with --delete")])
    options = Options(target=target, delete=delete, force=force, buckets=list(bucket or []), workers=workers)
    config = load(config_file)
    targets = Targets(config, target)  # an unknown profile is an input error
    with open_state(config) as store, TransferProgress() as progress:
        snapshot, manifest = store.load_snapshot(config.service, "latest")  # none yet: run `failover inventory`
        replication = Replication(config, store, snapshot, manifest, targets, options, progress)
        for section in SECTIONS:
            section.check(replication)
        document, reports = run_sections(replication)
    if json_out:
        print_json(document)
    print_summary(document, reports)
    failures = [failure for report in reports.values() for failure in report.failures]
    if failures:
        raise OperationFailed("; ".join(failures))


def run_sections(replication: Replication) -> tuple[dict[str, Any], dict[str, SectionReport]]:
    """Every section, one after the other; the JSON document and each section's report."""
    started_at, started = now_iso(), time.monotonic()
    reports = {section.name: section.run(replication) for section in SECTIONS}
    document = {
        "service": replication.config.service, "target": replication.options.target,
        "snapshot": replication.snapshot.id, "started_at": started_at, "finished_at": now_iso(),
        "elapsed_s": round(time.monotonic() - started, 3),
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


def table_console() -> Console:
    """The terminal's console; elsewhere (a log, a CI job) one wide enough that no column is cut."""
    return console if console.is_terminal else Console(stderr=True, highlight=False, width=LOG_WIDTH)


# -- buckets ----------------------------------------------------------------------------------

class Buckets:
    """Each snapshot bucket into its container on the target's storage, one pass per bucket,
    so that a bucket's failure (a refused mass deletion) leaves the others replicated."""

    name = "buckets"

    def check(self, replication: Replication) -> None:
        self.selected(replication)
        spec = replication.targets.profile.storage
        where = f"targets.{replication.options.target}.storage"
        if spec is None:
            raise ConfigError([Problem(file=str(replication.config.path), field=where,
                                       message="replicate needs a storage target, and this profile has none")])
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
        replicator = self._replicator(replication, buckets)
        rows = [self._replicate_one(replication, replicator, item) for item in buckets]
        document = {"items": rows, "totals": totals(rows)}
        failures = [f"bucket {row['bucket']}: {row['error']}" for row in rows if row["error"]]
        notes = [
            f"bucket {row['bucket']}: {len(row['refused_keys'])} key(s) not copied: "
            + "; ".join(f"{key!r} ({why})" for key, why in list(row["refused_keys"].items())[:5])
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
                return bucket_row(item.id, replication.targets.storage.container_name(item.id), None,
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


SECTIONS: tuple[Section, ...] = (Buckets(),)


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

    def update(self, progress: CopyProgress) -> None:
        """The Replicator's progress callback (from its worker threads)."""
        task = self._tasks.get(progress.bucket)
        if self._progress is not None and task is not None:
            self._progress.update(
                task, total=progress.bytes_total, completed=progress.bytes_done,
                objects=f"{progress.objects_done}/{progress.objects_total} objects",
            )

