"""Failover day: the AWS account is gone (its moto_server stopped) after the last
inventory. ``run`` works from the snapshot and the replicas; only ``sync-buckets`` needs
the source or a replica of each bucket."""

from __future__ import annotations

from collections import Counter

import pytest
from e2ekit import (
    BUCKET,
    DATABASE_NODE,
    LB_NODE,
    TARGET_NODES,
    ZONE,
    assert_failed_over,
    assert_nothing_left,
    assert_zone_copied,
    inventory,
    node_counts,
    rollback,
    run_standard,
    started_world,
    statuses,
    step,
)


@pytest.mark.slow
def test_without_a_replica_the_run_fails_at_sync_buckets_naming_the_bucket_and_its_container() -> None:
    with started_world(storage="azurite") as world:
        inventory(world)
        world.source.stop()

        ran = run_standard(world)

        assert ran.code == 1
        document = ran.json()
        assert document["status"] == "failed"
        error = step(document, "data")["error"]
        assert "no replica of bucket social-app-media in container replica-social-app-media" in error
        assert "failover replicate" in error
        assert "bucket social-app-media in container replica-social-app-media" in ran.stderr
        # What needs no source was done. Once a step failed the engine starts no other: the
        # health check and the cutover (after the data) never start, the nodes (after the
        # databases, for the endpoint rewrite) only if the databases were done before
        # sync-buckets failed, the firewall (after the nodes) only if the nodes were ready.
        ran_steps = statuses(document)
        nodes = ran_steps.pop("nodes")
        assert nodes in ("succeeded", "pending")
        after_nodes = ("succeeded", "pending") if nodes == "succeeded" else ("pending",)
        assert ran_steps.pop("firewall") in after_nodes
        assert ran_steps.pop("front-door") in after_nodes  # after the firewall
        assert ran_steps == {
            "data": "failed", "databases": "succeeded", "dns-copy": "succeeded",
            "healthy": "pending", "cutover": "pending",
        }
        built = TARGET_NODES if nodes == "succeeded" else {DATABASE_NODE}
        assert node_counts(world) - Counter({LB_NODE: 1}) == {name: 1 for name in built - {LB_NODE}}
        assert_zone_copied(world)
        assert world.dns(ZONE, "A") == [world.seeded["eip"]]  # copied, not cut over
        assert world.containers() == [world.container_name("failover-dumps")]

        rollback(world, document["run_id"])
        assert_nothing_left(world)


@pytest.mark.slow
def test_with_a_replica_made_by_replicate_the_run_succeeds_without_the_source() -> None:
    with started_world(storage="azurite") as world:
        inventory(world)
        replicated = world.failover("replicate", "--target", world.target, "--json")
        assert replicated.code == 0, replicated.stderr
        world.source.stop()

        ran = run_standard(world)

        assert ran.code == 0, ran.stderr
        document = ran.json()
        assert step(document, "data")["outputs"][BUCKET]["source"] == "replica"
        assert_failed_over(world, document)

        # The replicas (the bucket's container, the zone replicate mirrored) were there before
        # the run: they stay, whole, and the cutover's records are back to the replica's values.
        rollback(world, document["run_id"])
        assert_nothing_left(world, kept_containers=(world.container_name(BUCKET),), kept_zones=(ZONE,))
        assert sorted(world.target_objects(BUCKET).items()) == sorted(world.source_objects[BUCKET].items())
        assert_zone_copied(world)
        assert world.dns(ZONE, "A") == [world.seeded["eip"]]
