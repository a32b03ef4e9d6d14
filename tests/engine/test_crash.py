"""Crash tests: the real ``failover run`` killed with SIGKILL at instants spread over the
whole run (sometimes its ``resume`` too), then resumed: every step applied exactly once,
and the run ends ``succeeded``. A killed ``rollback``: tests/engine/test_crash_rollback.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from crashkit import RUN_TIME, STEPS, kill_after
from enginekit import Records, cli_env, failover, write_config, write_playbook

TRIALS = 24


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_at_any_instant_then_resumed_applies_each_step_once(trial: int, tmp_path: Path) -> None:
    chance = random.Random(trial)
    write_config(tmp_path)
    env = cli_env(tmp_path, tmp_path / "records.log")
    records = Records(tmp_path / "records.log")
    playbook = write_playbook(tmp_path, *STEPS)
    # Spread the instants over the whole run, so that every phase of it is hit.
    instant = (trial + chance.random()) / TRIALS * RUN_TIME

    run_id = kill_after(instant, ["run", str(playbook), "--target", "t", "--yes", "--parallelism", "3"], env)
    assert run_id is not None
    if trial % 2:  # kill the resume too
        kill_after(chance.uniform(0, RUN_TIME), ["resume", run_id], env)
    resumed = failover("resume", run_id, "--json", env=env)

    assert resumed.code == 0, resumed.stderr
    document = json.loads(failover("status", run_id, "--json", env=env).stdout)
    assert document["status"] == "succeeded"
    assert {step["status"] for step in document["steps"]} == {"succeeded"}
    assert records.count("apply", run_id) == {step["id"]: 1 for step in STEPS}, f"killed after {instant:.3f}s"
    assert all(len(step["created"]) == 1 for step in document["steps"])
