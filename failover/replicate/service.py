"""One whole ``failover replicate`` pass as a library call: :func:`replicate`.

A pass runs parts one after the other (``PARTS``), each copying one kind of data and
reporting it as a :class:`PartResult` (its rows and totals, what failed, what to note):

- ``buckets``: the latest snapshot's buckets into their containers on the target storage,
  incrementally, verified by MD5 (:mod:`failover.replicate.buckets`); ``buckets=`` picks some;
- ``zones``: the snapshot's public DNS zones (those ``copy-dns-zones`` copies by default),
  their record sets read from the source now, mirrored onto the target DNS writing only
  the sets that differ, apex SOA and NS left to the target (:mod:`failover.replicate.zones`);
- ``databases``: a dump of each database of the config's ``databases`` (``pg_dump -Fc``,
  or ``mysqldump`` gzipped) streamed into the target's dumps container, verified, the
  newest ``keep`` kept (:mod:`failover.replicate.dumps`).

Every part checks its inputs before any part runs: an unknown bucket, a config database
not in the snapshot or of an engine without dumps, a profile without the storage or DNS a
part needs, an unset secret, raise InputError or ConfigError and nothing is read or
written. With ``delete``, what the source no longer has is deleted from the replicas
(objects, record sets; never dumps, which ``keep`` governs), and a mass deletion (the
source listing nothing, or more than a tenth of a replica going) is refused unless ``force``.

A part's failure (a refused mass deletion, a copy or dump that did not verify, a dump tool
that failed) is in its rows and :attr:`ReplicateResult.failures`, and the other parts go
on; a source or target that cannot be reached or refuses the credentials raises at once
(ProviderError). The pass holds the service's lock (LockHeld names the holder) and prints
nothing: progress goes to a :class:`ReplicateProgress` the caller gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from failover.adapters import source_storage, source_zones
from failover.config import Config, DatabaseSpec, resolve_secrets
from failover.databases.base import engine_for
from failover.dnsnames import selected_zones
from failover.engine.lock import ServiceLock
from failover.errors import ConfigError, InputError, OperationFailed, Problem, TransientError
from failover.keytext import shown
from failover.manifest import Database, DnsZone, Manifest, now_iso
from failover.naming import DUMPS_BUCKET
from failover.ports import SourceZones
from failover.replicate.buckets import DEFAULT_WORKERS, BucketResult, CopyProgress, Replicator, is_local_disk
from failover.replicate.dumps import DumpResult, check_dsn, database_dsn, dump_database, prune
from failover.replicate.zones import MirrorRefused, ZonePass, mirror_zone
from failover.state import SnapshotInfo, StateStore, new_id, open_store
from failover.targets import Targets

PARTS = ("buckets", "zones", "databases")
MAX_WORKERS = 64


# -- what the caller asks for ------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicateOptions:
    """What to replicate where; :meth:`parse` checks it (InputError naming the argument)."""

    target: str
    parts: tuple[str, ...] = PARTS
    buckets: tuple[str, ...] = ()
    delete: bool = False
    force: bool = False
    workers: int = DEFAULT_WORKERS

    @classmethod
    def parse(
        cls, target: str, *, only: Iterable[str] | None = None, buckets: Iterable[str] | None = None,
        delete: bool = False, force: bool = False, workers: int = DEFAULT_WORKERS,
    ) -> ReplicateOptions:
        """``only``: part names (``"zones"``, or several separated by commas); none: every part."""
        if force and not delete:
            raise InputError([Problem(file="arguments", field="--force", message="only means something with --delete")])
        if not 1 <= workers <= MAX_WORKERS:
            raise InputError([Problem(file="arguments", field="--workers", message=f"must be 1 to {MAX_WORKERS}")])
        return cls(target=target, parts=selected_parts(only), buckets=tuple(buckets or ()), delete=delete, force=force,
                   workers=workers)


def selected_parts(only: Iterable[str] | None) -> tuple[str, ...]:
    """The ``only`` parts, checked, in their fixed order; all of them by default."""
    wanted = [part.strip().lower() for value in (only or []) for part in value.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in PARTS]
    if unknown:
        raise InputError([Problem(file="arguments", field="--only",
                                  message=f"no part {', '.join(map(repr, unknown))} (parts: {', '.join(PARTS)})")])
    return tuple(name for name in PARTS if not wanted or name in wanted)


class ReplicateProgress:
    """What a pass tells while it runs; this one tells nobody. Methods may be called from
    the copy's worker threads."""

    @contextmanager
    def bucket(self, name: str) -> Iterator[None]:
        """While a bucket's pass runs (listing first, then the copy)."""
        yield

    def copied(self, progress: CopyProgress) -> None:
        """A bucket's copy went on (from the Replicator's worker threads)."""

    @contextmanager
    def transfer(self, name: str) -> Iterator[Callable[[int], None]]:
        """While a stream of unknown size (a database dump) runs; yields the callback that
        takes the bytes sent so far."""
        yield lambda done: None

    def lock_taken_over(self, service: str, holder: str) -> None:
        """The service's lock was taken over from ``holder``, whose process is gone."""


