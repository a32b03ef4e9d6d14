"""What the crash tests share (tests/engine/test_crash*.py): a playbook of ``record`` steps that
runs about RUN_TIME seconds, the real ``failover`` killed with SIGKILL some time after it announced
its run, and one trial of a killed run then resumed. Three files, so that pytest-xdist (``--dist
loadfile``) runs them side by side."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from enginekit import Records, cli_env, failover, record_step, start, wait_for_run_id, write_config, write_playbook

TRIALS = 24  # of a killed run: the even ones in test_crash.py, the odd ones (the resume killed too) in another file
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


def killed_then_resumed(trial: int, directory: Path) -> None:
    """A run killed at an instant of the trial's slice of the run (an odd trial kills its first resume
    too), then resumed: every step applied exactly once and the run ``succeeded``."""
    chance = random.Random(trial)
    write_config(directory)
    env = cli_env(directory, directory / "records.log")
    records = Records(directory / "records.log")
    playbook = write_playbook(directory, *STEPS)
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
