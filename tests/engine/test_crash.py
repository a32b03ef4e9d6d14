"""Crash tests: the real ``failover run`` killed with SIGKILL at instants spread over the
whole run (sometimes its ``resume`` too), then resumed: every step applied exactly once,
and the run ends ``succeeded``. Likewise a killed ``rollback``, repeated: every apply
undone exactly once."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from enginekit import Records, cli_env, failover, record_step, start, wait_for_run_id, write_config, write_playbook

TRIALS = 24
RUN_TIME = 0.3  # seconds from the run's first line to its end, about (measured: 0.27)
STEPS = (
    record_step("s1", sleep=0.05),
    record_step("s2", sleep=0.08),
    record_step("s3", ["s1"], sleep=0.05, transient_failures=1),
    record_step("s4", ["s1", "s2"], sleep=0.06),
    record_step("s5", ["s2"], sleep=0.04),
    record_step("s6", ["s3", "s4"], sleep=0.05),
    record_step("s7", ["s5"], sleep=0.07),
    record_step("s8", ["s6", "s7"], sleep=0.03),
)


def kill_after(seconds: float, args: list[str], env: dict[str, str]) -> str | None:
    """Starts ``failover ARGS``, kills it with SIGKILL ``seconds`` after it announced its run; the run id
    (None when it had nothing to do)."""
    process = start(*args, env=env)
    run_id = wait_for_run_id(process)
    time.sleep(seconds)
    process.kill()
    process.communicate(timeout=30)
    return run_id


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