# -- what a pass gives back --------------------------------------------------------------------


@dataclass
class PartResult:
    """One part's rows (a bucket, a zone, a database each) and totals, as in the JSON
    document; ``failures`` and ``notes`` name what failed and what a person should know."""

    name: str
    items: list[dict[str, Any]]
    totals: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "totals": self.totals}


@dataclass
class ReplicateResult:
    service: str
    target: str
    snapshot: str
    started_at: str
    finished_at: str
    elapsed_s: float
    parts: dict[str, PartResult]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[str]:
        return [failure for part in self.parts.values() for failure in part.failures]

    def to_dict(self) -> dict[str, Any]:
        """``failover replicate --json``'s document."""
        return {
            "service": self.service, "target": self.target, "snapshot": self.snapshot, "started_at": self.started_at,
            "finished_at": self.finished_at, "elapsed_s": self.elapsed_s, "parts": list(self.parts), "ok": self.ok,
            **{name: part.to_dict() for name, part in self.parts.items()},
        }


# -- the pass ------------------------------------------------------------------------------------


def replicate(
    config: Config, target: str, *, only: Iterable[str] | None = None, buckets: Iterable[str] | None = None,
    delete: bool = False, force: bool = False, workers: int = DEFAULT_WORKERS, store: StateStore | None = None,
    progress: ReplicateProgress | None = None,
) -> ReplicateResult:
    """One pass of the latest snapshot's buckets, zones and database dumps onto the target
    profile ``target`` (see the module's docstring). ``store``: the config's state store,
    opened here when not given."""
    options = ReplicateOptions.parse(target, only=only, buckets=buckets, delete=delete, force=force, workers=workers)
    return replicate_pass(config, options, store=store, progress=progress)


def replicate_pass(
    config: Config, options: ReplicateOptions, *, store: StateStore | None = None,
    progress: ReplicateProgress | None = None,
) -> ReplicateResult:
    """:func:`replicate` with its options parsed already."""
    targets = Targets(config, options.target)  # an unknown profile is an input error, before the state is opened
    with nullcontext(store) if store is not None else open_store(config) as opened:
        snapshot, manifest = opened.load_snapshot(config.service, "latest")  # none yet: run `failover inventory`
        replication = Replication(config, opened, snapshot, manifest, targets, options, progress or ReplicateProgress())
        for part in replication.parts:
            part.check(replication)
        with service_lock(opened, config.service, replication.progress):
            return run_parts(replication)


@dataclass
class Replication:
    """What every part works from: the config, the latest snapshot and the target profile."""

    config: Config
    store: StateStore
    snapshot: SnapshotInfo
    manifest: Manifest
    targets: Targets
    options: ReplicateOptions
    progress: ReplicateProgress

    @property
    def parts(self) -> list[Part]:
        """The parts to replicate, in their fixed order."""
        return [part for part in ALL_PARTS if part.name in self.options.parts]


class Part(Protocol):
    name: str  # its key in the JSON document

    def check(self, replication: Replication) -> None:
        """Raise InputError for what is wrong with the inputs, before any part runs."""

    def run(self, replication: Replication) -> PartResult: ...


@contextmanager
def service_lock(store: StateStore, service: str, progress: ReplicateProgress) -> Iterator[None]:
    """The service's lock while replicating: not while a run or a drill changes the target
    (a drill compares the target before and after; a run's sync-buckets writes the same
    containers). LockHeld (exit 3) names the holder."""
    lock, holder = ServiceLock(store, service), new_id("replicate")
    took_over = lock.acquire(holder)
    if took_over is not None:
        progress.lock_taken_over(service, str(took_over))
    try:
        yield
    finally:
        lock.release(holder)


