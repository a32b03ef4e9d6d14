"""What every command shares: options, the stderr console, JSON on stdout, progress."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from failover.config import Config, load_config
from failover.state import StateStore, open_store
from failover.terminal import visible


class SafeConsole(Console):
    """A console that never sends a control character of the data to the terminal: every
    string it prints (a line, a table's cells and titles) passes through :func:`visible`
    before rich reads it. Rich markup in data is still the caller's to escape
    (``rich.markup.escape``): only the caller knows which brackets are its own."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(visible(text), **options)


# People read stderr; stdout is for data.
console = SafeConsole(stderr=True, highlight=False, soft_wrap=True)
LOG_WIDTH = 160  # of tables when stderr is not a terminal (a log, cron mail, a CI job)


def table_console(width: int = LOG_WIDTH) -> Console:
    """The terminal's console; elsewhere one wide enough that no column (a run id, a
    detail) is cut or wrapped."""
    return console if console.is_terminal else SafeConsole(stderr=True, highlight=False, width=width)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $FAILOVER_CONFIG, else ./failover.yaml).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
MetricsOption = Annotated[
    Path | None,
    typer.Option("--metrics", metavar="FILE", show_default=False,
                 help="Also write Prometheus text-format metrics to FILE, atomically (for node_exporter's "
                      "textfile collector)."),
]


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere on the command line (every command takes it), or ``$FAILOVER_DEBUG``."""
    return "--debug" in argv or os.environ.get("FAILOVER_DEBUG", "") not in ("", "0")


def load(config_file: Path | None) -> Config:
    return load_config(config_file)


def open_state(config: Config) -> StateStore:
    return open_store(config)


def print_left_behind(counts: dict[str, int], accepted: list[str] | None = None) -> None:
    """The snapshot's unsupported resources per type, on stderr: what a failover leaves behind."""
    if not counts:
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="left behind (unsupported, not moved)", title_justify="left")
    table.add_column("type")
    table.add_column("count", justify="right")
    for resource_type, count in counts.items():
        note = " (accepted)" if accepted and resource_type in accepted else ""
        table.add_row(escape(resource_type) + note, str(count))
    console.print(table)


def print_unknown(unknown: dict[str, str]) -> None:
    """What the source's drivers could not tell (null in the snapshot, never guessed), on stderr."""
    if not unknown:
        return
    from rich.markup import escape

    console.print("not known from the source (null in the snapshot, not guessed):")
    for name, why in sorted(unknown.items()):
        console.print(f"  {escape(name)}: {escape(why)}")


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class Tasks:
    """Progress of many concurrent tasks on stderr: a bar and the task in flight, only on a terminal."""

    def __init__(self, title: str, total: int | None = None) -> None:
        self.title = title
        self.total = total
        self.started = time.monotonic()
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._running: list[str] = []

    def __enter__(self) -> Tasks:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[current]}", style="dim", markup=False),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total, current="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: str, label: str, detail: Any = None) -> None:
        if self._progress is None:
            return
        if event == "total":
            self._progress.update(self._task, total=detail)
        elif event == "start":
            self._running.append(visible(label))
        elif event == "done":
            if visible(label) in self._running:
                self._running.remove(visible(label))
            self._progress.advance(self._task)
        self._progress.update(self._task, current=", ".join(self._running[:3]))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def status(message: str) -> Iterator[None]:
    if console.is_terminal:
        with console.status(Text(visible(message))):
            yield
    else:
        yield
