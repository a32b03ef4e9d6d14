"""``failover run`` killed with SIGKILL at random instants spread over the whole run, then
``failover resume``: the run succeeds, no node exists twice, no object is missing, DNS
names the new nodes. Each trial is rolled back, leaving the target as it was for the next."""

from __future__ import annotations

import random
import re
import time
from datetime import datetime

import pytest
from e2ekit import (
    TARGET_NODES,
    WEB_1,
    ZONE,
    assert_nothing_left,
    assert_objects_copied,
    inventory,
    node_counts,
    rollback,
    run_standard,
    started_world,
)

from failover.testing.world import EmulatedWorld

TRIALS = 10
ANNOUNCED = re.compile(r"^Run (run-\S+) ")


@pytest.fixture(scope="module")
def world():
    with started_world(storage="azurite") as world:
        inventory(world)
        # The first EC2 call loads moto's catalogue of images (seconds): not part of a run.
        planned = world.failover("plan", "standard", "--target", world.target, *world.run_vars)
        assert planned.code == 0, planned.stderr
        yield world


@pytest.fixture(scope="module")
def run_time(world: EmulatedWorld) -> float:
    """How long a whole run takes here, from the journal (a first run, rolled back)."""
    ran = run_standard(world)
    assert ran.code == 0, ran.stderr
    document = ran.json()
    rollback(world, document["run_id"])
    return (_time(document["ended_at"]) - _time(document["started_at"])).total_seconds()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def killed_run(world: EmulatedWorld, seconds: float) -> str:
    """Starts ``failover run standard``, kills it with SIGKILL ``seconds`` after it announced
    its run; the run's id."""
    process = world.start_failover("run", "standard", "--target", world.target, "--yes", *world.run_vars)
    run_id = None
    for line in process.stderr:
        if match := ANNOUNCED.match(line):
            run_id = match.group(1)
            break
    time.sleep(seconds)
    process.kill()
    _, err = process.communicate(timeout=60)
    assert run_id is not None, f"the run was never announced (exit {process.returncode}): {err}"
    return run_id


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_at_a_random_instant_then_resumed(world: EmulatedWorld, run_time: float, trial: int) -> None:
    chance = random.Random(trial)
    instant = (trial + chance.random()) / TRIALS * run_time  # every part of the run gets hit
    run_id = killed_run(world, instant)
    killed = f"killed {instant:.2f}s into a {run_time:.2f}s run"

    resumed = world.failover("resume", run_id, "--json")

    assert resumed.code == 0, f"{killed}: {resumed.stderr}"
    assert resumed.json()["status"] == "succeeded", killed
    assert node_counts(world) == {name: 1 for name in TARGET_NODES}, killed
    assert_objects_copied(world)
    assert world.dns(ZONE, "A") == [world.target_nodes()[WEB_1].public_ip], killed

    rollback(world, run_id)
    assert_nothing_left(world)