def run_parts(replication: Replication) -> ReplicateResult:
    """Every part, one after the other."""
    started_at, started = now_iso(), time.monotonic()
    parts = {part.name: part.run(replication) for part in replication.parts}
    return ReplicateResult(
        service=replication.config.service, target=replication.options.target, snapshot=replication.snapshot.id,
        started_at=started_at, finished_at=now_iso(), elapsed_s=round(time.monotonic() - started, 3), parts=parts,
    )


def _rate(size: int, seconds: float) -> int:
    return round(size / seconds) if seconds > 0 else 0


def build_driver(storage: Any) -> None:
    """Build the storage driver now: unset secrets and options the driver refuses are input
    errors, found before anything is read or written."""
    storage.keeps_metadata  # noqa: B018 - reading it builds the driver


# -- buckets ----------------------------------------------------------------------------------


class Buckets:
    """Each snapshot bucket into its container on the target's storage, one pass per bucket,
    so that a bucket's failure (a refused mass deletion) leaves the others replicated."""

    name = "buckets"

    def check(self, replication: Replication) -> None:
        if not self.selected(replication):
            return  # no bucket to copy: a profile without storage is fine (DNS only, say)
        spec = replication.targets.profile.storage
        where = f"targets.{replication.options.target}.storage"
        if spec is None:
            raise ConfigError([Problem(
                file=str(replication.config.path), field=where,
                message="replicate copies the snapshot's buckets into the target's storage, and this profile has"
                        " none (--only zones --only databases replicates the rest)")])
        build_driver(replication.targets.storage)

    def selected(self, replication: Replication) -> list[Any]:
        """The snapshot's buckets, or those named with --bucket; an unknown name is an input error."""
        in_snapshot = {item.id: item for item in replication.manifest.of_kind("bucket")}
        wanted = replication.options.buckets or sorted(in_snapshot)
        unknown = [name for name in wanted if name not in in_snapshot]
        if unknown:
            known = ", ".join(sorted(in_snapshot)) or "none"
            raise InputError([Problem(
                file="arguments", field="--bucket",
                message=f"no bucket {', '.join(unknown)} in snapshot {replication.snapshot.id} (it has: {known})")])
        return [in_snapshot[name] for name in dict.fromkeys(wanted)]

    def run(self, replication: Replication) -> PartResult:
        buckets = self.selected(replication)
        if not buckets:
            return PartResult(self.name, [], totals([]))
        replicator = self._replicator(replication, buckets)
        rows = [self._replicate_one(replication, replicator, item) for item in buckets]
        failures = [f"bucket {row['bucket']}: {row['error']}" for row in rows if row["error"]]
        notes = [
            f"bucket {row['bucket']}: {len(row['refused_keys'])} key(s) not copied: "
            + "; ".join(f"{shown(key)} ({why})" for key, why in list(row["refused_keys"].items())[:5])
            for row in rows if row["refused_keys"]
        ]
        return PartResult(self.name, rows, totals(rows), failures, notes)

    def _replicator(self, replication: Replication, buckets: list[Any]) -> Replicator:
        options, config = replication.options, replication.config
        source = source_storage(config, {item.id: item.region for item in buckets}, options.workers)
        return Replicator(
            source, replication.targets.storage, replication.store, service=config.service, target_name=options.target,
            workers=options.workers, local_disk=is_local_disk(replication.targets.profile.storage),
            progress=replication.progress.copied,
        )

    def _replicate_one(self, replication: Replication, replicator: Replicator, item: Any) -> dict[str, Any]:
        options = replication.options
        started = time.monotonic()
        with replication.progress.bucket(item.id):
            try:
                result = replicator.replicate([item.id], delete=options.delete, force=options.force).buckets[0]
            except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
                done = getattr(exc, "bucket_result", None)  # what the failed pass had done
                return bucket_row(item.id, replication.targets.storage.container_name(item.id), done,
                                  time.monotonic() - started, error=str(exc))
        return bucket_row(item.id, result.container, result, time.monotonic() - started)


