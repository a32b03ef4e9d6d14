"""``failover replicate``: keep what cannot be rebuilt off the source, on the target, ahead of time.

The pass itself is :func:`failover.replicate.replicate` (buckets, DNS zones, database dumps;
its input checks, the service's lock, mass-deletion refusals): this module parses the
options, shows the copy's progress with rich on stderr, and prints the result, a table per
part on stderr and with ``--json`` the document on stdout.

Exit codes (DESIGN.md): 1 when a part failed (a refused mass deletion, a copy or dump
that did not verify, a dump tool that failed), 2 for invalid input (found before
anything is read or written), 3 when another run holds the service's lock, 4 when the
source or the target cannot be reached or refuses the credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Self

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
    JsonOption,
    MetricsOption,
    console,
    load,
    open_state,
    print_json,
    table_console,
)
from failover.errors import OperationFailed
from failover.metrics import check_path, write_replicate_metrics
from failover.replicate import MAX_WORKERS, ReplicateOptions, ReplicateProgress, ReplicateResult, replicate_pass
from failover.replicate.buckets import DEFAULT_WORKERS, CopyProgress

app = typer.Typer()


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
    metrics: MetricsOption = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Copy the latest snapshot's buckets, DNS zones and database dumps to the target, ahead of time.

    Buckets: only new or changed objects, verified by MD5. Zones: the snapshot's public
    zones, read from the source now, only differing record sets written. Databases: each
    of the config's `databases` dumped (pg_dump -Fc, or mysqldump gzipped) into the
    target's dumps container, verified, the newest `keep` kept. Never a mass deletion.
    """
    options = ReplicateOptions.parse(target, only=only, buckets=bucket, delete=delete, force=force, workers=workers)
    check_path(metrics)
    config = load(config_file)
    with TransferProgress() as progress:
        result = replicate_pass(config, options, progress=progress)
    document = result.to_dict()
    if metrics is not None:
        with open_state(config) as store:
            write_replicate_metrics(metrics, config, store, target, document, 0 if result.ok else 1)
    if json_out:
        print_json(document)
    print_summary(result)
    if result.failures:
        raise OperationFailed("; ".join(result.failures))


def print_summary(result: ReplicateResult) -> None:
    """Each part's table (when it has rows) and notes, then the outcome, on stderr."""
    for name, part in result.parts.items():
        if part.items:
            table_console().print(TABLES[name](part.to_dict()))
        for note in part.notes:
            console.print(f"[yellow]{escape(note)}[/]")
    outcome = "done" if result.ok else "[red]failed[/]"
    console.print(f"Replication of {result.service} to {result.target} {outcome} in {result.elapsed_s:.1f}s"
                  f" (snapshot {result.snapshot}).")


# -- the tables -------------------------------------------------------------------------------

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


TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "buckets": buckets_table, "zones": zones_table, "databases": databases_table,
}


# -- progress ---------------------------------------------------------------------------------

class TransferProgress(ReplicateProgress):
    """The pass's progress on stderr, only on a terminal: one bar per bucket while it is copied,
    with bytes/s, and one per database dump while it streams."""

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

    def copied(self, progress: CopyProgress) -> None:
        """The Replicator's progress (from its worker threads)."""
        task = self._tasks.get(progress.bucket)
        if self._progress is not None and task is not None:
            self._progress.update(
                task, total=progress.bytes_total, completed=progress.bytes_done,
                objects=f"{progress.objects_done}/{progress.objects_total} objects",
            )

    def lock_taken_over(self, service: str, holder: str) -> None:
        console.print(f"[yellow]took over the lock of {escape(service)} left by {escape(holder)}, "
                      "whose process is gone[/]")
