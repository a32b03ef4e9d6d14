"""``failover inventory``: snapshot the source's resources of the service."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from failover.cli.common import (
    ConfigOption,
    JsonOption,
    Tasks,
    console,
    load,
    open_state,
    print_json,
    print_left_behind,
)
from failover.errors import InputError, Problem
from failover.inventory import take_snapshot, write_manifest
from failover.manifest import KINDS

app = typer.Typer()


@app.command()
def inventory(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the manifest here (.json or .yaml; - for stdout).")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Manifest format for --output: json or yaml.")] = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Snapshot the service's resources on the source into the state store (and FILE)."""
    if fmt not in (None, "json", "yaml"):
        raise InputError([Problem(file="arguments", field="--format", message="json or yaml")])
    if output is not None and str(output) == "-" and json_out:
        raise InputError([Problem(file="arguments", field="--output", message="--output - and --json both want stdout")])
    if output is not None and str(output) != "-" and not output.parent.is_dir():
        raise InputError([Problem(file="arguments", field="--output", message=f"directory {output.parent} does not exist")])
    config = load(config_file)
    with open_state(config) as store, Tasks(f"Inventory of {config.service}") as progress:
        info, manifest = take_snapshot(config, store, progress)
    elapsed = progress.elapsed
    if output is not None:
        if str(output) == "-":
            sys.stdout.write(manifest.to_yaml() if fmt == "yaml" else manifest.to_json())
        else:
            write_manifest(manifest, output, fmt)
    if json_out:
        print_json({"snapshot": info.to_dict(), "output": str(output) if output else None,
                    "elapsed_s": round(elapsed, 3), "left_behind": manifest.left_behind()})
        return
    table = Table(title=f"{config.service}: snapshot {info.id}", title_justify="left")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind in (*KINDS, "unsupported"):
        if info.counts.get(kind):
            table.add_row(kind, str(info.counts[kind]))
    console.print(table)
    for item in manifest.unsupported:
        console.print(f"[yellow]unsupported[/] {escape(item.type)} {escape(item.id)}: {escape(item.reason)}")
    print_left_behind(manifest.left_behind(), config.readiness.accept_unsupported)
    written = f", written to {output}" if output is not None and str(output) != "-" else ""
    console.print(f"Snapshot {info.id} taken in {elapsed:.1f}s (account {escape(manifest.source.account)})"
                  f"{escape(written)}.")

