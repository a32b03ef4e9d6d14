"""``failover check``: could the service fail over right now? Readiness for cron and CI.

Read-only everywhere: it reads the state store (the snapshot, the replication, dump and
drill records) and the target, never the source, so it answers the same with the AWS
account gone. Every check of :mod:`failover.checks` runs at once; the table goes to
stderr, ``--json`` prints one document on stdout, ``--junit-xml FILE`` writes a JUnit
report.

Exit codes: 0 ready (no check failed; warnings allowed); 1 not ready. A target that
cannot be reached or refuses the credentials is a failed check (1), not exit 4.
2: invalid input found before any check runs: the arguments (a malformed ``--var``, an
unknown ``--snapshot``, a PLAYBOOK that is neither a file nor a built-in playbook, a
``--junit-xml`` in a directory that does not exist), the config, or an unknown target
profile. A playbook that exists but does not validate is the failed check
``playbook-valid`` (1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from failover.checks.base import FAIL, PASS, WARN, CheckContext, ordered_checks
from failover.checks.junit import write_junit
from failover.checks.playbook_valid import require_playbook
from failover.checks.runner import Report, run_checks
from failover.cli.common import ConfigOption, JsonOption, MetricsOption, load, open_state, print_json, table_console
from failover.errors import ExitCode, InputError, NotFound, NotReady, Problem
from failover.metrics import check_path, write_check_metrics
from failover.playbook import parse_var_args
from failover.targets import Targets

app = typer.Typer()

DEFAULT_TIMEOUT_S = 300.0
STATUS_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red"}


@app.command()
def check(
    playbook: Annotated[str, typer.Argument(help="A playbook file, or the name of a built-in playbook.")],
    target: Annotated[str, typer.Option("--target", "-t", help="The target profile of the config to fail over to.")],
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", metavar="FILE", show_default=False,
                     help="Also write the result as JUnit XML (one test case per check; a warning passes)."),
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", help="Set or override a playbook var: KEY=VALUE (repeatable).", show_default=False),
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="The snapshot to check (default: the latest).", show_default=False)
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, metavar="SECONDS",
                            help="A check with no answer by then fails (a cron job never hangs on a silent target).")
    ] = DEFAULT_TIMEOUT_S,
    metrics: MetricsOption = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Readiness, read-only: is failover possible right now? Exit 0 ready, 1 not ready."""
    overrides = parse_var_args(var or [])
    config = load(config_file)
    targets = Targets(config, target)  # an unknown profile is an input error
    require_playbook(playbook)
    checks = ordered_checks()  # the built-ins and the plugins; a plugin that fails to import is an input error
    if junit_xml is not None and not junit_xml.parent.is_dir():
        raise InputError([Problem(file="arguments", field="--junit-xml",
                                  message=f"directory {junit_xml.parent} does not exist")])
    check_path(metrics)
    with open_state(config) as store:
        info = manifest = None
        try:
            info, manifest = store.load_snapshot(config.service, snapshot or "latest")
        except NotFound:
            if snapshot is not None:
                raise  # a snapshot the user named must exist
        ctx = CheckContext(config=config, target_name=target, targets=targets, store=store, playbook=playbook,
                           vars=overrides, snapshot=info, manifest=manifest)
        report = run_checks(ctx, checks, timeout_s=timeout)
        write_check_metrics(metrics, config, store, report, ExitCode.OK if report.ready else ExitCode.FAILED)
    if junit_xml is not None:
        write_junit(report, junit_xml)
    if json_out:
        print_json(report.to_dict())
    print_report(report)
    if not report.ready:
        failed = [result.name for result in report.checks if result.status == "fail"]
        raise NotReady(f"{config.service} is not ready to fail over to {target}: "
                       f"{len(failed)} check{'s' if len(failed) != 1 else ''} failed ({', '.join(failed)})")


def print_report(report: Report) -> None:
    out = table_console()
    snapshot = report.snapshot or "no snapshot"
    table = Table(title=f"Readiness of {escape(report.service)} on {escape(report.target)} ({escape(snapshot)})",
                  title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for result in report.checks:
        table.add_row(escape(result.name), f"[{STATUS_STYLE[result.status]}]{result.status}[/]", escape(result.detail))
    out.print(table)
    style = "bold green" if report.ready else "bold red"
    out.print(f"[{style}]{escape(report.summary())}[/]")
