"""What the engine tells the person watching. The CLI's progress view overrides these;
by default only warnings are shown. Methods are called from worker threads too."""

from __future__ import annotations

import sys

from failover.playbook import Step
from failover.terminal import visible


class Observer:
    def run_started(self, run_id: str, steps: list[Step], *, phase: str) -> None:
        """``phase``: run, dry run, resume, rollback or plan."""

    def step_started(self, step_id: str) -> None:
        pass

    def step_retrying(self, step_id: str, error: str, wait: float) -> None:
        pass

    def step_log(self, step_id: str, message: str) -> None:
        pass

    def step_finished(self, step_id: str, status: str, error: str | None) -> None:
        pass

    def stopping(self, running: list[str]) -> None:
        """Ctrl-C: no new step starts; ``running`` are cancelled and waited for."""

    def run_ended(self) -> None:
        pass

    def warning(self, message: str) -> None:
        sys.stderr.write(f"failover: warning: {visible(message)}\n")
        sys.stderr.flush()
