"""``failover runs`` and ``failover status``: what ran, and how each step went, from the journal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from failover.cli.common import ConfigOption, JsonOption, console, load, open_state, print_json, table_console
from failover.engine.journal import Journal

app = typer.Typer()

STATUS_STYLE = {
    "succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan", "pending": "dim",
    "skipped": "dim", "rolling_back": "yellow", "rolled_back": "magenta", "rollback_failed": "red",
}


@app.command()
def runs(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List the service's runs, oldest first."""
    config = load(config_file)
    with open_state(config) as store:
        found = Journal(store).runs(config.service)
    if json_out:
        print_json({"service": config.service, "runs": found})
        return
    if not found:
        console.print(f"No run of {config.service} yet: see `failover run`.")
        return
    table = Table(title=f"Runs of {config.service}", title_justify="left")
    for column in ("run", "playbook", "target", "status", "done", "started (UTC)", "took"):
        table.add_column(column, no_wrap=column in ("run", "started (UTC)"))
    for run in found:
        status = styled(run["status"]) + (" (dry run)" if run["dry_run"] else "") + _drill(run.get("drill_prefix"))
        table.add_row(run["run_id"], escape(run["playbook"]), run["target"], status, f"{run['steps_done']}/{run['steps']}",
                      run["started_at"][:19].replace("T", " "), _duration(run["started_at"], run["ended_at"]))
    table_console().print(table)


@app.command()
def status(
    run: Annotated[str, typer.Argument(help="Run id, an unambiguous prefix of one, or latest.")],
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """One run's steps: status, attempts, timings, outputs, errors."""
    config = load(config_file)
    with open_state(config) as store:
        journal = Journal(store)
        document = journal.document(journal.resolve_run(config.service, run))
    if json_out:
        print_json(document)
        return
    print_run(document)


def print_run(document: dict[str, Any]) -> None:
    """The human report of a run document, on stderr."""
    kind = "Dry run" if document["dry_run"] else "Run"
    console.print(f"{kind} [bold]{document['run_id']}[/] of {escape(document['playbook'])} on {document['target']}"
                  f"{_drill(document.get('drill_prefix'))}: "
                  f"{styled(document['status'])} ({_duration(document['started_at'], document['ended_at'])})")
    table = Table(title_justify="left")
    for column in ("step", "action", "status", "attempts", "duration", "created", "error"):
        table.add_column(column, no_wrap=column != "error")
    for step in document["steps"]:
        created = sum(1 for item in step["created"] if item["undone_at"] is None)
        table.add_row(escape(step["id"]), step["action"], styled(step["status"]), str(step["attempts"]),
                      _duration(step["started_at"], step["ended_at"]), str(created) if created else "",
                      escape(step["error"] or ""))
    table_console().print(table)
    if document["error"]:
        console.print(f"[red]{escape(document['error'])}[/]")


def _drill(prefix: str | None) -> str:
    return f" (drill {escape(prefix)})" if prefix else ""


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _duration(started: str | None, ended: str | None) -> str:
    if not started or not ended:
        return ""
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
