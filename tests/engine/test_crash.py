"""Crash tests: the real ``failover run`` killed with SIGKILL at instants spread over the
whole run, then resumed: every step applied exactly once, and the run ends ``succeeded``.
The resume killed too: tests/engine/test_crash_resume.py; a killed ``rollback``:
tests/engine/test_crash_rollback.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from crashkit import TRIALS, killed_then_resumed


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(0, TRIALS, 2))
def test_killed_at_any_instant_then_resumed_applies_each_step_once(trial: int, tmp_path: Path) -> None:
    killed_then_resumed(trial, tmp_path)
