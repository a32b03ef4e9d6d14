"""The real ``failover`` command as the CLI tests run it, and what a run of it gives back."""

from __future__ import annotations

import sys
from dataclasses import dataclass

FAILOVER = [sys.executable, "-m", "failover.cli.main"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
