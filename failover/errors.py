"""The one exception hierarchy of failover.

Adapters translate botocore and libcloud errors into these; the CLI maps them to the
exit codes of DESIGN.md in exactly one place (``failover.cli.main``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    INVALID_INPUT = 2
    LOCKED = 3
    PROVIDER = 4
    INTERRUPTED = 130


class NothingToDo(Exception):
    """Raised by an action's ``plan`` or ``apply`` when the step has nothing to do for this service
    (no nodes to cut over to, nothing to restore): the step is skipped with this reason, the run
    goes on. Not an error: ``plan`` predicts the skip that ``run`` makes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FailoverError(Exception):
    """Base of every error failover reports to its user."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def lines(self) -> list[str]:
        """What the CLI prints, one line each."""
        return [str(self)]


class OperationFailed(FailoverError):
    """The operation ran and failed (exit 1)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, and where: ``file:line: field.path: message``."""

    file: str
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputError(FailoverError):
    """Invalid arguments, config, playbook or manifest (exit 2). Nothing was changed.

    Carries every problem found, so a user fixes them all in one go.
    """

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, problems: list[Problem] | str, *, where: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(file=where or "input", message=problems)]
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ConfigError(InputError):
    pass


class PlaybookError(InputError):
    pass


class ManifestError(InputError):
    pass


class NotFound(InputError):
    """A snapshot, run or playbook named by the user does not exist."""


class LockHeld(FailoverError):
    """Another run holds the service's lock (exit 3)."""

    exit_code = ExitCode.LOCKED


class NotReady(OperationFailed):
    """``check`` found the service not ready to fail over (exit 1). Its report, printed
    already, says why: nothing more is printed."""

    def lines(self) -> list[str]:
        return []


class ProviderError(FailoverError):
    """A provider could not be reached or refused the credentials (exit 4)."""

    exit_code = ExitCode.PROVIDER


class ProviderUnreachable(ProviderError):
    pass


class CredentialsRefused(ProviderError):
    pass


class TransientError(FailoverError):
    """Throttling, 5xx, a reset connection: worth retrying after ``retry_after`` seconds."""

    def __init__(self, message: str, *, where: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, where=where)
        self.retry_after = retry_after


class Interrupted(FailoverError):
    """Ctrl-C: the journal is consistent and ``resume`` continues (exit 130)."""

    exit_code = ExitCode.INTERRUPTED
