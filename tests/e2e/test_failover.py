"""The issue's acceptance test: inventory, plan, run and rollback of the standard playbook,
with the real CLI, from a moto AWS account onto emulated targets (EC2 on moto, Azurite /
S3 on moto / local disk, PowerDNS), checked on the emulators themselves."""

from __future__ import annotations

import pytest
from e2ekit import (
    BUCKET,
    TARGET_NODES,
    WEB_1,
    ZONE,
    assert_failed_over,
    assert_nothing_left,
    assert_objects_copied,
    inventory,
    node_counts,
    planned_sizes,
    rollback,
    run_standard,
    started_world,
    step,
)

WIDE = {"COLUMNS": "400"}  # the plan's table unwrapped (stderr is no terminal)


@pytest.mark.slow
def test_inventory_plan_run_and_rollback_onto_azurite() -> None:
    with started_world(storage="azurite") as world:
        inventory(world)

        planned = world.failover("plan", "standard", "--target", world.target, *world.run_vars, env=WIDE)
        assert planned.code == 0, planned.stderr
        sizes = planned_sizes(world.failover("plan", "standard", "--target", world.target, "--json", *world.run_vars).json())
        assert set(sizes) == TARGET_NODES
        for name, size in sizes.items():  # the table shows each node with its mapped size
            assert any(name in line and f"size {size}" in line for line in planned.stderr.splitlines()), name
        assert node_counts(world) == {}, "plan created something"

        ran = run_standard(world)
        assert ran.code == 0, ran.stderr
        document = ran.json()
        assert_failed_over(world, document, sizes)
        assert step(document, "data")["outputs"][BUCKET]["copied"] == len(world.source_objects[BUCKET])
        assert world.app.requests >= 1  # the health check asked the application

        rollback(world, document["run_id"])
        assert_nothing_left(world)
        assert world.dns(ZONE, "A") == []


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["s3", "local"])
def test_run_and_rollback_onto_other_storage(storage: str) -> None:
    with started_world(storage=storage) as world:
        inventory(world)

        ran = run_standard(world)
        assert ran.code == 0, ran.stderr
        document = ran.json()
        assert document["status"] == "succeeded"
        assert node_counts(world) == {name: 1 for name in TARGET_NODES}
        assert_objects_copied(world)
        assert world.dns(ZONE, "A") == [world.target_nodes()[WEB_1].public_ip]

        rollback(world, document["run_id"])
        assert_nothing_left(world)
