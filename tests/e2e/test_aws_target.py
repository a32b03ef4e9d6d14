"""AWS as the target, wholly through libcloud: compute on libcloud's EC2 driver, storage on its
S3 driver (``driver: s3``) and DNS on its Route53 driver (``driver: route53``, through the moto
shim), all against a second moto_server, the target account. The story of a failover day:
inventory and replicate while the source answers, then the source is gone; check, drill and
run work from the snapshot and the replicas. What was done is read from the emulator."""

from __future__ import annotations

import pytest
import yaml
from e2ekit import (
    BUCKET,
    ZONE,
    assert_failed_over,
    assert_nothing_left,
    assert_zone_copied,
    inventory,
    rollback,
    run_standard,
    started_world,
    step,
)


@pytest.mark.slow
def test_off_the_source_onto_aws_through_libcloud_s3_and_route53() -> None:
    with started_world(storage="aws-s3", dns="route53") as world:
        profile = yaml.safe_load(world.config_path.read_text())["targets"][world.target]
        assert (profile["storage"]["driver"], profile["dns"]["driver"]) == (
            "s3", "failover.testing.route53_shim:MotoRoute53DNSDriver")
        inventory(world)
        replicated = world.failover("replicate", "--target", world.target, "--json")
        assert replicated.code == 0, replicated.stderr
        assert world.target_objects(BUCKET) == world.source_objects[BUCKET]  # read back from moto's S3
        assert_zone_copied(world)  # the zone on moto's Route53, before any run
        assert world.dns(ZONE, "A") == [world.seeded["eip"]]
        world.source.stop()  # the account is gone from here on

        checked = world.failover("check", "standard", "--target", world.target, "--json")
        document = checked.json()
        failed = {c["name"]: c["detail"] for c in document["checks"] if c["status"] == "fail"}
        assert checked.code == 0 and failed == {}, failed
        statuses = {c["name"]: c["status"] for c in document["checks"]}
        assert statuses["replicas"] == statuses["dns-mirror"] == statuses["target-credentials"] == "pass"

        drilled = world.failover("drill", "standard", "--target", world.target, "--json", *world.run_vars)
        assert drilled.code == 0, drilled.stderr
        drill = drilled.json()
        assert (drill["status"], drill["clean"], drill["differences"]) == ("succeeded", True, [])
        assert world.zones() == [ZONE]  # the drill's zone (drill.social.example.) is gone again

        ran = run_standard(world)
        assert ran.code == 0, ran.stderr
        document = ran.json()
        assert step(document, "data")["outputs"][BUCKET]["source"] == "replica"
        assert_failed_over(world, document)  # nodes, objects, firewall, dump, the apex cut over on Route53
        cutover = step(document, "cutover")["outputs"]
        assert cutover["changed"], cutover

        rollback(world, document["run_id"])
        assert_nothing_left(world, kept_containers=(world.container_name(BUCKET),), kept_zones=(ZONE,))
        assert world.dns(ZONE, "A") == [world.seeded["eip"]]  # back to the replica's value
        assert_zone_copied(world)
