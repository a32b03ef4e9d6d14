"""Helpers for the tests of the actions that build on a compute target: a target profile on
libcloud's EC2 driver against a ``moto_server`` process, storage on local disk, contexts
and hand-made manifests.

``tests/support`` is on the pytest ``pythonpath`` (the driver classes below are named in
target profiles as ``targetkit:Class``, so the adapters can import them). The target account
fixtures (``target``, ``target_moto``) and ``sample_manifest`` are in tests/conftest.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
import yaml

from failover.actions.base import ActionContext
from failover.config import Config, load_config
from failover.manifest import Database, Endpoint, Firewall, FirewallRule, Manifest, Node, SourceInfo
from failover.targets import Targets
from failover.testing.ec2_shim import MotoEC2NodeDriver
from failover.testing.servers import MotoServer

logging.getLogger("werkzeug").setLevel(logging.ERROR)

SERVICE = "social-app"
TARGET = "fallback"
RUN_ID = "run-1"
UBUNTU_TRUSTY = "ubuntu/images/hvm-ssd/ubuntu-trusty-14.04-amd64-server-20170727"
UBUNTU_TRUSTY_ID = "ami-1e749f67"  # in moto's catalogue, in the target account too


class NoFirewallApiDriver:
    """The EC2 shim seen as a driver without a firewall API (as DigitalOcean, Linode or Vultr
    are to libcloud): every call but the firewall ones goes to the EC2 driver, so what a
    node gets on such a target can be read back from moto."""

    def __init__(self, **options: Any) -> None:
        self._driver = MotoEC2NodeDriver(**options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)


def ec2(server: MotoServer) -> Any:
    return boto3.client(
        "ec2", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def live_instances(server: MotoServer) -> list[dict[str, Any]]:
    reservations = ec2(server).describe_instances()["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    return [instance for instance in instances if instance["State"]["Name"] not in ("terminated", "shutting-down")]


def permissions(group: dict[str, Any], direction: str = "ingress") -> set[tuple]:
    """(protocol, from, to, source) facts of a security group's ingress or egress permissions, as moto holds them."""
    key = "IpPermissions" if direction == "ingress" else "IpPermissionsEgress"
    facts = set()
    for permission in group[key]:
        ports = (permission["IpProtocol"], permission.get("FromPort"), permission.get("ToPort"))
        facts |= {(*ports, r["CidrIp"]) for r in permission.get("IpRanges", [])}
        facts |= {(*ports, pair["GroupId"]) for pair in permission.get("UserIdGroupPairs", [])}
    return facts


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def user_data_of(server: MotoServer, instance_id: str) -> str | None:
    import base64

    attribute = ec2(server).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    value = attribute.get("UserData", {}).get("Value")
    return base64.b64decode(value).decode("utf-8") if value else None


# -- configs and contexts --------------------------------------------------------------------


def compute_spec(server: MotoServer, driver: str = "failover.testing.ec2_shim:MotoEC2NodeDriver") -> dict[str, Any]:
    options = {"key": "testing", "secret": "testing", "host": "127.0.0.1", "port": server.port, "secure": False}
    return {"driver": driver, "options": options}


def write_config(directory: Path, profile: dict[str, Any]) -> Config:
    path = directory / "failover.yaml"
    data = {
        "service": SERVICE,
        "state": ".failover",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": SERVICE}}},
        "targets": {TARGET: profile},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def context(
    config: Config,
    manifest: Manifest,
    *,
    step_id: str = "nodes",
    run_id: str = RUN_ID,
    outputs: dict[str, Any] | None = None,
    created: list[dict[str, Any]] | None = None,
    targets: Any = None,
    log: list[str] | None = None,
) -> ActionContext:
    return ActionContext(
        run_id=run_id, step_id=step_id, service=config.service, config=config, target_name=TARGET, manifest=manifest,
        targets=targets or Targets(config, TARGET), outputs=outputs or {}, created=created if created is not None else [],
        log=log.append if log is not None else None,
    )


# -- hand-made manifests ---------------------------------------------------------------------


def manifest(*resources: Any) -> Manifest:
    source = SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"])
    return Manifest(service=SERVICE, taken_at="2024-01-15T10:30:00Z", source=source, resources=list(resources))


def node(name: str, node_id: str, *, firewalls: list[str] = (), user_data: str | None = None, **fields: Any) -> Node:
    values: dict[str, Any] = {
        "id": node_id, "name": name, "region": "us-east-1", "tags": {"Name": name, "service": SERVICE},
        "instance_type": "t3.medium", "vcpus": 2, "memory_mib": 4096, "image_id": UBUNTU_TRUSTY_ID,
        "image_name": UBUNTU_TRUSTY, "architecture": "x86_64", "private_ip": "10.20.1.10", "public_ip": None,
        "firewalls": list(firewalls), "user_data": user_data, "state": "running",
    }
    values.update(fields)
    return Node(**values)


def rule(direction: str, protocol: str, port_from: int | None, port_to: int | None, *sources: str) -> FirewallRule:
    return FirewallRule(direction=direction, protocol=protocol, port_from=port_from, port_to=port_to, sources=list(sources))


ALLOW_ALL_EGRESS = rule("egress", "-1", None, None, "0.0.0.0/0")


def firewall(name: str, group_id: str, *rules: FirewallRule) -> Firewall:
    return Firewall(id=group_id, name=name, region="us-east-1", tags={"Name": name}, rules=list(rules))


def database(name: str, *, engine: str = "postgres", version: str = "15.4", instance_class: str = "db.t3.medium") -> Database:
    return Database(
        id=name, name=name, region="us-east-1", tags={"Name": name}, engine=engine, engine_version=version,
        instance_class=instance_class, storage_gib=20, endpoint=Endpoint(address=f"{name}.example.rds", port=5432),
    )
