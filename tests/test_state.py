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
