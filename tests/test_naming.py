"""Deterministic target names and the dumps' keys (shared by provision-nodes, apply-firewall,
restore-databases, replication and DNS cutover)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from failover.manifest import Database, Firewall, Manifest, Node, SourceInfo
from failover.naming import (
    MAX_NAME,
    DumpKey,
    dump_key,
    dump_prefix,
    firewall_names,
    newest_dump,
    node_names,
    parse_dump_key,
    slug,
    target_name,
    target_names,
)


def _node(name: str, node_id: str) -> Node:
    return Node(
        id=node_id, name=name, region="us-east-1", instance_type="t3.micro", vcpus=2, memory_mib=1024, image_id=None,
        image_name=None, architecture=None, private_ip=None, public_ip=None, user_data=None, state="running",
    )


def test_slugs_are_lowercase_ascii_letters_digits_and_single_dashes() -> None:
    assert slug("Web_1 (café)") == "web-1-cafe"
    assert slug("--API..Server--") == "api-server"
    assert slug("服务器") == ""


def test_a_target_name_is_the_service_and_the_source_name() -> None:
    assert target_name("social-app", "web-1") == "social-app-web-1"
    assert target_name("social-app", "服务器", "i-0abc") == "social-app-i-0abc"  # nothing left of the name


def test_long_names_are_cut_to_a_dns_label_keeping_them_distinct() -> None:
    a = target_name("social-app", "worker-" + "x" * 80 + "-a")
    b = target_name("social-app", "worker-" + "x" * 80 + "-b")
    assert len(a) <= MAX_NAME and len(b) <= MAX_NAME
    assert a != b and a.startswith("social-app-worker-xxx") and not a.endswith("-")
    assert a == target_name("social-app", "worker-" + "x" * 80 + "-a")  # deterministic


def test_clashing_names_all_carry_a_hash_of_their_source_id() -> None:
    names = target_names("svc", [_node("web", "i-1"), _node("Web", "i-2"), _node("db", "i-3")])
    assert names["i-3"] == "svc-db"
    assert names["i-1"] != names["i-2"] and names["i-1"].startswith("svc-web-") and names["i-2"].startswith("svc-web-")
    # the same whatever the order
    assert target_names("svc", [_node("Web", "i-2"), _node("web", "i-1")]) == {"i-1": names["i-1"], "i-2": names["i-2"]}


def test_nodes_and_databases_share_a_namespace_firewalls_have_their_own() -> None:
    snapshot = Manifest(
        service="svc", taken_at="2024-01-01T00:00:00Z", source=SourceInfo(provider="aws", account=None, regions=["us-east-1"]),
        resources=[
            _node("orders", "i-1"),
            Database(id="orders", name="orders", region="us-east-1", engine="postgres", engine_version="15",
                     instance_class="db.t3.micro", storage_gib=20, endpoint=None),
            Firewall(id="sg-1", name="orders", region="us-east-1"),
        ],
    )
    names = node_names(snapshot, "svc")
    assert names["i-1"] != names["orders"] and len(set(names.values())) == 2
    assert firewall_names(snapshot, "svc") == {"sg-1": "svc-orders"}


def test_dump_keys_round_trip_and_the_newest_of_the_engine_wins() -> None:
    taken = datetime(2024, 1, 15, 10, 30, 0, 123, tzinfo=UTC)
    key = dump_key("orders-db", "postgres", taken)
    assert key == "orders-db/20240115T103000Z.dump"
    assert key.startswith(dump_prefix("orders-db"))
    assert parse_dump_key(key) == DumpKey("orders-db", taken.replace(microsecond=0), ".dump")
    assert dump_key("shop", "mariadb", taken) == "shop/20240115T103000Z.sql.gz"
    assert parse_dump_key("orders-db/latest.dump") is None

    keys = [
        dump_key("orders-db", "postgres", taken),
        dump_key("orders-db", "postgres", taken + timedelta(hours=1)),
        dump_key("orders-db", "mysql", taken + timedelta(hours=2)),  # another engine's format
        dump_key("orders-db-2", "postgres", taken + timedelta(hours=3)),  # another database
    ]
    assert newest_dump(keys, "orders-db", "postgres").key == "orders-db/20240115T113000Z.dump"
    assert newest_dump([], "orders-db", "postgres") is None
