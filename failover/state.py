"""The state store: one SQLite database in the state directory, or a PostgreSQL database.

Snapshots, runs, steps and their journal, the lock, replication records. The directory
is created 0700 and every file in it 0600. The schema carries a version
(``PRAGMA user_version``) and is brought forward by the ordered ``MIGRATIONS``.

``StateStore(path)`` is the embedded SQLite store; ``StateStore("postgresql://...")`` the
same store on PostgreSQL for a team (``failover.state_pg``: the same migrations, translated),
whose service lock is an advisory lock (``advisory_locks``). :func:`open_store` opens the
one a config names.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failover.errors import FailoverError, NotFound, Problem
from failover.files import private_directory
from failover.manifest import Manifest, parse_manifest
from failover.state_pg import PostgresBackend, is_dsn

REPORTS_DIR = "reports"  # the drill reports, under the state directory
DB_NAME = "state.db"
REPLICA_PAGE = 1000  # copy records read at a time, in key order

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
    # Replication (failover.replicate.buckets): the last copy of each object, so an unchanged one
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
    # Readiness: DNS zones mirrored and database dumps taken by ``replicate``, drills and the
    # recovery time they measured, and the drill prefix a run's names were isolated under.
    """
    ALTER TABLE runs ADD COLUMN drill_prefix TEXT;
    CREATE TABLE zone_mirrors (
        id           TEXT NOT NULL,
        service      TEXT NOT NULL,
        target       TEXT NOT NULL,
        zone         TEXT NOT NULL,
        read_at      TEXT NOT NULL,
        finished_at  TEXT NOT NULL,
        record_sets  INTEGER NOT NULL,
        written      INTEGER NOT NULL,
        deleted      INTEGER NOT NULL,
        digest       TEXT NOT NULL,
        sets         TEXT NOT NULL,
        PRIMARY KEY (id, zone)
    );
    CREATE INDEX zone_mirrors_by_zone ON zone_mirrors (service, target, zone, finished_at);
    CREATE TABLE dumps (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        target       TEXT NOT NULL,
        database     TEXT NOT NULL,
        engine       TEXT NOT NULL,
        container    TEXT NOT NULL,
        key          TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT NOT NULL,
        bytes        INTEGER NOT NULL,
        md5          TEXT NOT NULL,
        pruned_at    TEXT
    );
    CREATE INDEX dumps_by_database ON dumps (service, target, database, started_at);
    CREATE TABLE drills (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        target       TEXT NOT NULL,
        playbook     TEXT NOT NULL,
        prefix       TEXT NOT NULL,
        run_id       TEXT,
        status       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        rto_s        REAL,
        teardown_s   REAL,
        clean        INTEGER,
        report       TEXT,
        error        TEXT
    );
    CREATE INDEX drills_by_time ON drills (service, target, started_at);
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


@dataclass(frozen=True)
class ZoneMirrorRecord:
    """One zone's mirroring onto the target DNS by a ``replicate`` pass. ``read_at`` is when
    the source zone was read; ``sets`` the record sets the mirror was made to hold (JSON:
    ``[{"name", "type", "ttl", "values"}]``), ``digest`` their SHA-256, both in a canonical order."""

    id: str
    service: str
    target: str
    zone: str
    read_at: str
    finished_at: str
    record_sets: int
    written: int
    deleted: int
    digest: str
    sets: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "sets": json.loads(self.sets)}


