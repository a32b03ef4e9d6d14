"""``failover snapshots`` and ``failover diff``: what was taken, and what changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from failover.cli.common import ConfigOption, JsonOption, console, load, open_state, print_json
from failover.manifest import KINDS, Manifest, load_manifest
from failover.manifest import diff as diff_manifests

app = typer.Typer()


@app.command()
def snapshots(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List the service's snapshots, oldest first."""
    config = load(config_file)
    with open_state(config) as store:
        snaps = store.snapshots(config.service)
    if json_out:
        print_json({"service": config.service, "snapshots": [s.to_dict() for s in snaps]})
        return
    if not snaps:
        console.print(f"No snapshot of {config.service} yet: run `failover inventory`.")
        return
    table = Table(title=f"Snapshots of {config.service}", title_justify="left")
    table.add_column("id")
    table.add_column("taken at (UTC)")
    for kind in KINDS:
        if any(s.counts.get(kind) for s in snaps):
            table.add_column(kind, justify="right")
    kinds = [k for k in KINDS if any(s.counts.get(k) for s in snaps)]
    table.add_column("unsupported", justify="right")
    for s in snaps:
        table.add_row(s.id, s.taken_at, *(str(s.counts.get(k, 0)) for k in kinds), str(s.counts.get("unsupported", 0)))
    console.print(table)


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="Older snapshot: id, id prefix, latest, previous, or a manifest file.")] = "previous",
    b: Annotated[str, typer.Argument(help="Newer snapshot (default: latest).")] = "latest",
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Compare two snapshots: resources added, removed and changed, field by field."""
    config = load(config_file)
    with open_state(config) as store:
        left, left_name = _manifest(store, config.service, a)
        right, right_name = _manifest(store, config.service, b)
    result = diff_manifests(left, right)
    if json_out:
        print_json({"from": left_name, "to": right_name, **result})
        return
    console.print(f"[bold]{escape(left_name)}[/] → [bold]{escape(right_name)}[/]")
    if not any(result.values()):
        console.print("No changes.")
        return
    for r in result["added"]:
        console.print(f"[green]+ {r['kind']} {escape(r['id'])}[/] ({escape(r['name'])}, {r['region']})")
    for r in result["removed"]:
        console.print(f"[red]- {r['kind']} {escape(r['id'])}[/] ({escape(r['name'])}, {r['region']})")
    for r in result["changed"]:
        console.print(f"[yellow]~ {r['kind']} {escape(r['id'])}[/] ({escape(r['name'])}, {r['region']})")
        for change in r["changes"]:
            console.print("    " + escape(_describe(change)))
    counts = {k: len(v) for k, v in result.items()}
    console.print(f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed.")


def _manifest(store, service: str, ref: str) -> tuple[Manifest, str]:
    path = Path(ref)
    if ref.endswith((".json",)) and path.exists():  # a FIFO or a directory too: load_manifest refuses it by name
        return load_manifest(path), str(path)
    info, manifest = store.load_snapshot(service, ref)
    return manifest, info.id


def _describe(change: dict[str, Any]) -> str:
    short = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)  # noqa: E731
    if "before" in change:
        return f"{change['field']}: {short(change['before'])} -> {short(change['after'])}"
    parts = [f"+{short(x)}" for x in change["added"]] + [f"-{short(x)}" for x in change["removed"]]
    return f"{change['field']}: " + ", ".join(parts)
