"""Helpers of the end-to-end tests: worlds that fail loudly when an emulator is missing, the
CLI calls every test makes, and the checks of the target after a failover and after its
rollback, read from the emulators themselves (never from failover's own outputs alone)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from failover import naming
from failover.testing.plugin import started_world  # noqa: F401 - the e2e modules import it from here
from failover.testing.world import CliResult, EmulatedWorld

BUCKET = "social-app-media"
ZONE = "social.example."
WEB_1 = "social-app-web-1"
DATABASE_NODE = "social-app-orders-db"
LB_NODE = "social-app-lb-social-web"  # the load balancer social-web, as a HAProxy node on the target
# The sample service's nodes (both regions), its database's node and its load balancer's node, on the target.
TARGET_NODES = frozenset({"social-app-web-1", "social-app-web-2", "social-app-worker-1", "social-app-reports-1",
                          DATABASE_NODE, LB_NODE})
WEB_FIREWALL = "social-app-social-web"  # the security group social-web, on the target
LB_FIREWALL = "social-app-lb-social-web"  # the load-balancer node's own firewall, made by front-door
FIREWALLED_NODES = frozenset({"social-app-web-1", "social-app-web-2", "social-app-worker-1"})
_PLANNED_SIZE = re.compile(r"\bsize (\S+) \(")


def inventory(world: EmulatedWorld) -> None:
    taken = world.failover("inventory")
    assert taken.code == 0, taken.stderr


def run_standard(world: EmulatedWorld, *args: str) -> CliResult:
    """``failover run standard --target fallback --yes --json`` with the world's health URL."""
    return world.failover("run", "standard", "--target", world.target, "--yes", "--json", *world.run_vars, *args)


def rollback(world: EmulatedWorld, run_id: str) -> dict[str, Any]:
    rolled = world.failover("rollback", run_id, "--json")
    assert rolled.code == 0, rolled.stderr
    document = rolled.json()
    assert document["status"] == "rolled_back"
    return document


def step(document: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(item for item in document["steps"] if item["id"] == step_id)


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["status"] for item in document["steps"]}


def planned_sizes(plan: dict[str, Any]) -> dict[str, str]:
    """Target node name -> the size ``plan --json`` maps it to (nodes and database nodes)."""
    return {
        change["name"]: _PLANNED_SIZE.search(change["detail"]).group(1)
        for item in plan["steps"] for change in item["changes"]
        if change["kind"] in ("node", "load_balancer") and change["operation"] == "create"
    }


def node_counts(world: EmulatedWorld) -> Counter[str]:
    """How many live instances of each name the target runs (a node created twice counts 2)."""
    return Counter(
        next((tag["Value"] for tag in node.get("Tags", []) if tag["Key"] == "Name"), node["InstanceId"])
        for node in world.target_instances()
    )


# -- the target after a failover ---------------------------------------------------------------


def assert_failed_over(world: EmulatedWorld, document: dict[str, Any], sizes: dict[str, str] | None = None) -> None:
    """The run succeeded and the target serves the service: every node once (of its planned
    size), every object, the firewall, the database's dump found, DNS cut over."""
    assert document["status"] == "succeeded", document["error"]
    assert node_counts(world) == {name: 1 for name in TARGET_NODES}
    nodes = world.target_nodes()
    outputs = step(document, "nodes")["outputs"]["nodes"]
    for entry in outputs.values():
        assert nodes[entry["name"]].instance_type == entry["size"]
        assert nodes[entry["name"]].public_ip == entry["public_ip"]
    if sizes is not None:
        assert {name: node.instance_type for name, node in nodes.items()} == sizes
    assert_objects_copied(world)
    assert_firewall(world)
    database = step(document, "databases")["outputs"]["databases"]["orders-db"]
    assert (database["dump_container"], database["dump_key"]) == (world.container_name(naming.DUMPS_BUCKET), world.dump_key)
    assert_cut_over(world)


