"""``failover init``: write a first ``failover.yaml`` from what the source account holds.

Asks the source (the standard AWS configuration) which regions hold tagged resources and
proposes the tags that group them (``service``, ``app``, ``Project``... first, with their
resource counts). On a terminal the user picks one; ``--select KEY=VALUE`` (repeatable:
all of them) picks without asking. The file is written once: an existing one is never
overwritten (exit 2). Unreachable source or refused credentials: exit 4, nothing written.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from failover.cli.common import ConfigOption, JsonOption, console, debug_requested, print_json, status, table_console
from failover.config import config_path, load_config
from failover.errors import InputError, Problem
from failover.initconfig import Candidate, Discovery, discover, render, service_name, shown, unsafe

app = typer.Typer()


@app.command()
def init(
    select: Annotated[
        list[str] | None,
        typer.Option("--select", metavar="KEY=VALUE", show_default=False,
                      help="The tag selecting the service's resources (repeatable: all of them); no question asked."),
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", show_default=False, help="Look only in this region (repeatable; default: every "
                                                           "region the account has enabled)."),
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", show_default=False, help="The service's name (default: from the tag).")
    ] = None,
    target: Annotated[str, typer.Option("--target", help="The name of the target profile skeleton.")] = "fallback",
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", show_default=False,
                                 help="An AWS endpoint to use, written into the file (else AWS_ENDPOINT_URL applies).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", show_default=False, help="An AWS profile, written into the file.")
    ] = None,
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help="Never ask: without --select, list the proposals and exit 2.")
    ] = False,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write a commented failover.yaml for one service of the source account (never overwrites)."""
    path = config_path(config_file)
    wanted = _selector(select or [])
    bad_regions = [name for name in region or [] if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", name)]
    if bad_regions:
        raise InputError([Problem(file="arguments", field="--region",
                                  message=f"not an AWS region: {', '.join(shown(name) for name in bad_regions)}")])
    if service is not None and not _valid_service(service):
        raise InputError([Problem(file="arguments", field="--service",
                                  message="lowercase letters, digits and dashes, starting with a letter or digit")])
    if path.exists():
        raise InputError([Problem(file=str(path), message="already exists; failover init never overwrites a config "
                                                          "(move it away, or write elsewhere with --config)")])
    if not path.parent.is_dir():
        raise InputError([Problem(file=str(path), message=f"directory {path.parent} does not exist")])
    asking = not wanted and not non_interactive and sys.stdin.isatty()
    with status("Looking for tagged resources on the source"):
        found = discover(regions=region, endpoint_url=endpoint_url, profile=profile)
    _print_discovery(found)
    if not wanted and not asking:
        if json_out:
            print_json({**found.to_dict(), "selected": None, "written": None})
        raise InputError([Problem(file="arguments", field="--select",
                                  message="choose the service's tag with --select KEY=VALUE (proposals above)")])
    chosen = found.select(wanted) if wanted else _ask(found)
    if not chosen.resources:
        raise InputError([Problem(file="arguments", field="--select",
                                  message=f"no tagged resource carries {_tags_text(chosen.tags)} in "
                                          f"{', '.join(found.regions_scanned) or 'no region'}")])
    name = service or service_name(chosen.tags)
    regions = chosen.regions or [region[0] if region else os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"]
    text = render(chosen, service=name, target=target, regions=regions, profile=profile, endpoint_url=endpoint_url)
    _write_new(path, text)
    load_config(path)  # what init writes, failover reads: a bug here is ours, never the user's to find
    if json_out:
        print_json({**found.to_dict(), "selected": chosen.to_dict(), "service": name, "written": str(path)})
    console.print(f"Wrote {escape(str(path))}: service {escape(name)}, {len(chosen.resources)} resources in "
                  f"{escape(', '.join(regions))}. Next: fill in targets.{escape(target)}, then "
                  f"`failover validate standard --target {escape(target)}` and `failover inventory`.")


def _selector(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, tag = value.partition("=")
        why = "expected KEY=VALUE" if not sep or not key else unsafe(key) or unsafe(tag)
        if why:
            raise InputError([Problem(file="arguments", field="--select", message=f"{shown(value)}: {why}")])
        tags[key] = tag
    return tags


def _valid_service(name: str) -> bool:
    return re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name) is not None


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{shown(k)}={shown(v)}" for k, v in tags.items())


def _print_discovery(found: Discovery) -> None:
    out = table_console()
    table = Table(title=f"Tags grouping {len(found.resources)} tagged resources in "
                        f"{len(found.regions)} of {len(found.regions_scanned)} regions", title_justify="left")
    for column in ("#", "selector", "resources", "regions", "kinds"):
        table.add_column(column, overflow="fold")
    for number, candidate in enumerate(found.candidates(), 1):
        kinds = ", ".join(f"{count} {kind}" for kind, count in candidate.to_dict()["kinds"].items())
        table.add_row(str(number), escape(_tags_text(candidate.tags)), str(len(candidate.resources)),
                      escape(", ".join(candidate.regions) or "global"), escape(kinds))
    out.print(table)
    if found.notes:
        out.print(f"[dim]the tagging API failed in {len(found.notes)} regions, read per service instead "
                  f"(--debug names them)[/]")
        if debug_requested(sys.argv):
            for note in found.notes:
                out.print(f"[dim]{escape(note)}[/]")
    if found.refused:
        out.print(f"[yellow]refused {len(found.refused)} tags (not shown, never written):[/]")
        for item in found.refused[:20]:
            out.print(f"  {escape(item['resource'])}: {escape(item['tag'])}: {escape(item['reason'])}")




def _ask(found: Discovery) -> Candidate:
    candidates = found.candidates()
    if not candidates:
        raise InputError([Problem(file="source", message="no tagged resource found: tag the service's resources "
                                                         "first, or write failover.yaml by hand")])
    number = typer.prompt("Which selector holds the service (number)", default=1, type=int, err=True)
    if not 1 <= number <= len(candidates):
        raise InputError([Problem(file="arguments", field="selector", message=f"{number} is not between 1 and "
                                                                               f"{len(candidates)}")])
    return found.select(candidates[number - 1].tags)


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` (never replacing one that appeared meanwhile), whole or not at all."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise InputError([Problem(file=str(path),
                                  message="already exists; failover init never overwrites a config")]) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
