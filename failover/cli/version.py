"""``failover --version``: the package's version; with ``--json`` also boto3's, libcloud's and Python's."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Annotated

import typer

from failover.cli.common import print_json
from failover.errors import InputError, Problem

PACKAGES = {"boto3": "boto3", "libcloud": "apache-libcloud", "typer": "typer", "prometheus_client": "prometheus-client"}

JSON_HELP = "With --version: one JSON document with the versions of failover, Python, boto3, libcloud and more."


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"failover": _version("failover"), "python": platform.python_version()}
    found.update({name: _version(dist) for name, dist in PACKAGES.items()})
    return found


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_callback(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print failover's version and exit.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Get a service off a cloud provider that terminated its account, and back online elsewhere."""
    if json_out and not version:
        raise InputError([Problem(file="arguments", field="--json",
                                  message="before a command only with --version; a command's --json goes after it")])
    if version:
        if json_out:
            print_json(versions())
        else:
            typer.echo(f"failover {versions()['failover']}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(2)
