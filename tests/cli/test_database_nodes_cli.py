"""``restore-databases`` in mode node through the real CLI: the source's RDS instances on a
``moto_server`` process (inventoried), their dumps on local disk, the database nodes created
on a second ``moto_server`` (EC2 through libcloud, which keeps each node's user data).

Engine versions are written into a database node's root script: one that is not digits and
dots is refused for that database (named and counted in the plan and the run's JSON), and
the other databases get their nodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from replicatekit import snapshot
from targetkit import compute_spec, live_instances, tags_of, user_data_of

from failover.adapters import storage_target
from failover.cloudinit import cloud_config_parts
from failover.config import StorageSpec
from failover.naming import DUMPS_BUCKET, dump_key
from providers.libcloud.drivers import forget_adapters

SERVICE_TAGS = [{"Key": "service", "Value": "social-app"}]
UBUNTU = "ami-1e749f67"  # in moto's catalogue, standing in for Ubuntu 22.04
DATABASES = (  # identifier, engine, version
    ("orders-db", "postgres", "9.6; touch /tmp/failover-injected"),
    ("shop-db", "mysql", "8.0\ntouch /tmp/failover-injected"),
    ("users-db", "postgres", "15.4"),
)
PLAYBOOK = {"name": "databases", "steps": [{"id": "databases", "action": "restore-databases", "with": {"wait": False}}]}


@pytest.fixture
def config(write_config, tmp_path: Path, target) -> Path:  # noqa: F811 - a fixture
    disk = tmp_path / "replicas"
    disk.mkdir()
    storage = {"driver": "local", "options": {"key": str(disk)}, "container_prefix": "replica-"}
    return write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {"compute": compute_spec(target), "storage": storage,
                              "images": {"ubuntu-22.04-lts": UBUNTU}}},
    )


def seed(clients, tmp_path: Path) -> None:
    """The RDS instances on the source, and a dump of each where replicate puts them."""
    for identifier, engine, version in DATABASES:
        clients("rds").create_db_instance(
            DBInstanceIdentifier=identifier, Engine=engine, EngineVersion=version, DBInstanceClass="db.t3.micro",
            AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1", Tags=SERVICE_TAGS,
        )
    forget_adapters()
    storage = storage_target(StorageSpec(driver="local", options={"key": str(tmp_path / "replicas")},
                                         container_prefix="replica-"))
    storage.ensure_container(DUMPS_BUCKET)
    for identifier, engine, _ in DATABASES:
        storage.upload_stream(DUMPS_BUCKET, dump_key(identifier, engine, datetime.now(UTC)), [b"a dump"])
    forget_adapters()


def step_outputs(document: dict[str, Any]) -> dict[str, Any]:
    [step] = [step for step in document["steps"] if step["id"] == "databases"]
    return step["outputs"]


def test_engine_versions_that_are_not_digits_and_dots_are_refused_and_the_other_databases_restored(
    clients, config: Path, failover, target, tmp_path: Path  # noqa: F811 - a fixture
) -> None:
    seed(clients, tmp_path)
    snapshot(failover, config)
    playbook = tmp_path / "databases.yaml"
    playbook.write_text(yaml.safe_dump(PLAYBOOK))

    planned = failover("plan", str(playbook), "--target", "fallback", "-c", str(config), "--json")
    shown = failover("plan", str(playbook), "--target", "fallback", "-c", str(config), env={"COLUMNS": "300"})
    ran = failover("run", str(playbook), "--target", "fallback", "-c", str(config), "--yes", "--json")

    assert planned.code == 0, planned.stderr
    changes = [change for step in json.loads(planned.stdout)["steps"] for change in step["changes"]]
    refusals = {change["name"]: change["detail"] for change in changes if change["operation"] == "refuse"}
    assert sorted(refusals) == ["orders-db", "shop-db"]
    assert "engine version '9.6; touch /tmp/failover-injected' is not digits and dots" in refusals["orders-db"]
    assert "engine version '8.0\\ntouch /tmp/failover-injected' is not digits and dots" in refusals["shop-db"]
    assert [change["name"] for change in changes if change["operation"] == "create"] == ["social-app-users-db"]
    assert shown.code == 0, shown.stderr
    refused_rows = [line for line in shown.stderr.splitlines() if "refuse" in line]
    assert len(refused_rows) == 2 and "orders-db" in refused_rows[0] and "shop-db" in refused_rows[1]

    assert ran.code == 0, ran.stderr
    outputs = step_outputs(json.loads(ran.stdout))
    assert sorted(outputs["refused"]) == ["orders-db", "shop-db"]
    assert list(outputs["databases"]) == ["users-db"]
    assert "2 of 3 database(s) refused" in ran.stderr
    [instance] = live_instances(target)  # no node for the refused two
    assert tags_of(instance)["Name"] == "social-app-users-db"
    [cloud_config] = cloud_config_parts(user_data_of(target, instance["InstanceId"]))
    script = cloud_config["write_files"][0]["content"]
    assert "apt-get install -y -q postgresql-15\n" in script and "touch" not in script