def bucket_row(
    bucket: str, container: str, result: BucketResult | None, elapsed: float, error: str | None = None,
) -> dict[str, Any]:
    counts = {name: getattr(result, name, 0)
              for name in ("objects", "bytes", "copied", "copied_bytes", "skipped", "deleted")}
    refused = dict(result.refused) if result is not None else {}
    return {
        "bucket": bucket, "container": container, **counts, "refused": len(refused), "refused_keys": refused,
        "created_container": bool(result and result.created_container),
        "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(counts["copied_bytes"], elapsed), "error": error,
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {name: sum(row[name] for row in rows)
              for name in ("objects", "bytes", "copied", "copied_bytes", "skipped", "deleted", "refused")}
    elapsed = sum(row["elapsed_s"] for row in rows)
    return {**summed, "failed": sum(1 for row in rows if row["error"]), "elapsed_s": round(elapsed, 3),
            "bytes_per_s": _rate(summed["copied_bytes"], elapsed)}


# -- zones ------------------------------------------------------------------------------------


class Zones:
    """The snapshot's public DNS zones (what ``copy-dns-zones`` copies by default), read from
    the source now and mirrored onto the target DNS, one pass per zone, so that a zone's
    failure (a refused mass deletion, a zone gone from the source) leaves the others mirrored."""

    name = "zones"

    def selected(self, replication: Replication) -> list[DnsZone]:
        return selected_zones(replication.manifest, None)

    def check(self, replication: Replication) -> None:
        zones = self.selected(replication)
        if not zones:
            return
        spec, config = replication.targets.profile.dns, replication.config
        where = f"targets.{replication.options.target}.dns"
        if spec is None:
            names = ", ".join(zone.name for zone in zones)
            raise ConfigError([Problem(
                file=str(config.path), field=where,
                message=f"replicate mirrors the snapshot's DNS zones ({names}), and this profile has no dns target"
                        " (--only buckets --only databases replicates the rest)")])
        resolve_secrets(spec.options, file=str(config.path), field=f"{where}.options")  # unset: an input error, now

    def run(self, replication: Replication) -> PartResult:
        zones = self.selected(replication)
        source = source_zones(replication.config) if zones else None
        rows = [self._mirror_one(replication, source, zone) for zone in zones]
        failures = [f"zone {row['zone']}: {row['error']}" for row in rows if row["error"]]
        notes = []
        for row in rows:
            if row["refused_sets"]:
                notes.append(f"zone {row['zone']}: {len(row['refused_sets'])} record set(s) refused: " + "; ".join(
                    f"{shown(item['name'])} {item['type']} ({item['reason']})" for item in row["refused_sets"][:5]))
            if row["skipped"]:
                notes.append(f"zone {row['zone']}: {len(row['skipped'])} record set(s) not mirrored: " + "; ".join(
                    f"{item['name']} {item['type']} ({item['reason']})" for item in row["skipped"][:5]))
            if row["extra"] and not replication.options.delete and not row["error"]:
                notes.append(f"zone {row['zone']}: {len(row['extra'])} record set(s) on the target are not on the"
                             f" source, left alone (--delete deletes them): {', '.join(row['extra'][:5])}")
        return PartResult(self.name, rows, zone_totals(rows), failures, notes)

    def _mirror_one(self, replication: Replication, source: SourceZones, zone: DnsZone) -> dict[str, Any]:
        options, config = replication.options, replication.config
        started = time.monotonic()
        try:
            read_at = now_iso()
            fresh = source.read(zone)  # unreachable or refused: exit 4 at once
            result = mirror_zone(
                replication.targets.dns, replication.store, fresh, service=config.service, target_name=options.target,
                read_at=read_at, delete=options.delete, force=options.force,
            )
        except MirrorRefused as exc:
            return zone_row(zone.name, None, time.monotonic() - started, error=str(exc), refused=exc.refused)
        except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
            return zone_row(zone.name, None, time.monotonic() - started, error=str(exc))
        return zone_row(result.zone, result, time.monotonic() - started)


def zone_row(
    zone: str, result: ZonePass | None, elapsed: float, error: str | None = None, refused: int = 0,
) -> dict[str, Any]:
    counts = {name: getattr(result, name, 0) for name in ("record_sets", "written", "unchanged", "deleted")}
    refused_sets = list(result.refused_sets) if result else []
    return {
        "zone": zone, **counts, "refused": refused + len(refused_sets), "refused_sets": refused_sets,
        "created_zone": bool(result and result.created_zone),
        "elapsed_s": round(elapsed, 3), "error": error,
        "written_sets": list(result.written_sets) if result else [],
        "deleted_sets": list(result.deleted_sets) if result else [],
        "extra": list(result.extra) if result else [], "skipped": list(result.skipped) if result else [],
        "digest": result.digest if result else None,
    }


def zone_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {name: sum(row[name] for row in rows)
              for name in ("record_sets", "written", "unchanged", "deleted", "refused")}
    return {**summed, "created_zones": sum(1 for row in rows if row["created_zone"]),
            "failed": sum(1 for row in rows if row["error"]),
            "elapsed_s": round(sum(row["elapsed_s"] for row in rows), 3)}


# -- databases --------------------------------------------------------------------------------


class Databases:
    """A dump of each database of the config's ``databases`` (keyed by its name in the snapshot),
    streamed from the engine's dump tool into the target's dumps container, verified, recorded;
    then the older dumps beyond the database's ``keep`` are deleted. One database's failure
    (a wrong password) leaves the others dumped."""

    name = "databases"

    def selected(self, replication: Replication) -> list[tuple[str, DatabaseSpec, Database]]:
        """The config's databases with their snapshot resource; InputError for a name the
        snapshot does not have or an engine failover cannot dump."""
        config, snapshot = replication.config, replication.snapshot
        in_snapshot = {db.name: db for db in replication.manifest.of_kind("database")}
        problems, selected = [], []
        for name, spec in config.databases.items():
            db = in_snapshot.get(name)
            if db is None:
                known = ", ".join(sorted(in_snapshot)) or "none"
                problems.append(Problem(file=str(config.path), field=f"databases.{name}",
                                        message=f"no database {name} in snapshot {snapshot.id} (it has: {known})"))
            elif engine_for(db.engine) is None:
                problems.append(Problem(
                    file=str(config.path), field=f"databases.{name}",
                    message=f"engine {db.engine} has no dump format (failover dumps PostgreSQL, MySQL and MariaDB)"))
            else:
                selected.append((name, spec, db))
        if problems:
            raise InputError(problems)
        return selected

    def check(self, replication: Replication) -> None:
        selected = self.selected(replication)
        if not selected:
            return
        config = replication.config
        if replication.targets.profile.storage is None:
            raise ConfigError([Problem(
                file=str(config.path), field=f"targets.{replication.options.target}.storage",
                message="replicate stores database dumps in the target's storage, and this profile has none"
                        " (--only buckets --only zones replicates the rest)")])
        for name, spec, db in selected:  # the DSN read now to check it, and read again when dumping
            check_dsn(database_dsn(spec, file=str(config.path), name=name), db.engine, file=str(config.path), name=name)
        build_driver(replication.targets.storage)

    def run(self, replication: Replication) -> PartResult:
        rows = [self._dump_one(replication, name, spec, db) for name, spec, db in self.selected(replication)]
        failures = [f"database {row['database']}: {row['error']}" for row in rows if row["error"]]
        return PartResult(self.name, rows, database_totals(rows), failures)

    def _dump_one(self, replication: Replication, name: str, spec: DatabaseSpec, db: Database) -> dict[str, Any]:
        options, config, storage = replication.options, replication.config, replication.targets.storage
        started, container = time.monotonic(), storage.container_name(DUMPS_BUCKET)
        result, pruned = None, []
        with replication.progress.transfer(f"{name} (dump)") as advance:
            try:
                dsn = database_dsn(spec, file=str(config.path), name=name)  # from the environment, now
                result = dump_database(
                    storage, replication.store, service=config.service, target_name=options.target,
                    database=name, engine=db.engine, dsn=dsn, progress=advance,
                )
                pruned = prune(storage, replication.store, service=config.service, target_name=options.target,
                               database=name, engine=db.engine, keep=spec.keep)
            except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable is exit 4 at once
                return database_row(name, db.engine, container, result, pruned, time.monotonic() - started,
                                    error=str(exc))
        return database_row(name, db.engine, container, result, pruned, time.monotonic() - started)


def database_row(
    database: str, engine: str, container: str, result: DumpResult | None, pruned: list[str], elapsed: float,
    error: str | None = None,
) -> dict[str, Any]:
    size = result.bytes if result else 0
    return {
        "database": database, "engine": engine, "container": container, "key": result.key if result else None,
        "taken_at": result.taken_at if result else None, "bytes": size, "md5": result.md5 if result else None,
        "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(size, elapsed), "pruned": list(pruned), "error": error,
    }


def database_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    size, elapsed = sum(row["bytes"] for row in rows), sum(row["elapsed_s"] for row in rows)
    return {"dumped": sum(1 for row in rows if row["key"] and not row["error"]), "bytes": size,
            "pruned": sum(len(row["pruned"]) for row in rows), "failed": sum(1 for row in rows if row["error"]),
            "elapsed_s": round(elapsed, 3), "bytes_per_s": _rate(size, elapsed)}


ALL_PARTS: tuple[Part, ...] = (Buckets(), Zones(), Databases())
