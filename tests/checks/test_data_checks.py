"""The checks of what ``replicate`` keeps on the target, against real peers: replicas
(copied by the replication engine from a moto_server's S3 into Azurite), dns-mirror
(PowerDNS) and database-dumps (Azurite)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from checkkit import SERVICE, TARGET, Kit, ago, bucket, database, zone

from failover.dnsnames import ZoneRename, read_zone
from failover.naming import DUMPS_BUCKET, dump_key
from failover.state import DumpRecord, ZoneMirrorRecord
from failover.zonecopy import zone_copy

OBJECTS = {"index.html": b"<h1>hello</h1>", "img/logo.png": b"\x89PNG" + bytes(3000), "docs/a.txt": b"a" * 10}

# -- replicas --------------------------------------------------------------------------------


def replicated(kit: Kit, snapshot_objects: int | None = None) -> str:
    """A source bucket replicated into the target; the snapshot holds it (with this object count)."""
    name = kit.source_bucket(OBJECTS)
    kit.replicate(name)
    kit.snapshot(bucket(name, len(OBJECTS) if snapshot_objects is None else snapshot_objects))
    return name


def test_no_buckets_pass(kit: Kit) -> None:
    kit.snapshot()
    assert (kit.run("replicas").status, kit.run("replicas").detail) == ("pass", "no buckets in the snapshot")


def test_a_bucket_never_replicated_fails_naming_its_container(kit: Kit) -> None:
    kit.snapshot(bucket("media", 3))
    result = kit.run("replicas")
    assert result.status == "fail"
    assert result.detail == (f"bucket media ({kit.prefix}media): no container {kit.prefix}media on the target: "
                             "run `failover replicate`")
    assert result.data["buckets"][0]["exists"] is False


def test_a_whole_recent_replica_passes(kit: Kit) -> None:
    name = replicated(kit)
    result = kit.run("replicas")
    assert result.status == "pass", result.detail
    assert result.detail.startswith(f"bucket {name} ({kit.prefix}{name}): 3/3 objects, ")
    row = result.data["buckets"][0]
    assert (row["objects"], row["bytes"], row["missing"], row["differing"]) == (3, sum(map(len, OBJECTS.values())), [], [])
    assert row["as_of"] == kit.store.last_replication(SERVICE, TARGET, name).listed_at


def test_an_object_gone_from_the_replica_fails_as_missing_and_incomplete(kit: Kit) -> None:
    name = replicated(kit)
    assert kit.targets.storage.delete_object(name, "img/logo.png")
    result = kit.run("replicas")
    assert result.status == "fail"
    assert "1 recorded object(s) missing: 'img/logo.png'" in result.detail
    assert "incomplete: 2 of the snapshot's 3 objects" in result.detail


def test_an_object_changed_on_the_target_fails(kit: Kit) -> None:
    name = replicated(kit)
    kit.targets.storage.upload_stream(name, "docs/a.txt", [b"tampered"])
    result = kit.run("replicas")
    assert result.status == "fail"
    assert "1 object(s) changed since copied: 'docs/a.txt'" in result.detail


def test_fewer_objects_than_the_snapshot_counted_fail_as_incomplete(kit: Kit) -> None:
    replicated(kit, snapshot_objects=5)
    result = kit.run("replicas")
    assert result.status == "fail"
    assert result.detail.endswith("incomplete: 3 of the snapshot's 5 objects")


def test_a_replica_older_than_the_rpo_fails(kit: Kit) -> None:
    kit.write(readiness={"rpo": "1h"})
    name = replicated(kit)
    with kit.store.transaction() as conn:
        conn.execute("UPDATE replications SET listed_at = ? WHERE bucket = ?", (ago(hours=2, minutes=30), name))
    result = kit.run("replicas")
    assert result.status == "fail"
    assert result.detail.endswith("2.5h old, older than readiness.rpo (60m)")


# -- dns-mirror ------------------------------------------------------------------------------


def mirror_zone(kit: Kit) -> tuple[str, object]:
    """A zone of this test's own in the snapshot, copied onto the target DNS as copy-dns-zones
    would (created here through the target's DnsTarget; ``replicate`` keeps it so in production)."""
    apex = f"{kit.unique}.example."
    snapshot_zone = zone(
        apex,
        (apex, "SOA", 900, ["ns-1.awsdns-01.org. hostmaster. 1 7200 900 1209600 86400"]),
        (apex, "NS", 172800, ["ns-1.awsdns-01.org."]),
        (apex, "A", 300, ["198.51.100.10"]),
        (apex, "MX", 300, ["10 mail.provider.example."]),
        (f"www.{apex}", "CNAME", 300, [apex]),
        (f"api.{apex}", "A", 60, ["198.51.100.11", "198.51.100.12"]),
    )
    kit.snapshot(snapshot_zone)
    dns = kit.targets.dns
    created = dns.create_zone(apex)
    for wanted in zone_copy(snapshot_zone, ZoneRename(None), ["SOA", "NS"]).sets.values():
        dns.set_record(created, wanted.name, wanted.type, wanted.ttl, wanted.values)
    return apex, created


def save_mirror(kit: Kit, apex: str, read_at: str) -> None:
    kit.store.save_zone_mirror(ZoneMirrorRecord(
        id=f"rep-{read_at}", service=SERVICE, target=TARGET, zone=apex, read_at=read_at, finished_at=read_at,
        record_sets=4, written=4, deleted=0, digest=hashlib.sha256(b"sets").hexdigest(), sets="[]",
    ))


def test_no_zones_pass(kit: Kit) -> None:
    kit.snapshot(bucket("b", 0))
    result = kit.run("dns-mirror")
    assert (result.status, result.detail) == ("pass", "no zones")


def test_a_zone_not_on_the_target_fails(kit: Kit) -> None:
    apex = f"{kit.unique}.example."
    kit.snapshot(zone(apex, (apex, "A", 300, ["192.0.2.1"])))
    result = kit.run("dns-mirror")
    assert result.status == "fail"
    assert result.detail.startswith(f"zone {apex} is not on the target DNS: run `failover replicate`")


def test_a_mirrored_zone_passes_once_replicate_recorded_a_recent_mirror(kit: Kit) -> None:
    apex, _ = mirror_zone(kit)
    unrecorded = kit.run("dns-mirror")
    assert unrecorded.status == "warn", unrecorded.detail
    assert unrecorded.detail == (f"zone {apex}: 4 record sets as in the snapshot; "
                                 "no mirror recorded by `failover replicate`")
    save_mirror(kit, apex, ago(minutes=10))
    result = kit.run("dns-mirror")
    assert result.status == "pass", result.detail
    assert result.detail == f"zone {apex}: 4 record sets as in the snapshot; last mirrored 10m ago"
    assert result.data["zones"][0]["mirror_age_s"] >= 600


def test_a_mirror_older_than_the_rpo_warns(kit: Kit) -> None:
    kit.write(readiness={"rpo": "1h"})
    apex, _ = mirror_zone(kit)
    save_mirror(kit, apex, ago(hours=5))
    result = kit.run("dns-mirror")
    assert result.status == "warn"
    assert result.detail.endswith("last mirrored 5.0h ago, longer than readiness.rpo (60m)")


def test_missing_and_differing_record_sets_fail_naming_them(kit: Kit) -> None:
    apex, created = mirror_zone(kit)
    save_mirror(kit, apex, ago(minutes=1))
    dns = kit.targets.dns
    assert dns.delete_record(created, f"www.{apex}", "CNAME")
    dns.set_record(created, f"api.{apex}", "A", 60, ["203.0.113.9"])
    result = kit.run("dns-mirror")
    assert result.status == "fail"
    assert result.detail == (f"zone {apex}: 1 record set(s) missing: www.{apex} CNAME; 1 differing: "
                             f"api.{apex} A (203.0.113.9 instead of 198.51.100.11, 198.51.100.12)")
    assert read_zone(dns, apex).zone is not None  # the check changed nothing


def test_a_differing_ttl_only_warns(kit: Kit) -> None:
    apex, created = mirror_zone(kit)
    save_mirror(kit, apex, ago(minutes=1))
    kit.targets.dns.set_record(created, apex, "MX", 3600, ["10 mail.provider.example."])
    result = kit.run("dns-mirror")
    assert result.status == "warn"
    assert f"1 TTL(s) differ: {apex} MX (ttl 3600 instead of 300)" in result.detail


# -- database-dumps --------------------------------------------------------------------------


def put_dump(kit: Kit, name: str, taken: datetime, body: bytes = b"PGDMP a dump", record: dict | None = None) -> str:
    storage = kit.targets.storage
    storage.ensure_container(DUMPS_BUCKET)
    key = dump_key(name, "postgres", taken)
    stored = storage.upload_stream(DUMPS_BUCKET, key, [body])
    if record is not None:
        when = taken.isoformat().replace("+00:00", "Z")
        kit.store.save_dump(DumpRecord(
            id=f"dump-{key}", service=SERVICE, target=TARGET, database=name, engine="postgres",
            container=storage.container_name(DUMPS_BUCKET), key=key, started_at=when, finished_at=when,
            bytes=record.get("bytes", stored.size), md5=record.get("md5", stored.md5),
        ))
    return key


def test_no_databases_pass(kit: Kit) -> None:
    kit.snapshot()
    result = kit.run("database-dumps")
    assert (result.status, result.detail) == ("pass", "no databases in the snapshot")


def test_no_dumps_container_fails(kit: Kit) -> None:
    kit.snapshot(database("orders-db"))
    result = kit.run("database-dumps")
    assert result.status == "fail"
    assert result.detail == (f"no container {kit.prefix}failover-dumps on the target, so no dump of orders-db: "
                             "run `failover replicate`")


def test_a_recent_recorded_dump_passes_and_a_database_without_one_fails(kit: Kit) -> None:
    now = datetime.now(UTC)
    key = put_dump(kit, "orders-db", now - timedelta(minutes=20), record={})
    put_dump(kit, "orders-db", now - timedelta(hours=30))  # an older one is not the newest
    kit.snapshot(database("orders-db"), database("users-db"))
    result = kit.run("database-dumps")
    assert result.status == "fail"
    assert result.detail == (f"users-db: no dump in {kit.prefix}failover-dumps/users-db/: run `failover replicate`")
    orders = next(row for row in result.data["databases"] if row["database"] == "orders-db")
    assert (orders["status"], orders["key"], orders["bytes"], orders["recorded"]) == ("pass", key, 12, True)
    assert orders["detail"] == f"orders-db: {key} (12 bytes, 20m old)"


def test_a_dump_older_than_the_rpo_fails(kit: Kit) -> None:
    kit.write(readiness={"rpo": "1h"})
    key = put_dump(kit, "orders-db", datetime.now(UTC) - timedelta(hours=3))
    kit.snapshot(database("orders-db"))
    result = kit.run("database-dumps")
    assert result.status == "fail"
    assert result.detail == f"orders-db: {key} (12 bytes, 3.0h old): 3.0h old, older than readiness.rpo (60m)"


def test_a_dump_unlike_its_record_fails(kit: Kit) -> None:
    key = put_dump(kit, "orders-db", datetime.now(UTC) - timedelta(minutes=5),
                   record={"bytes": 4096, "md5": "0" * 32})
    kit.snapshot(database("orders-db"))
    result = kit.run("database-dumps")
    assert result.status == "fail"
    assert f"orders-db: {key} (12 bytes, 5m old): it holds 12 bytes where 4096 were recorded; its MD5 " in result.detail
    assert f"is not the recorded {'0' * 32}" in result.detail


def test_an_engine_failover_cannot_dump_fails(kit: Kit) -> None:
    put_dump(kit, "orders-db", datetime.now(UTC))
    kit.snapshot(database("legacy", engine="sqlserver-ex"))
    result = kit.run("database-dumps")
    assert result.status == "fail"
    assert result.detail == "legacy: failover cannot dump or restore engine sqlserver-ex"
