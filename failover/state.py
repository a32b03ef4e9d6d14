"""The state store: one SQLite database in the state directory.

Snapshots, runs, steps and their journal, the lock, replication records. The directory
is created 0700 and every file in it 0600. The schema carries a version
(``PRAGMA user_version``) and is brought forward by the ordered ``MIGRATIONS``.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from failover.errors import FailoverError, NotFound, Problem
from failover.manifest import Manifest, parse_manifest

DB_NAME = "state.db"

# Append only: each entry brings the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE snapshots (
        id        TEXT PRIMARY KEY,
        service   TEXT NOT NULL,
        taken_at  TEXT NOT NULL,
        counts    TEXT NOT NULL,
        manifest  TEXT NOT NULL
    );
    CREATE INDEX snapshots_by_time ON snapshots (service, taken_at);
    """,
    # The run journal (failover.engine.journal) and the one-run-per-service lock.
    """
    CREATE TABLE runs (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        playbook     TEXT NOT NULL,
        definition   TEXT NOT NULL,
        target       TEXT NOT NULL,
        snapshot_id  TEXT,
        dry_run      INTEGER NOT NULL,
        parallelism  INTEGER NOT NULL,
        status       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        error        TEXT
    );
    CREATE INDEX runs_by_time ON runs (service, started_at);
    CREATE TABLE steps (
        run_id      TEXT NOT NULL REFERENCES runs (id),
        id          TEXT NOT NULL,
        position    INTEGER NOT NULL,
        action      TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        started_at  TEXT,
        ended_at    TEXT,
        outputs     TEXT,
        error       TEXT,
        PRIMARY KEY (run_id, id)
    );
    CREATE TABLE created_resources (
        run_id       TEXT NOT NULL,
        step_id      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        resource_id  TEXT NOT NULL,
        details      TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        undone_at    TEXT,
        PRIMARY KEY (run_id, step_id, kind, resource_id),
        FOREIGN KEY (run_id, step_id) REFERENCES steps (run_id, id)
    );
    CREATE TABLE events (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id   TEXT NOT NULL REFERENCES runs (id),
        step_id  TEXT,
        at       TEXT NOT NULL,
        event    TEXT NOT NULL,
        detail   TEXT
    );
    CREATE INDEX events_by_run ON events (run_id, seq);
    CREATE TABLE locks (
        service          TEXT PRIMARY KEY,
        run_id           TEXT NOT NULL,
        host             TEXT NOT NULL,
        pid              INTEGER NOT NULL,
        process_started  TEXT,
        since            TEXT NOT NULL
    );
    """,
    # Replication (failover.replication): the last copy of each object, so an unchanged one
    # is neither read nor sent again, and one row per bucket and pass, for the data's age (RPO).
    """
    CREATE TABLE replica_objects (
        service      TEXT NOT NULL,
        target       TEXT NOT NULL,
        container    TEXT NOT NULL,
        key          TEXT NOT NULL,
        source_etag  TEXT NOT NULL,
        size         INTEGER NOT NULL,
        md5          TEXT NOT NULL,
        target_hash  TEXT,
        copied_at    TEXT NOT NULL,
        PRIMARY KEY (service, target, container, key)
    );
    CREATE TABLE replications (
        id            TEXT NOT NULL,
        service       TEXT NOT NULL,
        target        TEXT NOT NULL,
        bucket        TEXT NOT NULL,
        container     TEXT NOT NULL,
        listed_at     TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        objects       INTEGER NOT NULL,
        bytes         INTEGER NOT NULL,
        copied        INTEGER NOT NULL,
        copied_bytes  INTEGER NOT NULL,
        deleted       INTEGER NOT NULL,
        refused       INTEGER NOT NULL,
        PRIMARY KEY (id, bucket)
    );
    CREATE INDEX replications_by_bucket ON replications (service, target, bucket, listed_at);
    """,
]


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    service: str
    taken_at: str
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "service": self.service, "taken_at": self.taken_at, "counts": self.counts}


@dataclass(frozen=True)
class ReplicaObject:
    """The last copy of one object: the source's ETag and size then, the MD5 of the bytes
    copied, and the hash (ETag) the target gave its copy."""

    key: str
    source_etag: str
    size: int
    md5: str
    target_hash: str | None
    copied_at: str


