"""The ``failover`` command: command modules composed here, and the one place where errors
become exit codes (DESIGN.md). A traceback is shown only with ``--debug``."""

from __future__ import annotations

import signal
import sys
import traceback

import typer

from failover import signals
from failover.cli import (
    check,
    demo,
    drill,
    escrow,
    evacuate,
    init,
    inventory,
    playbooks,
    replicate,
    runs,
    snapshots,
    state,
)
from failover.cli import run as run_commands
from failover.cli.common import debug_requested
from failover.cli.completion import attach as attach_completion
from failover.cli.version import version_callback
from failover.errors import ExitCode, FailoverError
from failover.terminal import visible

app = typer.Typer(
    name="failover",
    help="Get a service off a cloud provider that terminated its account, and back online elsewhere.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.callback(invoke_without_command=True)(version_callback)
for module in (init, inventory, snapshots, playbooks, run_commands, runs, replicate, evacuate, check, drill, demo, state,
               escrow):
    app.add_typer(module.app)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run(argv))


def run(argv: list[str]) -> int:
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != "--debug"]  # taken here for every command, wherever it stands
    command = attach_completion(typer.main.get_command(app))
    try:
        # standalone: usage errors print their usage line and exit 2 (invalid input)
        with signals.handling(signals=(signal.SIGINT,)):
            command.main(args=argv, prog_name="failover", standalone_mode=True)
        return ExitCode.OK
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (ExitCode.OK if exc.code is None else ExitCode.FAILED)
    except FailoverError as exc:
        if debug:
            traceback.print_exc()
        for line in exc.lines():
            _err(line)
        return exc.exit_code
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return ExitCode.FAILED


def _err(line: str) -> None:
    sys.stderr.write(f"failover: error: {visible(line)}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