def assert_database_restored(world: EmulatedWorld, document: dict[str, Any], dump_key: str) -> None:
    """The databases step restored ``dump_key`` into the target server (mode dsn), and the
    target database, read from the server itself, holds exactly the source's rows."""
    entry = step(document, "databases")["outputs"]["databases"]["orders-db"]
    assert (entry["mode"], entry["dump_container"], entry["dump_key"]) == (
        "dsn", world.container_name(naming.DUMPS_BUCKET), dump_key)
    assert entry["restored_bytes"] > 0
    assert world.target_tables() == world.source_rows


def assert_no_database_password(world: EmulatedWorld, *printed: str) -> None:
    """No database password (as it is, or as a DSN writes it) in any file of the world's
    directory (the config, the state directory: state.db, its journal, logs) nor in what
    the CLI printed."""
    assert world.database_passwords
    for path in sorted(item for item in world.workdir.rglob("*") if item.is_file()):
        content = path.read_bytes()
        for password in world.database_passwords:
            assert password.encode() not in content, f"a database password in {path}"
    for text in printed:
        for password in world.database_passwords:
            assert password not in text, "a database password in the CLI's output"


def assert_objects_copied(world: EmulatedWorld) -> None:
    """Every source object in its container, with the same content (and content type, where
    the storage keeps one)."""
    source, target = world.source_objects[BUCKET], world.target_objects(BUCKET)
    assert sorted(target) == sorted(source)
    for key, blob in source.items():
        assert (target[key].size, target[key].sha256) == (blob.size, blob.sha256), key
        if world.keeps_metadata:
            assert target[key].content_type == blob.content_type, key


def assert_firewall(world: EmulatedWorld) -> None:
    groups = world.security_groups()
    assert set(groups) == {WEB_FIREWALL, LB_FIREWALL}
    ports = {(rule["IpProtocol"], rule.get("FromPort")) for rule in groups[WEB_FIREWALL]["IpPermissions"]}
    assert {("tcp", 80), ("tcp", 443), ("tcp", 22)} <= ports
    attached = {name for name, node in world.target_nodes().items() if WEB_FIREWALL in node.security_groups}
    assert attached == FIREWALLED_NODES
    # The balancer node admits at most its listeners' ports (80, and 443 where the world serves HTTPS),
    # from what the balancer's own security group admitted; it is the only node in that firewall.
    lb_ports = {(rule["IpProtocol"], rule.get("FromPort")) for rule in groups[LB_FIREWALL]["IpPermissions"]}
    assert lb_ports <= {("tcp", 80), ("tcp", 443)}, lb_ports
    in_lb_firewall = {name for name, node in world.target_nodes().items() if LB_FIREWALL in node.security_groups}
    assert in_lb_firewall == {LB_FIREWALL}, in_lb_firewall


def assert_cut_over(world: EmulatedWorld) -> None:
    """Asked over DNS: the apex, which named the Elastic IP of web-1, names web-1's new address;
    the other record sets are as on the source."""
    assert world.dns(ZONE, "A") == [world.target_nodes()[WEB_1].public_ip]
    assert_zone_copied(world)


def assert_zone_copied(world: EmulatedWorld) -> None:
    assert world.zones() == [ZONE]
    assert world.dns(f"www.{ZONE}", "CNAME") == [ZONE]
    assert world.dns(ZONE, "MX") == ["10 mail.provider.example."]
    assert world.dns(ZONE, "TXT") == ['"v=spf1 -all"']


# -- the target after a rollback ---------------------------------------------------------------


def assert_nothing_left(
    world: EmulatedWorld, *, kept_containers: tuple[str, ...] = (), kept_zones: tuple[str, ...] = ()
) -> None:
    """The target as before the run: no node or firewall; only the zones (``kept_zones``:
    replicas) and containers (the dumps', and ``kept_containers``) that were there before."""
    assert node_counts(world) == {}
    assert world.security_groups() == {}
    assert world.zones() == sorted(kept_zones)
    expected = {world.container_name(naming.DUMPS_BUCKET), *kept_containers}
    assert set(world.containers()) == expected
