from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from failover.errors import FailoverError, NotFound
from failover.manifest import Manifest, SourceInfo
from failover.state import MIGRATIONS, StateStore


def manifest(taken_at: str, nodes: int = 0) -> Manifest:
    resources = [
        {"kind": "node", "id": f"i-{n}", "name": f"web-{n}", "region": "us-east-1", "tags": {}, "instance_type": "t3.small",
         "vcpus": 2, "memory_mib": 2048, "image_id": None, "image_name": None, "architecture": "x86_64",
         "private_ip": None, "public_ip": None, "user_data": None, "state": "running"}
        for n in range(nodes)
    ]
    return Manifest(service="svc", taken_at=taken_at, source=SourceInfo(provider="aws", account="1", regions=["us-east-1"]),
                    resources=resources)


def test_state_is_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    with StateStore(directory) as store:
        store.save_snapshot(manifest("2026-01-01T00:00:00Z"))
        files = list(directory.iterdir())
        assert {p.name for p in files} >= {"state.db", "state.db-wal"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_schema_version_and_reopen(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        store.save_snapshot(manifest("2026-01-01T00:00:00Z"))
    with StateStore(tmp_path) as store:  # migrations are not re-run
        assert len(store.snapshots("svc")) == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(FailoverError, match="newer than this failover"):
        StateStore(tmp_path)


def test_snapshot_references(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        with pytest.raises(NotFound, match="no snapshot of svc"):
            store.resolve_snapshot("svc", "latest")
        first = store.save_snapshot(manifest("2026-01-01T00:00:00Z", nodes=1))
        with pytest.raises(NotFound, match="only one snapshot"):
            store.resolve_snapshot("svc", "previous")
        second = store.save_snapshot(manifest("2026-01-02T00:00:00Z", nodes=2))
        assert store.resolve_snapshot("svc", "latest") == second
        assert store.resolve_snapshot("svc", "previous") == first
        assert store.resolve_snapshot("svc", first.id) == first
        assert store.resolve_snapshot("svc", second.id[:-2]) == second
        with pytest.raises(NotFound, match="ambiguous"):
            store.resolve_snapshot("svc", "snap-")
        info, loaded = store.load_snapshot("svc", "latest")
        assert info.counts == {"node": 2}
        assert [r.id for r in loaded.resources] == ["i-0", "i-1"]
        assert store.snapshots("other-service") == []


def test_an_unreadable_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FailoverError, match="state database is unreadable"):
        StateStore(tmp_path)


def test_a_schema_3_store_is_brought_forward_keeping_its_runs(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "state.db")
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute(
        "INSERT INTO runs (id, service, playbook, definition, target, snapshot_id, dry_run, parallelism, status, started_at)"
        " VALUES ('run-1', 'svc', 'standard', '{}', 'fallback', NULL, 0, 4, 'succeeded', '2026-01-01T00:00:00Z')"
    )
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with StateStore(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 4
        rows = store.query("SELECT id, drill_prefix FROM runs")
        assert [(row["id"], row["drill_prefix"]) for row in rows] == [("run-1", None)]


def test_dumps_newest_first_and_pruned_ones_hidden(tmp_path: Path) -> None:
    from failover.state import DumpRecord

    def dump(n: int, database: str = "orders-db") -> DumpRecord:
        at = f"2026-01-0{n}T00:00:00Z"
        return DumpRecord(id=f"dump-{database}-{n}", service="svc", target="t", database=database, engine="postgres",
                          container="failover-dumps", key=f"{database}/2026010{n}T000000Z.dump", started_at=at,
                          finished_at=at, bytes=n, md5="x" * 32)

    with StateStore(tmp_path) as store:
        for n in (1, 3, 2):
            store.save_dump(dump(n))
        store.save_dump(dump(1, "users-db"))
        assert [d.id for d in store.dumps("svc", "t", "orders-db")] == ["dump-orders-db-3", "dump-orders-db-2", "dump-orders-db-1"]
        store.mark_dumps_pruned(["dump-orders-db-1"], "2026-01-04T00:00:00Z")
        assert [d.bytes for d in store.dumps("svc", "t", "orders-db")] == [3, 2]
        pruned = [d for d in store.dumps("svc", "t", "orders-db", include_pruned=True) if d.pruned_at]
        assert [(d.id, d.pruned_at) for d in pruned] == [("dump-orders-db-1", "2026-01-04T00:00:00Z")]
        assert {d.database for d in store.dumps("svc")} == {"orders-db", "users-db"}
        assert store.dumps("svc", "other") == []


def test_zone_mirrors_and_drills_round_trip(tmp_path: Path) -> None:
    from failover.state import DrillRecord, ZoneMirrorRecord

    with StateStore(tmp_path) as store:
        for n in (1, 2):
            store.save_zone_mirror(ZoneMirrorRecord(
                id=f"rep-{n}", service="svc", target="t", zone="example.com.", read_at=f"2026-01-0{n}T00:00:00Z",
                finished_at=f"2026-01-0{n}T00:00:01Z", record_sets=n, written=n, deleted=0, digest=f"d{n}",
                sets='[{"name": "www.example.com.", "type": "A", "ttl": 60, "values": ["192.0.2.1"]}]'))
        last = store.last_zone_mirror("svc", "t", "example.com.")
        assert last is not None and last.id == "rep-2"
        assert last.to_dict()["sets"][0]["values"] == ["192.0.2.1"]
        assert store.last_zone_mirror("svc", "t", "other.com.") is None
        assert [m.id for m in store.zone_mirrors("svc", "t")] == ["rep-1", "rep-2"]

        drill = DrillRecord(id="drill-1", service="svc", target="t", playbook="standard", prefix="drill", run_id=None,
                            status="running", started_at="2026-01-01T00:00:00Z")
        store.save_drill(drill)
        store.save_drill(DrillRecord(**{**drill.__dict__, "status": "succeeded", "rto_s": 12.5, "clean": True,
                                        "ended_at": "2026-01-01T00:01:00Z"}))
        store.save_drill(DrillRecord(id="drill-0", service="svc", target="t", playbook="standard", prefix="drill",
                                     run_id=None, status="failed", started_at="2025-12-31T00:00:00Z", clean=False))
        assert [(d.id, d.status, d.clean) for d in store.drills("svc", "t")] == [
            ("drill-1", "succeeded", True), ("drill-0", "failed", False)]
        assert store.drill("drill-1").rto_s == 12.5
        with pytest.raises(NotFound):
            store.drill("drill-9")
