"""Crash tests: a ``rollback`` of a finished run killed with SIGKILL at instants spread over it,
then repeated: every apply undone exactly once (a killed ``run``: tests/engine/test_crash.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from crashkit import RUN_TIME, STEPS, kill_after
from enginekit import Records, cli_env, failover, write_config, write_playbook


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(8))
def test_a_rollback_killed_at_any_instant_then_repeated_undoes_each_step_once(trial: int, tmp_path: Path) -> None:
    chance = random.Random(1000 + trial)
    write_config(tmp_path)
    env = cli_env(tmp_path, tmp_path / "records.log")
    records = Records(tmp_path / "records.log")
    ran = failover("run", str(write_playbook(tmp_path, *STEPS)), "--target", "t", "--yes", "--json", env=env)
    run_id = json.loads(ran.stdout)["run_id"]

    kill_after((trial + chance.random()) / 8 * RUN_TIME, ["rollback", run_id], env)
    rolled = failover("rollback", run_id, "--json", env=env)

    assert rolled.code == 0, rolled.stderr
    assert json.loads(rolled.stdout)["status"] == "rolled_back"
    assert records.count("undo", run_id) == records.count("apply", run_id) == {step["id"]: 1 for step in STEPS}
