"""``failover drill``: a real failover into isolated names, health-checked and timed, then torn
down; the measured recovery time is kept for ``check`` and a report written to the state."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from failover.cli.common import ConfigOption, JsonOption, console, open_state, print_json, table_console
from failover.cli.run import (
    ParallelismOption,
    PlaybookArgument,
    RunView,
    SnapshotOption,
    TargetOption,
    VarOption,
    _inputs,
)
from failover.cli.runs import styled
from failover.drill import DEFAULT_PREFIX, Drill, DrillResult, check_drill_prefix
from failover.engine import DEFAULT_PARALLELISM
from failover.errors import Interrupted, OperationFailed
from failover.report import differences_text, duration, write_reports

app = typer.Typer()

PrefixOption = Annotated[
    str, typer.Option("--prefix", help="The drill's names: nodes <prefix>-<service>-..., zones <prefix>.<zone>.")
]


@app.command()
def drill(
    playbook: PlaybookArgument,
    target: TargetOption,
    prefix: PrefixOption = DEFAULT_PREFIX,
    var: VarOption = None,
    parallelism: ParallelismOption = DEFAULT_PARALLELISM,
    snapshot: SnapshotOption = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """A real failover into isolated names, health-checked and timed, then torn down (always); writes a report."""
    prefix = check_drill_prefix(prefix)
    config, book = _inputs(config_file, playbook, var, target)
    with open_state(config) as store:
        run = Drill(store, config, book, target=target, prefix=prefix, parallelism=parallelism, snapshot=snapshot,
                    observer=RunView())
        try:
            result = run.run(write_report=lambda done: write_reports(config.state_dir, done))
        except Interrupted:
            if run.result is not None:
                _print(run.result, json_out)
            raise
    _print(result, json_out)
    if not result.ok:
        raise OperationFailed(f"drill {result.record.id} {result.record.status}: {result.record.error}")


def _print(result: DrillResult, json_out: bool) -> None:
    if json_out:
        print_json(result.to_dict())
    else:
        print_drill(result)
    if result.report_html is not None:
        console.print(f"report: {escape(str(result.report_html))} (and {escape(result.report_markdown.name)})")


def print_drill(result: DrillResult) -> None:
    record = result.record
    table = Table(title=f"Drill {record.id} of {escape(record.playbook)} on {escape(record.target)} "
                        f"(prefix {escape(record.prefix)}, run {record.run_id})", title_justify="left")
    for column in ("step", "action", "status", "start", "duration"):
        table.add_column(column)
    for step in result.steps:
        start = "" if step.offset_s is None else f"+{step.offset_s:.1f}s"
        table.add_row(escape(step.id), step.action, styled(step.status), start, duration(step.duration_s))
    table_console().print(table)
    objective = duration(result.rto_objective_s)
    if record.rto_s is None:
        console.print(f"recovery time: not measured (the run did not succeed); objective {objective}")
    else:
        verdict = "[green]within[/]" if result.rto_met else "[red]over[/]"
        console.print(f"recovery time: {duration(record.rto_s)}, {verdict} the objective of {objective}")
    console.print(f"teardown: {duration(record.teardown_s)}")
    if record.clean:
        console.print("target: [green]as before the drill[/]")
    elif record.clean is None:
        console.print("target: [red]could not be listed after the teardown[/]")
    else:
        console.print(f"target: [red]{len(result.differences)} differences from before the drill[/]")
        for line in differences_text(result):
            console.print(f"  {escape(line)}")
    console.print(f"drill {record.id}: {styled(record.status)}")
