"""``failover evacuate --target T --deadline WHEN``: everything that cannot be rebuilt off the
source before the deadline, in order of importance (:mod:`failover.evacuate`).

People get a live view on stderr (per bucket: objects and bytes done and left; the rate, the
ETA and the margin to the deadline; which buckets will not make it), or plain lines when
stderr is not a terminal. With ``--json``, stdout carries one JSON object per line: the
events as they happen, the last one the summary (``"event": "summary"``).

Exit codes: 0 everything of the last listing is on the target and every part succeeded (and
the ``--then`` run, if any, succeeded); 1 something is missing at the deadline (the summary's
``missing`` names it), a part failed, or the ``--then`` run failed; 2 invalid input, nothing
done; 3 the service's lock is held; 4 the target (or, with no snapshot yet, the source) cannot
be reached or refuses the credentials; 130 interrupted (what was copied is recorded: start it
again to continue).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from typing import Annotated, Any

import typer
from rich.filesize import decimal
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from failover.cli.common import ConfigOption, console, load, open_state, table_console
from failover.cli.run import RunView
from failover.errors import InputError, OperationFailed, Problem
from failover.evacuate import EvacuateOptions, evacuate, parse_deadline
from failover.evacuate.cluster import ClusterRunner
from failover.fanout import DaskExecutor, StorageEnds
from failover.playbook import load_playbook
from failover.replicate import MAX_WORKERS
from failover.replicate.buckets import DEFAULT_WORKERS

app = typer.Typer()

SCHEDULER = re.compile(r"^tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


@app.command("evacuate")
def evacuate_command(
    target: Annotated[str, typer.Option("--target", "-t", help="The target profile of the config to evacuate to.")],
    deadline: Annotated[str, typer.Option(
        "--deadline", metavar="WHEN",
        help="When the source goes away: an ISO-8601 time with its offset (2026-12-07T18:00:00+01:00) or a duration "
             "from now (20h, 90m, 1h30m).")],
    then: Annotated[str | None, typer.Option(
        "--then", metavar="PLAYBOOK", show_default=False,
        help="Run this playbook (a file or a built-in name, e.g. standard) when the deadline passes or the source "
             "stops answering, whichever comes first.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="ADDRESS", show_default=False,
        help="Copy objects on this Dask distributed cluster (tcp://HOST:8786) instead of local threads.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=MAX_WORKERS,
                                         help="Objects copied at once.")] = DEFAULT_WORKERS,
    config_file: ConfigOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines on stdout: the events, then the summary.")] = False,
) -> None:
    """Evacuate before a deadline: snapshot, DNS zones, database dumps, then buckets by priority,
    newest objects first, in passes until the deadline; then optionally run a playbook."""
    when = parse_deadline(deadline)
    if scheduler is not None:
        check_scheduler(scheduler)
    config = load(config_file)
    book = load_playbook(then, config=config, target=target) if then is not None else None
    options = EvacuateOptions(target=target, deadline=when, then=book, workers=workers)
    with contextlib.ExitStack() as stack:
        runner = None
        if scheduler is not None:
            ends = StorageEnds.of(config, target)  # a profile without storage: exit 2 before the cluster is asked
            executor = DaskExecutor(scheduler)
            stack.callback(executor.close)
            runner = lambda copier, workers, read: ClusterRunner(executor, ends)  # noqa: E731
        store = stack.enter_context(open_state(config))
        view = stack.enter_context(EventView(json_out))
        result = evacuate(config, options, view, store=store, observer=RunView() if book is not None else None,
                          runner=runner)
    document = result.document
    if json_out:
        _json_line(document)
    print_summary(document)
    if not result.ok:
        raise OperationFailed(failure_line(document))


def check_scheduler(address: str) -> None:
    """A Dask scheduler's address, checked before anything is read."""
    if not SCHEDULER.match(address):
        raise InputError([Problem(file="arguments", field="--scheduler",
                                  message=f"{address!r} is not a scheduler address like tcp://HOST:8786")])


def failure_line(document: dict[str, Any]) -> str:
    parts = []
    if document["missing"]:
        parts.append("missing at the deadline: " + ", ".join(
            f"{item['bucket']} ({item['objects']} objects, {_size(item['bytes'])})" for item in document["missing"]))
    parts += document["failures"]
    then = document.get("then")
    if then and then["status"] != "succeeded":
        parts.append(f"--then {then['playbook']}: run {then['run']} {then['status']}")
    return "evacuation incomplete: " + "; ".join(parts)


# -- showing it -------------------------------------------------------------------------------

