"""A throttled target: a fault-injecting proxy in front of each target emulator (EC2 on moto,
Azurite, the PowerDNS API) answers 20% of requests with 503 ServiceUnavailable.

Every 503 is a transient error, retried request by request by the adapters (and, past
their budget, step by step by the engine), each retry journaled; the run succeeds, and
every resource it created is in its journal.
"""

from __future__ import annotations

import pytest
from e2ekit import assert_failed_over, inventory, run_standard, started_world, step

from failover.engine.journal import Journal
from failover.state import StateStore
from failover.testing.world import CliResult, EmulatedWorld

FAIL_RATIO = 0.2
SEED = 1  # the proxies' streams (seeds 1, 2, 3) each fail one of their first six requests
TARGETS = {"compute": "compute target", "storage": "storage target", "dns": "dns target"}


@pytest.fixture(scope="module")
def faulty_run():
    with started_world(storage="azurite", fail_ratio=FAIL_RATIO, seed=SEED) as world:
        inventory(world)  # the source is not behind a proxy
        yield world, run_standard(world)


def journal_events(world: EmulatedWorld, run_id: str) -> list[dict]:
    with StateStore(world.state_dir) as store:
        return Journal(store).events(run_id)


@pytest.mark.slow
def test_every_503_is_retried_as_a_transient_error_and_journaled(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    document = ran.json()
    assert {name: proxy.stats().failed > 0 for name, proxy in world.proxies.items()} == dict.fromkeys(TARGETS, True)

    retries = [event for event in journal_events(world, document["run_id"])
               if event["event"] in ("step-retry", "request-retry")]
    errors = [event["detail"]["error"] for event in retries] + [step["error"] for step in document["steps"] if step["error"]]
    assert retries
    assert all("temporary failure" in error for error in errors), errors  # none was taken for a lasting failure
    for where in TARGETS.values():  # each target's 503s were retried (or exhausted the retries)
        assert any(where in error for error in errors), (where, errors)
    status = world.failover("status", document["run_id"], "--json").json()
    retried_steps = {event["step_id"] for event in retries if event["event"] == "step-retry"}
    assert all(step["attempts"] > 1 for step in status["steps"] if step["id"] in retried_steps)


@pytest.mark.slow
def test_the_run_succeeds_despite_the_faults(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    assert ran.code == 0, ran.stderr
    assert_failed_over(world, ran.json())


@pytest.mark.slow
def test_every_zone_the_run_created_is_in_its_journal(faulty_run: tuple[EmulatedWorld, CliResult]) -> None:
    world, ran = faulty_run
    journaled = {item["id"] for item in step(ran.json(), "dns-copy")["created"] if item["kind"] == "dns_zone"}
    assert set(world.zones()) <= journaled  # the target had no zone before the run
