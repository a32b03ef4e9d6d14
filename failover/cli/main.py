"""The ``failover`` command: command modules composed here, and the one place where errors
become exit codes (DESIGN.md). A traceback is shown only with ``--debug``."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback

import typer

from failover.cli import check, demo, drill, inventory, playbooks, replicate, runs, snapshots
from failover.cli import run as run_commands
from failover.errors import ExitCode, FailoverError, Interrupted
from failover.terminal import visible

app = typer.Typer(
    name="failover",
    help="Get a service off a cloud provider that terminated its account, and back online elsewhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for module in (inventory, snapshots, playbooks, run_commands, runs, replicate, check, drill, demo):
    app.add_typer(module.app)


def _debug(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("FAILOVER_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run(argv))


def run(argv: list[str]) -> int:
    debug = _debug(argv)
    command = typer.main.get_command(app)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupted) if in_main_thread else None
    try:
        # standalone: usage errors print their usage line and exit 2 (invalid input)
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
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)


def _interrupted(signum: int, frame: object) -> None:
    raise Interrupted("interrupted")


def _err(line: str) -> None:
    sys.stderr.write(f"failover: error: {visible(line)}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
