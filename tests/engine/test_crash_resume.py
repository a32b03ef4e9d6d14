"""Crash tests: the real ``failover run`` killed with SIGKILL at instants spread over the
whole run, its ``resume`` killed too, then resumed again: every step applied exactly once,
and the run ends ``succeeded`` (the odd trials of tests/engine/test_crash.py's series)."""

from __future__ import annotations

from pathlib import Path

import pytest
from crashkit import TRIALS, killed_then_resumed


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(1, TRIALS, 2))
def test_killed_at_any_instant_and_killed_again_while_resuming_then_resumed_applies_each_step_once(
        trial: int, tmp_path: Path) -> None:
    killed_then_resumed(trial, tmp_path)
