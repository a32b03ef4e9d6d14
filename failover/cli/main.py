"""The ``failover`` command: command modules composed here, and the one place where errors
become exit codes (DESIGN.md). A traceback is shown only with ``--debug``."""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer

from failover.cli import demo, inventory, snapshots
from failover.errors import ExitCode, FailoverError

app = typer.Typer(
    name="failover",
    help="Get a service off a cloud provider that terminated its account, and back online elsewhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for module in (inventory, snapshots, demo):
    app.add_typer(module.app)


def _debug(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("FAILOVER_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run(argv))


def run(argv: list[str]) -> int:
    debug = _debug(argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="failover", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except FailoverError as exc:
        if debug:
            traceback.print_exc()
        for line in exc.lines():
            _err(line)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _err("interrupted")
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        _err("interrupted")
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        # usage errors (unknown option, missing argument): invalid input
        _err(exc.format_message() if not isinstance(exc, click.UsageError) or exc.ctx is None else _usage(exc))
        return ExitCode.INVALID_INPUT if isinstance(exc, click.UsageError) else exc.exit_code
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return ExitCode.FAILED


def _usage(exc: click.UsageError) -> str:
    return f"{exc.ctx.command_path}: {exc.format_message()}"


def _err(line: str) -> None:
    sys.stderr.write(f"failover: error: {line}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