@dataclass(frozen=True)
class DumpRecord:
    """One database dump streamed into the target's dumps container and verified there.
    ``pruned_at`` is set when it was deleted to keep only the newest N."""

    id: str
    service: str
    target: str
    database: str
    engine: str
    container: str
    key: str
    started_at: str
    finished_at: str
    bytes: int
    md5: str
    pruned_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DrillRecord:
    """A drill: its run (isolated under ``prefix``), the recovery time it measured (run start
    to healthy, ``rto_s``), its teardown, and whether the target was left as found (``clean``)."""

    id: str
    service: str
    target: str
    playbook: str
    prefix: str
    run_id: str | None
    status: str  # running, succeeded, failed (the run failed), teardown_failed
    started_at: str
    ended_at: str | None = None
    rto_s: float | None = None
    teardown_s: float | None = None
    clean: bool | None = None
    report: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def new_id(prefix: str) -> str:
    """Sortable by time, unique: ``snap-20261128T021539Z-3f2a9c``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


class StateStore:
    def __init__(self, location: Path | str) -> None:
        self._lock = threading.RLock()
        self.backend: PostgresBackend | None = None
        if is_dsn(location):
            self.backend = PostgresBackend(str(location), MIGRATIONS)
            self.where = self.backend.where
            return
        self.directory = Path(location)
        self.path = self.directory / DB_NAME
        self.where = str(self.path)
        self._conn = self._open()

    @property
    def advisory_locks(self) -> bool:
        """Whether the service's lock is the backend's advisory lock (PostgreSQL) rather than
        the ``locks`` row alone (SQLite, where a holder's liveness is checked by pid)."""
        return self.backend is not None

    def try_advisory_lock(self, name: str) -> bool:
        return self.backend.try_advisory_lock(name) if self.backend is not None else True

    def advisory_unlock(self, name: str) -> None:
        if self.backend is not None:
            self.backend.advisory_unlock(name)

    # -- opening ---------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        old_umask = os.umask(0o077)
        try:
            private_directory(self.directory, what="state directory")  # made 0700, or tightened to it
            if os.path.lexists(self.directory / REPORTS_DIR):  # refused before a drill, not after it
                private_directory(self.directory / REPORTS_DIR, what="reports directory")
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
            (self.backend or self._conn).close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- access ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction; safe to use from several threads."""
        if self.backend is not None:
            with self._lock, self.backend.transaction() as handle:
                yield handle  # type: ignore[misc]
            return
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
            if self.backend is not None:
                return self.backend.query(sql, params)  # type: ignore[return-value]
            return self._conn.execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        if self.backend is not None:
            return self.backend.schema_version
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

    def iter_replica_objects(
        self, service: str, target: str, container: str, *, page: int = REPLICA_PAGE,
    ) -> Iterator[ReplicaObject]:
        """The last copies into ``container`` in key order (code point order, as S3 lists and as
        Python compares strings), read ``page`` rows at a time: a bounded window, not the bucket."""
        after: str | None = None
        while True:
            rows = self.query(
                "SELECT key, source_etag, size, md5, target_hash, copied_at FROM replica_objects"
                " WHERE service = ? AND target = ? AND container = ?" + (" AND key > ?" if after is not None else "")
                + " ORDER BY key LIMIT ?",
                (service, target, container, *(() if after is None else (after,)), page),
            )
            yield from (ReplicaObject(*row) for row in rows)
            if len(rows) < page:
                return
            after = rows[-1]["key"]

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

    # -- DNS zone mirrors ------------------------------------------------------------------
    def save_zone_mirror(self, record: ZoneMirrorRecord) -> None:
        self._insert("zone_mirrors", record.__dict__)

    def zone_mirrors(self, service: str, target: str | None = None) -> list[ZoneMirrorRecord]:
        """Every zone's mirror passes, oldest first."""
        rows = self._select("zone_mirrors", service, target, order="finished_at, rowid")
        return [ZoneMirrorRecord(**row) for row in rows]

    def last_zone_mirror(self, service: str, target: str, zone: str) -> ZoneMirrorRecord | None:
        rows = self.query(
            "SELECT * FROM zone_mirrors WHERE service = ? AND target = ? AND zone = ?"
            " ORDER BY finished_at DESC, rowid DESC LIMIT 1",
            (service, target, zone),
        )
        return ZoneMirrorRecord(**dict(rows[0])) if rows else None

    # -- database dumps --------------------------------------------------------------------
    def save_dump(self, record: DumpRecord) -> None:
        self._insert("dumps", record.__dict__)

    def dumps(self, service: str, target: str | None = None, database: str | None = None,
              *, include_pruned: bool = False) -> list[DumpRecord]:
        """Dumps, newest first."""
        sql, params = "SELECT * FROM dumps WHERE service = ?", [service]
        if target is not None:
            sql, params = sql + " AND target = ?", params + [target]
        if database is not None:
            sql, params = sql + " AND database = ?", params + [database]
        if not include_pruned:
            sql += " AND pruned_at IS NULL"
        rows = self.query(sql + " ORDER BY started_at DESC, rowid DESC", tuple(params))
        return [DumpRecord(**dict(row)) for row in rows]

    def mark_dumps_pruned(self, dump_ids: Iterable[str], at: str) -> None:
        rows = [(at, dump_id) for dump_id in dump_ids]
        if rows:
            with self.transaction() as conn:
                conn.executemany("UPDATE dumps SET pruned_at = ? WHERE id = ?", rows)

    # -- drills ----------------------------------------------------------------------------
    def save_drill(self, record: DrillRecord) -> None:
        """Insert or replace (a drill is saved when it starts and again as it goes)."""
        values = {**record.__dict__, "clean": None if record.clean is None else int(record.clean)}
        with self.transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO drills ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
                tuple(values.values()),
            )

    def drills(self, service: str, target: str | None = None) -> list[DrillRecord]:
        """Drills, newest first."""
        rows = self._select("drills", service, target, order="started_at DESC, rowid DESC")
        return [_drill(row) for row in rows]

    def drill(self, drill_id: str) -> DrillRecord:
        rows = self.query("SELECT * FROM drills WHERE id = ?", (drill_id,))
        if not rows:
            raise NotFound([Problem(file="state", field="drill", message=f"no drill {drill_id}")])
        return _drill(dict(rows[0]))

    # -- helpers ---------------------------------------------------------------------------
    def _insert(self, table: str, values: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
                tuple(values.values()),
            )

    def _select(self, table: str, service: str, target: str | None, *, order: str) -> list[dict[str, Any]]:
        sql, params = f"SELECT * FROM {table} WHERE service = ?", [service]
        if target is not None:
            sql, params = sql + " AND target = ?", params + [target]
        return [dict(row) for row in self.query(f"{sql} ORDER BY {order}", tuple(params))]


def open_store(config: Any) -> StateStore:
    """The store a config's ``state:`` names: a directory (SQLite), or a PostgreSQL DSN whose
    ``${env:NAME}`` references are read now (URL-quoted) and never kept."""
    dsn = config.state_dsn
    if dsn is None:
        return StateStore(config.state_dir)
    return StateStore(resolve_dsn(dsn, file=str(config.path)))


def resolve_dsn(dsn: str, *, file: str) -> str:
    from urllib.parse import quote

    from failover.config import ENV_REF, ConfigError

    def value(name: str) -> str:
        if name not in os.environ:
            raise ConfigError([Problem(file=file, field="state", message=f"environment variable {name} is not set")])
        return os.environ[name]

    whole = ENV_REF.fullmatch(dsn.strip())
    resolved = value(whole.group(1)) if whole else ENV_REF.sub(lambda m: quote(value(m.group(1)), safe=""), dsn)
    if not is_dsn(resolved):
        raise ConfigError([Problem(file=file, field="state",
                                   message="the variable does not hold a postgresql:// DSN")])
    return resolved


def _drill(row: dict[str, Any]) -> DrillRecord:
    return DrillRecord(**{**row, "clean": None if row["clean"] is None else bool(row["clean"])})


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
