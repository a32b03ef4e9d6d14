"""``failover plan``, ``run``, ``resume`` and ``rollback``: a playbook executed on the target
by the engine, journaled in the state store, with a live view of its steps on stderr."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from failover.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    load,
    open_state,
    print_json,
    print_left_behind,
    print_unknown,
)
from failover.cli.runs import print_run, styled
from failover.config import Config
from failover.engine import DEFAULT_PARALLELISM, Engine, Observer, Plan, RunStatus
from failover.engine.journal import Journal, RunRecord
from failover.errors import InputError, Interrupted, OperationFailed, Problem
from failover.playbook import Playbook, Step, load_playbook, parse_var_args
from failover.state import StateStore

app = typer.Typer()

PlaybookArgument = Annotated[str, typer.Argument(help="A playbook file, or the name of a built-in playbook.")]
RunArgument = Annotated[str, typer.Argument(help="Run id, an unambiguous prefix of one, or latest.")]
TargetOption = Annotated[str, typer.Option("--target", "-t", help="The target profile of the config to fail over to.")]
SnapshotOption = Annotated[
    str | None, typer.Option("--snapshot", help="The snapshot to work from (default: the latest).", show_default=False)
]
VarOption = Annotated[
    list[str] | None, typer.Option("--var", help="Set or override a playbook var: KEY=VALUE (repeatable).", show_default=False)
]
ParallelismOption = Annotated[int, typer.Option("--parallelism", "-p", min=1, help="At most this many steps at once.")]
RollbackOption = Annotated[bool, typer.Option("--rollback-on-failure", help="Undo what the run created if it fails.")]
CREATING = ("create", "update", "delete")
REFUSED = "refuse"  # an item an action will not carry (shown before the confirmation too)


@app.command()
def plan(
    playbook: PlaybookArgument,
    target: TargetOption,
    snapshot: SnapshotOption = None,
    var: VarOption = None,
    parallelism: ParallelismOption = DEFAULT_PARALLELISM,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Resolve every step against the snapshot and the target (read-only): what would be created or changed."""
    config, book = _inputs(config_file, playbook, var, target)
    with open_state(config) as store:
        result = Engine(store, config, observer=RunView()).plan(book, target=target, snapshot=snapshot, parallelism=parallelism)
    if json_out:
        print_json(result.to_dict())
    else:
        print_plan(result, only_changes=False)
        print_left_behind(result.left_behind, config.readiness.accept_unsupported)
        print_unknown(result.unknown)
    _fail_on_plan_errors(result)