@dataclass(frozen=True)
class ReplicationRecord:
    """One bucket's completed pass of a replication. ``listed_at`` is when the source was
    listed: the replica holds the bucket as it was then."""

    id: str
    service: str
    target: str
    bucket: str
    container: str
    listed_at: str
    finished_at: str
    objects: int
    bytes: int
    copied: int
    copied_bytes: int
    deleted: int
    refused: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def new_id(prefix: str) -> str:
    """Sortable by time, unique: ``snap-20261128T021539Z-3f2a9c``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self._lock = threading.RLock()
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        old_umask = os.umask(0o077)
        try:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise FailoverError(f"cannot create the state directory: {exc.strerror}", where=str(self.directory)) from None
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                self._migrate(conn)
            except sqlite3.DatabaseError as exc:
                raise FailoverError(f"the state database is unreadable: {exc}", where=str(self.path)) from None
        finally:
            os.umask(old_umask)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise FailoverError(
                f"the state database has schema version {version}, newer than this failover ({len(MIGRATIONS)}); upgrade failover",
                where=str(self.path),
            )
        for index in range(version, len(MIGRATIONS)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[index]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- access ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction; safe to use from several threads."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        return self.query("PRAGMA user_version")[0][0]

    # -- snapshots ---------------------------------------------------------------------
    def save_snapshot(self, manifest: Manifest) -> SnapshotInfo:
        info = SnapshotInfo(id=new_id("snap"), service=manifest.service, taken_at=manifest.taken_at, counts=manifest.counts())
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO snapshots (id, service, taken_at, counts, manifest) VALUES (?, ?, ?, ?, ?)",
                (info.id, info.service, info.taken_at, json.dumps(info.counts), manifest.to_json()),
            )
        return info

    def snapshots(self, service: str) -> list[SnapshotInfo]:
        rows = self.query(
            "SELECT id, service, taken_at, counts FROM snapshots WHERE service = ? ORDER BY taken_at, id", (service,)
        )
        return [SnapshotInfo(r["id"], r["service"], r["taken_at"], json.loads(r["counts"])) for r in rows]

    def resolve_snapshot(self, service: str, ref: str) -> SnapshotInfo:
        """``latest``, ``previous``, an id, or an unambiguous id prefix."""
        snaps = self.snapshots(service)
        if ref in ("latest", "previous"):
            need = 1 if ref == "latest" else 2
            if len(snaps) < need:
                have = "no snapshot" if not snaps else "only one snapshot"
                raise NotFound([Problem(file="snapshot", field=ref, message=f"there is {have} of {service}; run `failover inventory`")])
            return snaps[-need]
        matches = [s for s in snaps if s.id == ref] or [s for s in snaps if s.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        why = "ambiguous snapshot id" if matches else f"no snapshot of {service} with that id (see `failover snapshots`)"
        raise NotFound([Problem(file="snapshot", field=ref, message=why)])

    def load_snapshot(self, service: str, ref: str) -> tuple[SnapshotInfo, Manifest]:
        info = self.resolve_snapshot(service, ref)
        row = self.query("SELECT manifest FROM snapshots WHERE id = ?", (info.id,))[0]
        return info, parse_manifest(json.loads(row["manifest"]), f"snapshot {info.id}")

    # -- replication -------------------------------------------------------------------
    def replica_objects(self, service: str, target: str, container: str) -> dict[str, ReplicaObject]:
        """key -> the last copy of that object into ``container``."""
        rows = self.query(
            "SELECT key, source_etag, size, md5, target_hash, copied_at FROM replica_objects"
            " WHERE service = ? AND target = ? AND container = ?",
            (service, target, container),
        )
        return {row["key"]: ReplicaObject(*row) for row in rows}

    def save_replica_objects(self, service: str, target: str, container: str, objects: Iterable[ReplicaObject]) -> None:
        rows = [
            (service, target, container, o.key, o.source_etag, o.size, o.md5, o.target_hash, o.copied_at) for o in objects
        ]
        if rows:
            with self.transaction() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO replica_objects"
                    " (service, target, container, key, source_etag, size, md5, target_hash, copied_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def forget_replica_objects(self, service: str, target: str, container: str, keys: Iterable[str]) -> None:
        rows = [(service, target, container, key) for key in keys]
        if rows:
            with self.transaction() as conn:
                conn.executemany(
                    "DELETE FROM replica_objects WHERE service = ? AND target = ? AND container = ? AND key = ?", rows
                )

    def save_replication(self, record: ReplicationRecord) -> None:
        columns = list(record.__dict__)
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO replications ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                tuple(record.__dict__.values()),
            )

    def replications(self, service: str, target: str | None = None) -> list[ReplicationRecord]:
        """Every bucket's replication passes, oldest first."""
        sql, params = "SELECT * FROM replications WHERE service = ?", [service]
        if target is not None:
            sql, params = sql + " AND target = ?", params + [target]
        rows = self.query(sql + " ORDER BY listed_at, rowid", tuple(params))
        return [ReplicationRecord(**dict(row)) for row in rows]

    def last_replication(self, service: str, target: str, bucket: str) -> ReplicationRecord | None:
        """The newest completed replication of ``bucket`` onto ``target``."""
        rows = self.query(
            "SELECT * FROM replications WHERE service = ? AND target = ? AND bucket = ?"
            " ORDER BY listed_at DESC, rowid DESC LIMIT 1",
            (service, target, bucket),
        )
        return ReplicationRecord(**dict(rows[0])) if rows else None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
