"""``failover escrow seal|list|open``: the service's parameters and secrets, encrypted to the team's
age recipients and kept on the target (``failover.escrow``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from failover.cli.common import ConfigOption, JsonOption, console, load, print_json
from failover.errors import ExitCode
from failover.escrow import list_escrows, open_escrow, seal, write_opened
from failover.keytext import shown

app = typer.Typer()
escrow_app = typer.Typer(help="Escrow the service's parameters and secrets, encrypted (age): seal, list, open.",
                         no_args_is_help=True)
app.add_typer(escrow_app, name="escrow")


@escrow_app.command("seal")
def seal_command(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Read the service's SSM parameters and Secrets Manager secrets (evacuation.escrow), encrypt them
    here to the recipients, and store the ciphertext on the target. Exit 1 when a named one is missing."""
    config = load(config_file)
    result = seal(config)
    if json_out:
        print_json(result.to_dict())
    console.print(
        f"Sealed {len(result.parameters)} parameter(s) and {len(result.secrets)} secret(s) of {escape(config.service)}"
        f" for {result.recipients} recipient(s) into {escape(result.container)}/{escape(result.object)}"
        f" ({result.bytes:,} bytes, encrypted)."
    )
    for name in result.missing:
        console.print(f"missing on the source: {escape(shown(name))}")
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


@escrow_app.command("list")
def list_command(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """The service's escrows in the escrow container, oldest first."""
    config = load(config_file)
    escrows = list_escrows(config)
    if json_out:
        print_json({"escrows": escrows})
    for entry in escrows:
        console.print(f"{escape(entry['object'])}  {entry['bytes']:,} bytes")
    if not escrows:
        console.print("No escrow yet.")


@escrow_app.command("open")
def open_command(
    escrow: Annotated[str, typer.Argument(metavar="ESCROW", help="An escrow's name (`escrow list`), or latest.")] = "latest",
    identity: Annotated[Path, typer.Option("--identity", "-i", metavar="FILE", show_default=False,
                                           help="The team's age identity file (or OpenSSH private key).")] = ...,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="DIR", show_default=False,
                                                help="Write DIR/<escrow>.json (0600) instead of stdout.")] = None,
    config_file: ConfigOption = None, json_out: JsonOption = False,
) -> None:
    """Decrypt an escrow with the team's identity: its document (every value) to stdout, or to a
    file of its own in DIR (owner-only)."""
    config = load(config_file)
    key, document = open_escrow(config, escrow, identity)
    if output is None:
        # ASCII only: a value's control or bidirectional characters reach a terminal as \u escapes, never raw.
        sys.stdout.write(json.dumps(document, ensure_ascii=True, indent=2) + "\n")
        sys.stdout.flush()
        console.print(f"Opened {escape(key)}: {len(document['parameters'])} parameter(s), {len(document['secrets'])} secret(s).")
        return
    path = write_opened(output, key, document)
    if json_out:
        print_json({"object": key, "file": str(path), "parameters": len(document["parameters"]),
                    "secrets": len(document["secrets"])})
    console.print(f"Opened {escape(key)} into {escape(str(path))} (owner-only).")
