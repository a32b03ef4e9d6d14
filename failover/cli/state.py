"""``failover state export FILE`` and ``failover state import FILE``: a whole state moved between
backends (SQLite, PostgreSQL) and machines (``failover.statetransfer``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from failover.cli.common import ConfigOption, JsonOption, console, load, open_state, print_json
from failover.errors import InputError, Problem
from failover.statetransfer import TABLES, export_state, import_state, read_export, write_export

app = typer.Typer()
state_app = typer.Typer(help="Move the state between backends and machines: export, import.", no_args_is_help=True)
app.add_typer(state_app, name="state")

FileArgument = Annotated[Path, typer.Argument(metavar="FILE", help="The JSON file.")]


@state_app.command("export")
def export(file: FileArgument, config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Write the whole state (the config's `state:`) to FILE, as one JSON document."""
    if not file.parent.is_dir():
        raise InputError([Problem(file="arguments", field="FILE", message=f"directory {file.parent} does not exist")])
    config = load(config_file)
    with open_state(config) as store:
        document = export_state(store)
    write_export(document, file)
    counts = {table: len(rows) for table, rows in document["tables"].items()}
    if json_out:
        print_json({"file": str(file), "schema_version": document["schema_version"], "rows": counts})
    console.print(f"Exported the state to {escape(str(file))}: {_summary(counts)}.")


@state_app.command("import")
def import_(file: FileArgument, config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Load FILE (from `failover state export`) into the config's `state:`, which must be empty."""
    document = read_export(file)
    config = load(config_file)
    with open_state(config) as store:
        counts = import_state(store, document, file=str(file))
    if json_out:
        print_json({"file": str(file), "schema_version": document["schema_version"], "rows": counts})
    console.print(f"Imported {escape(str(file))}: {_summary(counts)}.")


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(table, 0)} {table}" for table in TABLES)