@app.command()
def run(
    playbook: PlaybookArgument,
    target: TargetOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate, plan and check each step; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    parallelism: ParallelismOption = DEFAULT_PARALLELISM,
    var: VarOption = None,
    snapshot: SnapshotOption = None,
    rollback_on_failure: RollbackOption = False,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Execute a playbook on the target; prints the run id. Journaled, resumable, rolled back on request."""
    asking = not dry_run and not yes
    if asking and not sys.stdin.isatty():
        raise InputError([Problem(file="arguments", field="--yes",
                                  message="no terminal to confirm on: pass --yes to run without confirmation")])
    config, book = _inputs(config_file, playbook, var, target)
    with open_state(config) as store:
        view = RunView()
        engine = Engine(store, config, observer=view)
        if asking:
            _confirm(engine.plan(book, target=target, snapshot=snapshot, parallelism=parallelism), config)
        _report(store, view, json_out, lambda: engine.start(
            book, target=target, snapshot=snapshot, parallelism=parallelism, dry_run=dry_run,
            rollback_on_failure=rollback_on_failure,
        ))


@app.command()
def resume(
    run: RunArgument,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", "-p", min=1, help="At most this many steps at once (default: the run's).")
    ] = None,
    rollback_on_failure: RollbackOption = False,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Continue a stopped run: steps done are skipped, the others applied (again, idempotently)."""
    config = load(config_file)
    with open_state(config) as store:
        view, engine, run_id = _stored_run(store, config, run)
        _report(store, view, json_out,
                lambda: engine.resume(run_id, parallelism=parallelism, rollback_on_failure=rollback_on_failure))


@app.command()
def rollback(
    run: RunArgument,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Undo what a run created, in reverse dependency order; safe to repeat."""
    config = load(config_file)
    with open_state(config) as store:
        view, engine, run_id = _stored_run(store, config, run)
        _report(store, view, json_out, lambda: engine.rollback(run_id), ok=RunStatus.ROLLED_BACK)


def _stored_run(store: StateStore, config: Config, run: str) -> tuple[RunView, Engine, str]:
    """The engine that shows its progress in a new view, and the run id ``run`` names."""
    view = RunView()
    engine = Engine(store, config, observer=view)
    return view, engine, engine.journal.resolve_run(config.service, run)


def _inputs(config_file: Any, playbook: str, var: list[str] | None, target: str) -> tuple[Config, Playbook]:
    config = load(config_file)
    return config, load_playbook(playbook, vars_override=parse_var_args(var or []), config=config, target=target)


def _report(
    store: StateStore, view: RunView, json_out: bool, execute: Callable[[], RunRecord], *, ok: RunStatus = RunStatus.SUCCEEDED
) -> None:
    """Runs ``execute`` and prints the run document, also when interrupted; fails unless the
    run ended ``ok``."""
    try:
        record = execute()
    except Interrupted:
        if view.run_id is not None:
            _print_document(Journal(store).document(view.run_id), json_out)
        raise
    _print_document(Journal(store).document(record.id), json_out)
    if record.status is not ok:
        raise OperationFailed(_failure_line(record))


def _print_document(document: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(document)
    else:
        print_run(document)


def _failure_line(record: RunRecord) -> str:
    hint = {
        RunStatus.FAILED: f"`failover resume {record.id}` retries what did not succeed, `failover rollback {record.id}` undoes it",
        RunStatus.ROLLED_BACK: "what it created was rolled back",
        RunStatus.INTERRUPTED: f"`failover resume {record.id}` continues it",
        RunStatus.ROLLBACK_FAILED: f"fix the cause and `failover rollback {record.id}` again",
    }.get(record.status, "")
    return f"run {record.id} {record.status}: {record.error}" + (f"; {hint}" if hint else "")


def _confirm(result: Plan, config: Config) -> None:
    print_plan(result, only_changes=True)
    _fail_on_plan_errors(result)
    changes = sum(1 for step in result.steps for c in step.changes if c.operation in CREATING)
    deferred = sum(1 for step in result.steps if step.status == "deferred")
    question = f"Run {result.playbook} on {result.target} for {config.service}: {changes} changes"
    question += f" and {deferred} steps known only when they run?" if deferred else "?"
    if not typer.confirm(question, default=False, err=True):
        raise OperationFailed("not confirmed: nothing was changed")


def _fail_on_plan_errors(result: Plan) -> None:
    if result.failed:
        ids = ", ".join(step.id for step in result.failed)
        raise OperationFailed(f"the plan failed at {ids}; nothing was changed")


def print_plan(result: Plan, *, only_changes: bool) -> None:
    snapshot = result.snapshot or "no snapshot"
    table = Table(title=f"Plan of {escape(result.playbook)} on {result.target} (from {snapshot})", title_justify="left")
    for column in ("step", "action", "change", "kind", "name", "detail"):
        table.add_column(column)
    for step in result.steps:
        changes = [c for c in step.changes if c.operation in (*CREATING, REFUSED) or not only_changes]
        if step.status != "planned":
            table.add_row(escape(step.id), step.action, styled(step.status), "", "", escape(step.note or ""))
        for change in changes:
            table.add_row(escape(step.id), step.action, _operation(change.operation), change.kind,
                          escape(change.name), escape(change.detail))
    console.print(table)


def _operation(operation: str) -> str:
    styles = {"create": "[green]create[/]", "update": "[yellow]update[/]", "delete": "[red]delete[/]",
              REFUSED: "[red]refuse[/]"}
    return styles.get(operation, operation)


@dataclass
class _StepRow:
    action: str
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None
    retries: int = 0
    error: str | None = None


class RunView(Observer):
    """Steps, state, elapsed time and retries, live on stderr when it is a terminal; plain
    lines for the notable events (ends, retries, failures) otherwise. What actions log is
    printed either way."""

    MAX_ROWS = 25

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.live = console.is_terminal
        self._rows: dict[str, _StepRow] = {}
        self._phase = "run"
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._display: Live | None = None

    def run_started(self, run_id: str, steps: list[Step], *, phase: str) -> None:
        self.run_ended()
        with self._lock:
            self._phase = phase
            self._rows = {step.id: _StepRow(step.action) for step in steps}
            self._started = time.monotonic()
        if phase != "plan":
            self.run_id = run_id
            console.print(f"{phase.capitalize()} [bold]{run_id}[/] ({len(steps)} steps)")
        if self.live:
            self._display = Live(self, console=console, refresh_per_second=8, transient=True)
            self._display.start()

    def run_ended(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def step_started(self, step_id: str) -> None:
        with self._lock:
            row = self._rows[step_id]
            row.state, row.started, row.ended = ("undoing" if self._phase == "rollback" else "running"), time.monotonic(), None

    def step_retrying(self, step_id: str, error: str, wait: float) -> None:
        with self._lock:
            self._rows[step_id].retries += 1
        self._line(f"step {step_id}: {error}; retrying in {wait:.1f}s")

    def step_log(self, step_id: str, message: str) -> None:
        console.print(escape(f"step {step_id}: {message}"))  # what an action says is news, live view or not

    def step_finished(self, step_id: str, status: str, error: str | None) -> None:
        with self._lock:
            row = self._rows[step_id]
            row.state, row.ended, row.error = str(status), time.monotonic(), error
            elapsed = row.ended - (row.started or row.ended)
        if self._phase != "plan" or error:
            self._line(f"step {step_id} {status} ({elapsed:.1f}s)" + (f": {error}" if error else ""))

    def stopping(self, running: list[str]) -> None:
        waiting = f"; waiting for {', '.join(running)} (Ctrl-C again to stop waiting)" if running else ""
        console.print(f"[yellow]stopping: no new step starts{escape(waiting)}[/]")

    def warning(self, message: str) -> None:
        console.print(f"[yellow]failover: warning: {escape(message)}[/]")

    def _line(self, text: str) -> None:
        if not self.live:
            console.print(escape(text))

    def __rich__(self) -> Table:
        now = time.monotonic()
        with self._lock:
            rows = list(self._rows.items())
        counts: dict[str, int] = {}
        for _, row in rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        table = Table(title=f"{self._phase}: {summary}, {now - self._started:.0f}s", title_justify="left")
        for column in ("step", "action", "state", "elapsed", "retries"):
            table.add_column(column)
        if len(rows) > self.MAX_ROWS:  # only what is moving, or went wrong
            rows = [(i, r) for i, r in rows if r.state in ("running", "undoing", "failed", "interrupted") or r.retries]
        for step_id, row in rows[: self.MAX_ROWS]:
            elapsed = "" if row.started is None else f"{(row.ended or now) - row.started:.1f}s"
            table.add_row(escape(step_id), row.action, styled(row.state), elapsed, str(row.retries or ""))
        return table