def _json_line(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _size(size: int | float | None) -> str:
    return "?" if size is None else decimal(int(size)).replace(" bytes", " B").replace(" byte", " B")


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    sign = "-" if value < 0 else ""
    value = abs(value)
    hours, rest = divmod(int(value), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}h{minutes:02d}m" if hours else f"{sign}{minutes}m{seconds:02d}s" if minutes else f"{sign}{seconds}s"


class EventView:
    """The evacuation's events: JSON lines on stdout with ``--json``; for people, a live table on
    a terminal, plain lines for the notable events otherwise."""

    def __init__(self, json_out: bool) -> None:
        self.json_out = json_out
        self.live = console.is_terminal
        self._display: Live | None = None
        self._lock = threading.Lock()
        self._latest: dict[str, Any] | None = None
        self._started = time.monotonic()

    def __enter__(self) -> EventView:
        if self.live:
            self._display = Live(self, console=console, refresh_per_second=4, transient=True)
            self._display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def emit(self, event: dict[str, Any]) -> None:
        if self.json_out:
            _json_line(event)
        name = event["event"]
        if name in ("progress", "planned"):
            with self._lock:
                self._latest = event
        line = self._line(event)
        if line is not None:
            console.print(line)

    def _line(self, event: dict[str, Any]) -> str | None:
        name = event["event"]
        if name == "snapshot":
            how = "fresh" if event["fresh"] else f"the latest stored, taken {event['taken_at']} (the source does not answer)"
            return f"snapshot {escape(event['snapshot'])}: {escape(how)}"
        if name == "source_gone":
            return f"[yellow]the source does not answer: {escape(str(event['reason']))}[/]"
        if name == "late":
            short = ", ".join(f"{item['bucket']} ({item['objects_short']} objects, {_size(item['bytes_short'])})"
                              for item in event["short"])
            return (f"[red]at {_size(event['rate_bytes_per_s'])}/s the ETA {event['eta']} is "
                    f"{_seconds(-event['margin_s'])} past the deadline; will not make it: {escape(short)}[/]")
        if name == "on_time":
            return f"[green]on time again: ETA {event['eta']}, margin {_seconds(event['margin_s'])}[/]"
        if name == "part_skipped":
            return f"[yellow]{event['part']} skipped: {escape(event['reason'])}[/]"
        if name in ("zones", "databases") and event["failures"]:
            return f"[red]{escape('; '.join(event['failures']))}[/]"
        if name == "pass_done" and not self.live:
            return f"pass {event['pass']}: copied {event['copied']} objects"
        if name == "planned" and not self.live:
            todo = ", ".join(f"{item['bucket']} {item['objects_left']} ({_size(item['bytes_left'])})"
                             for item in event["buckets"] if item["objects_left"])
            return f"pass {event['pass']}: to copy: {escape(todo) or 'nothing'}"
        if name == "deadline":
            return f"deadline reached after {event['passes']} pass(es)"
        if name == "then_started":
            return f"running playbook {escape(event['playbook'])} ({event['reason'].replace('_', ' ')})"
        return None

    def __rich__(self) -> Table:
        with self._lock:
            latest = self._latest
        elapsed = time.monotonic() - self._started
        table = Table(title=f"evacuating, {_seconds(elapsed)}", title_justify="left")
        for column in ("bucket", "objects done", "objects left", "bytes done", "bytes left"):
            table.add_column(column, justify="left" if column == "bucket" else "right")
        if latest is None:
            return table
        rows = latest.get("parts") or latest.get("buckets") or []
        short = {item["bucket"] for item in latest.get("short", [])}
        for row in rows:
            name = escape(row["bucket"]) + (" [red](will not make it)[/]" if row["bucket"] in short else "")
            table.add_row(name, str(row.get("objects_done", 0)), str(row["objects_left"]),
                          _size(row.get("bytes_done", 0)), _size(row["bytes_left"]))
        margin = latest.get("margin_s")
        table.caption = (f"rate {_size(latest.get('rate_bytes_per_s'))}/s, ETA {latest.get('eta') or '?'}, "
                         f"deadline {latest['deadline']}, margin {_seconds(margin)}")
        return table


def print_summary(document: dict[str, Any]) -> None:
    table = Table(title="Evacuation", title_justify="left")
    for column in ("bucket", "objects", "size", "copied", "unchanged", "adopted", "refused", "failed", "missing"):
        table.add_column(column, justify="left" if column == "bucket" else "right")
    for row in document["buckets"]:
        label = escape(row["bucket"]) if row["complete"] else f"[red]{escape(row['bucket'])}[/]"
        table.add_row(label, str(row["objects"]), _size(row["bytes"]), f"{row['copied']} ({_size(row['copied_bytes'])})",
                      str(row["unchanged"]), str(row["adopted"]), str(row["refused"]), str(row["failed"]),
                      f"{row['missing_objects']} ({_size(row['missing_bytes'])})")
    if document["buckets"]:
        table_console().print(table)
    outcome = "complete" if document["complete"] else "[red]incomplete[/]"
    console.print(f"Evacuation of {escape(document['service'])} to {escape(document['target'])} {outcome}: "
                  f"{document['passes']} pass(es), stopped by the {document['stopped_by'].replace('_', ' ')}.")
