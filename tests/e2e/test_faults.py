"""A throttled target: a fault-injecting proxy in front of each target emulator (EC2 on moto,
Azurite, the PowerDNS API) answers 20% of requests with 503 ServiceUnavailable (the request
is not executed).

Every 503 is a transient error, retried request by request by the adapters (and, past
their budget, step by step by the engine), each retry journaled; the run succeeds, nothing
is created twice (counted on the emulators themselves), and every resource it created is
in its journal. Where the 503s fall differs from seed to seed (issue 10 failed only when
one hit a firewall's rules after the group was made): one world per seed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from e2ekit import (
    LB_FIREWALL,
    TARGET_NODES,
    WEB_FIREWALL,
    ZONE,
    assert_failed_over,
    inventory,
    node_counts,
    run_standard,
    started_world,
    step,
)

from failover import naming
from failover.engine.journal import Journal
from failover.state import StateStore
from failover.testing.world import CliResult, EmulatedWorld

FAIL_RATIO = 0.2
SEEDS = (1, 2, 3, 4, 5)  # of the proxies' random streams (a world's three proxies take SEED, SEED+1, SEED+2)
TARGETS = {"compute": "compute target", "storage": "storage target", "dns": "dns target"}
BUCKET_CONTAINER = "replica-social-app-media"


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{seed}" for seed in SEEDS])
def faulty_run(request: pytest.FixtureRequest):
    with started_world(storage="azurite", fail_ratio=FAIL_RATIO, seed=request.param) as world:
        inventory(world)  # the source is not behind a proxy
        yield world, run_standard(world)


def journal_events(world: EmulatedWorld, run_id: str) -> list[dict]:
    with StateStore(world.state_dir) as store:
        return Journal(store).events(run_id)


def journaled(document: dict, kind: str) -> set[str]:
    return {item["id"] for entry in document["steps"] for item in entry["created"] if item["kind"] == kind}


@pytest.mark.slow
def test_the_run_succeeds_despite_the_faults(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    assert ran.code == 0, ran.stderr
    assert_failed_over(world, ran.json())


@pytest.mark.slow
def test_nothing_is_created_twice(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    """Counted on the emulators, by name: nodes on moto EC2, security groups, containers, zones."""
    world, _ = faulty_run
    assert node_counts(world) == dict.fromkeys(TARGET_NODES, 1)
    described = world.compute_client().describe_security_groups()["SecurityGroups"]
    groups = Counter(group["GroupName"] for group in described)
    assert groups == {"default": 1, WEB_FIREWALL: 1, LB_FIREWALL: 1}
    assert Counter(world.containers()) == {world.container_name(naming.DUMPS_BUCKET): 1, BUCKET_CONTAINER: 1}
    assert Counter(world.zones()) == {ZONE: 1}


@pytest.mark.slow
def test_everything_the_run_created_is_in_its_journal(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    document = ran.json()
    assert {node["InstanceId"] for node in world.target_instances()} <= journaled(document, "node")
    assert {group["GroupId"] for group in world.security_groups().values()} <= journaled(document, "firewall")
    assert BUCKET_CONTAINER in journaled(document, "container")  # the dumps' container was there before
    assert set(world.zones()) <= journaled(document, "dns_zone")  # the target had no zone before the run
    assert {item["id"] for item in step(document, "dns-copy")["created"] if item["kind"] == "dns_zone"} == {ZONE}


@pytest.mark.slow
def test_every_503_is_retried_as_a_transient_error_and_journaled(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    document = ran.json()
    failed = {name: proxy.stats().failed for name, proxy in world.proxies.items()}
    assert set(failed) == set(TARGETS) and sum(failed.values()) > 0, failed

    retries = [event for event in journal_events(world, document["run_id"])
               if event["event"] in ("step-retry", "request-retry")]
    errors = [event["detail"]["error"] for event in retries]
    errors += [entry["error"] for entry in document["steps"] if entry["error"]]
    assert retries
    assert all("temporary failure" in error for error in errors), errors  # none was taken for a lasting failure
    for name, where in TARGETS.items():  # each target's 503s were retried (or exhausted the retries)
        if failed[name]:
            assert any(where in error for error in errors), (where, errors)
    status = world.failover("status", document["run_id"], "--json").json()
    retried_steps = {event["step_id"] for event in retries if event["event"] == "step-retry"}
    assert all(step["attempts"] > 1 for step in status["steps"] if step["id"] in retried_steps)
