"""Failover day with a real database: the AWS account and its database are gone after the
last ``inventory`` and ``replicate``. ``run standard`` restores every object from its
replica and the database from the dump ``replicate`` took, into an existing server
(``--var database_dsn_env=NAME``: the DSN is read from that variable, never stored).
``check`` says ready before the run, without the source; a ``drill`` only validates the
dump (the target database stays empty)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2ekit import (
    BUCKET,
    assert_database_restored,
    assert_no_database_password,
    assert_objects_copied,
    inventory,
    node_counts,
    run_standard,
    started_world,
    step,
)

from failover.testing.world import TARGET_DSN_VARIABLE


@pytest.mark.slow
def test_source_and_its_database_gone_run_standard_restores_objects_and_the_database_from_its_dump() -> None:
    with started_world(storage="azurite", postgres=True) as world:
        inventory(world)
        replicated = world.failover("replicate", "--target", world.target, "--json")
        assert replicated.code == 0, replicated.stderr
        [dump_key] = world.dump_keys()
        world.source.stop()  # the AWS account is gone...
        world.source_database.stop()  # ...and its database with it: only the dump is left

        checked = world.failover("check", "standard", "--target", world.target, "--json", *world.run_vars,
                                 "--var", f"database_dsn_env={TARGET_DSN_VARIABLE}")
        assert checked.code == 0, checked.stdout + checked.stderr  # ready, without the source

        drilled = world.failover("drill", "standard", "--target", world.target, "--json", *world.run_vars,
                                 "--var", f"database_dsn_env={TARGET_DSN_VARIABLE}")
        assert drilled.code == 0, drilled.stdout + drilled.stderr
        assert drilled.json()["clean"] is True
        drill_run = world.failover("status", drilled.json()["run"], "--json")
        entry = step(drill_run.json(), "databases")["outputs"]["orders-db"]
        assert (entry["dump_key"], entry["restored"], entry["validated"], entry["note"]) == (
            dump_key, False, True, "validated, not restored (drill)")
        assert world.target_tables() == {table: [] for table in world.source_rows}  # a drill never writes there

        unset = run_standard(world, "--var", "database_dsn_env=FAILOVER_WORLD_NO_SUCH_DSN")
        assert unset.code == 2
        standard = (Path(__file__).resolve().parents[2] / "playbooks" / "standard.yaml").read_text().splitlines()
        line = next(number for number, text in enumerate(standard, 1) if "dsn_env:" in text and "with:" in text)
        assert unset.stderr.strip().splitlines() == [
            f"failover: error: builtin:standard:{line}: steps[3].with: dsn_env: environment variable "
            + "FAILOVER_WORLD_NO_SUCH_DSN is not set"
        ]
        assert node_counts(world) == {}  # invalid input: nothing was changed

        ran = run_standard(world, "--var", f"database_dsn_env={TARGET_DSN_VARIABLE}")

        assert ran.code == 0, ran.stderr
        document = ran.json()
        assert document["status"] == "succeeded"
        assert step(document, "data")["outputs"][BUCKET]["source"] == "replica"
        assert_objects_copied(world)
        assert_database_restored(world, document, dump_key)
        status = world.failover("status", document["run_id"], "--json")
        assert status.code == 0, status.stderr
        printed = (replicated, checked, drilled, drill_run, unset, ran, status)
        assert_no_database_password(world, *(result.stdout + result.stderr for result in printed))
