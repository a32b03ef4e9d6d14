"""``failover evacuate``: everything that cannot be rebuilt off the source before a deadline, in
order of importance, saying all the time whether it will make it.

Order: a fresh snapshot (the latest stored one when the source no longer answers); the DNS
zones; fresh database dumps; then the buckets in the order of ``evacuation.priority``
(:mod:`failover.evacuate.order`), within a bucket the newest objects first. What is replicated
and unchanged is never copied again (the records of ``failover replicate``, the same table).
Until the deadline it keeps making passes to catch new writes; at the deadline the copies in
flight are cut off (a copy goes up in one request stating its size and MD5, so a cut-off copy
stores nothing) and the last pass ends. When the source stops answering, the passes end too.
Then the playbook of ``then`` runs, if one was given.

Every step is an event (a dict, see :class:`EvacuationEvents`); the caller shows them. Copies
are recorded in the state store in batches as they are done, so a process killed at any
instant loses at most a batch of records, and those copies are found on the target (same size
and MD5) and adopted, not copied again, by the next start.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from failover.adapters import source_storage
from failover.config import Config
from failover.engine import Engine
from failover.engine.journal import Journal
from failover.engine.lock import ServiceLock
from failover.engine.observer import Observer
from failover.errors import OperationFailed, ProviderError, TransientError
from failover.evacuate.batches import Batch, BatchRunner, KeyResult, LocalThreads, copy_object
from failover.evacuate.deadline import Estimate, RateMeter, estimate
from failover.evacuate.listing import PAGE as LISTING_PAGE
from failover.evacuate.listing import BucketDiff, Spool, diff_into, recorded_totals
from failover.evacuate.order import bucket_order, priority_rank
from failover.inventory import take_snapshot
from failover.manifest import Bucket, Manifest, now_iso
from failover.playbook import Playbook
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.replicate.buckets import DEFAULT_WORKERS, CopyResult, LocalCollisions, OutOfOrder, is_local_disk, refusal
from failover.replicate.service import Databases, PartResult, ReplicateOptions, ReplicateProgress, Replication, Zones
from failover.state import ReplicaObject, ReplicationRecord, SnapshotInfo, StateStore, new_id
from failover.targets import Targets

BATCH = 100  # keys per batch handed to the runner
RECORD_EVERY_OBJECTS = 200  # copies recorded per state-store transaction, at most ...
RECORD_EVERY_S = 1.0  # ... and at least this often while copying
PROGRESS_EVERY_S = 2.0  # a progress event at most this often
PAUSE_S = 10.0  # between two passes that found nothing to copy
SPOOL = "evacuate-spool.sqlite"  # in the state directory
KEY_ORDERED_SOURCES = ("aws",)  # S3 lists in key order; another source's listing is sorted through the spool


class EvacuationEvents(Protocol):
    def emit(self, event: dict[str, Any]) -> None:
        """One event (``{"event": name, "at": time, ...}``), from the evacuating thread."""


@dataclass(frozen=True)
class EvacuateOptions:
    target: str
    deadline: datetime
    then: Playbook | None = None
    workers: int = DEFAULT_WORKERS
    max_passes: int | None = None  # stop after this many passes, deadline or not (benchmarks)


RunnerFactory = Callable[[Callable[..., CopyResult], int, Callable[[int], None]], BatchRunner]


@dataclass
class BucketState:
    """One bucket across the passes: its last listing, and what this evacuation did to it."""

    bucket: str
    container: str
    priority: int | None  # the index of the evacuation.priority pattern that placed it
    listed: bool = False
    objects: int = 0
    bytes: int = 0
    unchanged: int = 0
    adopted: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    copied: int = 0  # in all passes
    copied_bytes: int = 0
    # this pass:
    to_copy: int = 0
    to_copy_bytes: int = 0
    done: int = 0
    done_bytes: int = 0
    stopped: int = 0
    stopped_bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    failed_bytes: int = 0
    pass_copied: int = 0
    listed_at: str = ""
    recorded: tuple[int, int] = (0, 0)  # copies recorded before this evacuation listed it: objects, bytes
    error: str | None = None  # why the last pass could not list it

    @property
    def objects_left(self) -> int:
        return self.to_copy - self.done

    @property
    def bytes_left(self) -> int:
        return self.to_copy_bytes - self.done_bytes

    @property
    def missing(self) -> int:
        """Objects of the last listing that are not on the target: never tried, cut off, failed
        (a bucket never listed: the snapshot's count beyond the recorded copies)."""
        if not self.listed:
            return max(0, self.objects - self.recorded[0])
        return self.objects_left + self.stopped + len(self.failed)

    @property
    def missing_bytes(self) -> int:
        if not self.listed:
            return max(0, self.bytes - self.recorded[1])
        return self.bytes_left + self.stopped_bytes + self.failed_bytes

    @property
    def complete(self) -> bool:
        return self.missing == 0

    def new_pass(self) -> None:
        self.error = None
        self.to_copy = self.to_copy_bytes = self.done = self.done_bytes = 0
        self.stopped = self.stopped_bytes = self.failed_bytes = self.pass_copied = 0
        self.failed = {}
        self.unchanged = self.adopted = 0

    def progress(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "objects_done": self.done, "bytes_done": self.done_bytes,
                "objects_left": self.objects_left, "bytes_left": self.bytes_left}

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket, "container": self.container, "priority": self.priority, "listed": self.listed,
            "objects": self.objects, "bytes": self.bytes, "copied": self.copied, "copied_bytes": self.copied_bytes,
            "unchanged": self.unchanged, "adopted": self.adopted, "refused": len(self.refused),
            "refused_keys": dict(self.refused), "failed": len(self.failed), "failed_keys": dict(self.failed),
            "missing_objects": self.missing, "missing_bytes": self.missing_bytes, "complete": self.complete,
            "error": self.error,
        }


class Recorder:
    """Copies recorded in the state store in batches: every ``RECORD_EVERY_OBJECTS`` copies or
    ``RECORD_EVERY_S`` seconds, and on ``flush``."""

    def __init__(self, store: StateStore, service: str, target: str) -> None:
        self.store, self.service, self.target = store, service, target
        self._pending: dict[str, list[ReplicaObject]] = {}
        self._count = 0
        self._last = time.monotonic()

    def add(self, container: str, copy: ReplicaObject) -> None:
        self._pending.setdefault(container, []).append(copy)
        self._count += 1
        if self._count >= RECORD_EVERY_OBJECTS or time.monotonic() - self._last >= RECORD_EVERY_S:
            self.flush()

    def adopt(self, container: str, copies: list[ReplicaObject]) -> None:
        self.store.save_replica_objects(self.service, self.target, container, copies)

    def flush(self) -> None:
        for container, copies in self._pending.items():
            self.store.save_replica_objects(self.service, self.target, container, copies)
        self._pending, self._count, self._last = {}, 0, time.monotonic()


class SourceGone(Exception):
    """The source stopped answering: the passes end here."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class EvacuationResult:
    document: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.document["ok"])


class Evacuation:
    """One ``failover evacuate``: :meth:`run` it once."""

    def __init__(
        self, config: Config, options: EvacuateOptions, store: StateStore, events: EvacuationEvents, *,
        runner: RunnerFactory | None = None, observer: Observer | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.store = store
        self.events = events
        self.targets = Targets(config, options.target)
        self.runner_factory = runner or (lambda copier, workers, read: LocalThreads(copier, workers, read))
        self.observer = observer
        self.meter = RateMeter()
        self.recorder = Recorder(store, config.service, options.target)
        self.buckets: list[BucketState] = []
        self.parts: dict[str, PartResult] = {}
        self.passes = 0
        self.stopped_by = "deadline"
        self.source_gone: str | None = None
        self.snapshot: SnapshotInfo | None = None
        self.snapshot_fresh = False
        self.manifest: Manifest | None = None
        self.late: tuple[str, ...] = ()
        self._last_progress = 0.0
        self._source: SourceStorage | None = None

    # -- the whole evacuation ----------------------------------------------------------------

    def run(self) -> EvacuationResult:
        started_at = now_iso()
        self.emit("started", service=self.config.service, target=self.options.target,
                  deadline=_iso(self.options.deadline), workers=self.options.workers,
                  then=self.options.then.name if self.options.then else None)
        lock, holder = ServiceLock(self.store, self.config.service), new_id("evacuate")
        took_over = lock.acquire(holder)
        if took_over is not None:
            self.emit("lock_taken_over", holder=str(took_over))
        try:
            self._evacuate()
        finally:
            self.recorder.flush()
            lock.release(holder)
        then = self._then() if self.options.then is not None else None
        return EvacuationResult(self._summary(started_at, then))

    def _evacuate(self) -> None:
        self._take_snapshot()
        assert self.manifest is not None
        in_snapshot: list[Bucket] = list(self.manifest.of_kind("bucket"))
        storage = self.targets.storage if in_snapshot else None
        priority = self.config.evacuation.priority
        for item in bucket_order(in_snapshot, priority):
            container = storage.container_name(item.id)
            self.buckets.append(BucketState(
                item.id, container, priority_rank(item.id, priority), objects=item.objects, bytes=item.bytes,
                recorded=recorded_totals(self.store, self.config.service, self.options.target, container)))
        replication = self._replication()
        parts = [part for part in (Zones(), Databases()) if self._wanted(part, replication)]
        for part in parts:
            part.check(replication)  # bad input: exit 2, before anything is written on the target
        if self.source_gone is not None:
            self.stopped_by = "source_gone"
            return
        spool = Spool(self.config.state_dir / SPOOL) if self.buckets else None
        try:
            while self._time_left() > 0:
                self.passes += 1
                try:
                    copied = self._pass(replication, parts, spool)
                except SourceGone as gone:
                    self.source_gone, self.stopped_by = gone.reason, "source_gone"
                    self.emit("source_gone", reason=gone.reason)
                    return
                if self._time_left() <= 0:
                    break
                if self.passes == self.options.max_passes:
                    self.stopped_by = "passes"
                    return
                if not copied and all(state.complete for state in self.buckets):
                    self._pause(min(PAUSE_S, self._time_left()))
        finally:
            if spool is not None:
                spool.close()
        self.emit("deadline", passes=self.passes)

    def _take_snapshot(self) -> None:
        self.emit("snapshot_started")
        try:
            self.snapshot, self.manifest = take_snapshot(self.config, self.store)
            self.snapshot_fresh = True
        except ProviderError as exc:
            if not self.store.snapshots(self.config.service):
                raise  # nothing to work from: the source's error (exit 4)
            self.source_gone = str(exc)
            self.snapshot, self.manifest = self.store.load_snapshot(self.config.service, "latest")
        self.emit("snapshot", snapshot=self.snapshot.id, taken_at=self.snapshot.taken_at, fresh=self.snapshot_fresh,
                  reason=self.source_gone)
        if self.source_gone is not None:
            self.emit("source_gone", reason=self.source_gone)

    def _replication(self) -> Replication:
        assert self.snapshot is not None and self.manifest is not None
        options = ReplicateOptions(target=self.options.target, parts=("zones", "databases"))
        return Replication(self.config, self.store, self.snapshot, self.manifest, self.targets, options,
                           ReplicateProgress())

    def _wanted(self, part: Zones | Databases, replication: Replication) -> bool:
        """A part with something to copy; one whose target the profile lacks is skipped with a note."""
        if not part.selected(replication):
            return False
        needs = "dns" if part.name == "zones" else "storage"
        if not self.targets.has(needs):
            self.emit("part_skipped", part=part.name, reason=f"the target profile has no {needs}")
            return False
        return True

    # -- one pass ------------------------------------------------------------------------------

    def _pass(self, replication: Replication, parts: list[Zones | Databases], spool: Spool | None) -> int:
        """Zones, dumps, then every bucket; the objects copied. SourceGone when the source stopped answering."""
        self.emit("pass_started", **{"pass": self.passes})
        for part in parts:
            if self._time_left() <= 0:
                return 0
            self.emit("part_started", part=part.name, **{"pass": self.passes})
            result = self._guarded(lambda part=part: part.run(replication))
            self.parts[part.name] = result
            self.emit(part.name, **{"pass": self.passes}, **result.to_dict(), failures=result.failures)
        if spool is None:
            return 0
        spool.clear()
        for state in self.buckets:
            if self._time_left() <= 0:
                return 0
            try:
                self._guarded(lambda state=state: self._list(state, spool))
            except (OperationFailed, TransientError) as exc:  # this bucket's listing: the others go on
                spool.drop(f"copy:{state.bucket}")
                state.new_pass()
                state.listed, state.error = False, str(exc)
                state.recorded = recorded_totals(self.store, self.config.service, self.options.target, state.container)
                self.emit("bucket_failed", **{"pass": self.passes}, bucket=state.bucket, error=state.error)
        self.emit("planned", **{"pass": self.passes},
                  buckets=[{**state.progress(), "objects": state.objects, "bytes": state.bytes,
                            "unchanged": state.unchanged, "adopted": state.adopted, "refused": len(state.refused)}
                           for state in self.buckets],
                  **self._estimate_fields(self._estimate()))
        copied = self._guarded(lambda: self._copy(spool))
        for state in self.buckets:
            if state.complete:
                self._record_pass(state)
        self.emit("pass_done", **{"pass": self.passes}, copied=sum(state.pass_copied for state in self.buckets),
                  buckets=[{"bucket": state.bucket, "copied": state.pass_copied, "missing_objects": state.missing,
                            "missing_bytes": state.missing_bytes, "failed": len(state.failed),
                            "complete": state.complete} for state in self.buckets])
        return copied

    def _guarded(self, call: Callable[[], Any]) -> Any:
        """``call()``; a provider error is the source going away when the source no longer answers."""
        try:
            return call()
        except ProviderError as exc:
            why = self._source_unanswered()
            if why is not None:
                raise SourceGone(why or str(exc)) from exc
            raise

    def _source_unanswered(self) -> str | None:
        """Why the source does not answer now (one short request), or None when it does."""
        if not self.buckets:
            return None
        return self._source_storage().probe(self.buckets[0].bucket)

    def _source_storage(self) -> SourceStorage:
        if self._source is None:
            assert self.manifest is not None
            regions = {item.id: item.region for item in self.manifest.of_kind("bucket")}
            self._source = source_storage(self.config, regions, self.options.workers)
        return self._source

    def _list(self, state: BucketState, spool: Spool) -> None:
        """Diff the bucket's two listings and its records (``diff_pages``) into the spool. The last
        pass's counts stand until both listings are read: a source gone meanwhile leaves what that
        pass failed counted missing."""
        storage: StorageTarget = self.targets.storage
        local_disk = is_local_disk(self.targets.profile.storage)
        listed_at = now_iso()
        existed = storage.container_exists(state.bucket)
        if not existed:
            storage.ensure_container(state.bucket)
        # S3 lists in key order; another source's listing is sorted through the spool first.
        ordered = self.config.source.provider in KEY_ORDERED_SOURCES
        try:
            diff = self._diff(state, spool, existed, local_disk, sort_source=not ordered, sort_target=False)
        except OutOfOrder:
            # A listing out of key order after all: both read again, sorted through the spool.
            spool.drop(f"copy:{state.bucket}")
            diff = self._diff(state, spool, existed, local_disk, sort_source=True, sort_target=True)
        state.new_pass()
        state.listed, state.listed_at = True, listed_at
        state.objects, state.bytes = diff.objects, diff.bytes
        state.unchanged, state.adopted, state.refused = diff.unchanged, diff.adopted, diff.refused
        state.to_copy, state.to_copy_bytes = diff.to_copy, diff.to_copy_bytes

    def _diff(self, state: BucketState, spool: Spool, existed: bool, local_disk: bool, *, sort_source: bool,
              sort_target: bool) -> BucketDiff:
        storage: StorageTarget = self.targets.storage
        target_listing: Iterable[ObjectInfo] = storage.iter_objects(state.bucket) if existed else ()
        if sort_target:
            target_listing = spool.sorted_by_key(f"target:{state.bucket}", target_listing)
        source_listing: Iterable[ObjectInfo] = self._source_storage().iter_objects(state.bucket)
        if sort_source:
            source_listing = spool.sorted_by_key(f"source:{state.bucket}", source_listing)
        refuse = functools.partial(refusal, local_disk=local_disk, storage=storage, bucket=state.bucket)
        if local_disk:  # ``a`` beside ``a/b``: as ``replicate`` decides it, against one more listing of the disk
            scan = LocalCollisions(source_listing, storage.iter_objects(state.bucket) if existed else (), refuse,
                                   depth=sys.maxsize if sort_target else 4 * LISTING_PAGE)
            source_listing, refuse = scan.source(), scan.refuse
        try:
            diff = diff_into(
                source_listing, target_listing,
                self.store.iter_replica_objects(self.config.service, self.options.target, state.container),
                diff=BucketDiff(state.bucket, state.container), refuse=refuse,
                to_copy=lambda item: spool.add(f"copy:{state.bucket}", item),
                adopt=lambda copies: self.recorder.adopt(state.container, copies),
            )
        finally:
            for side in ("source", "target"):
                spool.drop(f"{side}:{state.bucket}")
        spool.flush()
        return diff

    def _copy(self, spool: Spool) -> int:
        """The spooled objects, bucket by bucket in order, newest first, until done or the deadline."""
        source, target = self._source_storage(), self.targets.storage

        def copier(bucket: str, item: ObjectInfo, cancel: threading.Event, read: Callable[[int], None]) -> CopyResult:
            return copy_object(source, target, bucket, item, cancel, read)

        assert self.manifest is not None
        regions = {item.id: item.region for item in self.manifest.of_kind("bucket")}

        def batches() -> Iterator[Batch]:
            for state in self.buckets:
                for objects in spool.newest_first(f"copy:{state.bucket}", BATCH):
                    yield Batch(state.bucket, tuple(objects), regions.get(state.bucket))

        by_name = {state.bucket: state for state in self.buckets}
        cancel = threading.Event()
        runner = self.runner_factory(copier, self.options.workers, lambda size: None)
        self.meter.start()
        copied = 0
        results = runner.run_batches(batches(), cancel)
        try:
            for result in results:
                if result is not None:
                    copied += self._account(by_name[result.bucket], result)
                if self._time_left() <= 0:
                    cancel.set()  # the copies in flight stop, storing nothing; the runner ends
                self._progress()
        finally:
            cancel.set()
            results.close()
            self.recorder.flush()
        self._progress(force=True)
        return copied

    def _account(self, state: BucketState, result: KeyResult) -> int:
        if result.stopped:
            state.stopped += 1
            state.stopped_bytes += result.size
        elif result.error is not None:
            state.failed[result.key] = result.error
            state.failed_bytes += result.size
        state.done += 1
        state.done_bytes += result.size
        copy = result.copy
        if copy is None:
            return 0
        self.recorder.add(state.container, copy)
        self.meter.add(1, result.size)
        state.copied += 1
        state.copied_bytes += result.size
        state.pass_copied += 1
        return 1

    def _record_pass(self, state: BucketState) -> None:
        """A bucket complete in this pass is a replication like ``replicate``'s: ``check`` measures the RPO from it."""
        self.store.save_replication(ReplicationRecord(
            id=new_id("evac"), service=self.config.service, target=self.options.target, bucket=state.bucket,
            container=state.container, listed_at=state.listed_at, finished_at=now_iso(), objects=state.objects,
            bytes=state.bytes, copied=state.pass_copied, copied_bytes=0, deleted=0, refused=len(state.refused),
        ))

    # -- the estimate ---------------------------------------------------------------------------

    def _estimate(self) -> Estimate:
        left = [(state.bucket, state.objects_left, state.bytes_left) for state in self.buckets]
        return estimate(left, self.meter.rate(), self.options.deadline)

    def _estimate_fields(self, guess: Estimate) -> dict[str, Any]:
        return {
            "rate_bytes_per_s": round(guess.rate.bytes_per_s) if guess.rate else None,
            "rate_objects_per_s": round(guess.rate.objects_per_s, 2) if guess.rate else None,
            "left_s": round(guess.left_s, 1) if guess.left_s is not None else None,
            "eta": _iso(guess.eta) if guess.eta else None,
            "margin_s": round(guess.margin_s, 1) if guess.margin_s is not None else None,
            "deadline": _iso(self.options.deadline),
            "short": [item.to_dict() for item in guess.shortfall],
        }

    def _progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        guess = self._estimate()
        fields = self._estimate_fields(guess)
        self.emit("progress", **{"pass": self.passes}, parts=[state.progress() for state in self.buckets], **fields)
        late = tuple(item.bucket for item in guess.shortfall)
        if late != self.late:
            self.late = late
            self.emit("late" if late else "on_time", **{"pass": self.passes}, **fields)

    # -- the end -------------------------------------------------------------------------------

    def _then(self) -> dict[str, Any]:
        """The playbook of ``then``, now that the deadline passed or the source is gone."""
        book = self.options.then
        assert book is not None
        self.emit("then_started", playbook=book.name, reason=self.stopped_by)
        engine = Engine(self.store, self.config, observer=self.observer)
        record = engine.start(book, target=self.options.target)
        document = Journal(self.store).document(record.id)
        outcome = {"playbook": book.name, "run": record.id, "status": record.status.value, "error": record.error}
        self.emit("then", **outcome)
        return {**outcome, "document": document}

    def _summary(self, started_at: str, then: dict[str, Any] | None) -> dict[str, Any]:
        failures = [f"{name}: {failure}" for name, part in self.parts.items() for failure in part.failures]
        failures += [f"bucket {state.bucket}: {state.error}" for state in self.buckets if state.error]
        missing = [{"bucket": state.bucket, "objects": state.missing, "bytes": state.missing_bytes}
                   for state in self.buckets if not state.complete]
        complete = not missing and not failures
        then_ok = then is None or then["status"] == "succeeded"
        return {
            "event": "summary", "at": now_iso(), "service": self.config.service, "target": self.options.target,
            "deadline": _iso(self.options.deadline), "started_at": started_at, "finished_at": now_iso(),
            "snapshot": {"id": self.snapshot.id if self.snapshot else None, "fresh": self.snapshot_fresh},
            "passes": self.passes, "stopped_by": self.stopped_by, "source_gone": self.source_gone,
            "complete": complete, "missing": missing,
            "copied": sum(state.copied for state in self.buckets),
            "copied_bytes": sum(state.copied_bytes for state in self.buckets),
            "buckets": [state.to_dict() for state in self.buckets],
            **{name: part.to_dict() for name, part in self.parts.items()}, "failures": failures,
            "then": {key: value for key, value in then.items() if key != "document"} if then else None,
            "ok": complete and then_ok,
        }

    # -- helpers -------------------------------------------------------------------------------

    def emit(self, name: str, **fields: Any) -> None:
        self.events.emit({"event": name, "at": now_iso(), **fields})

    def _time_left(self) -> float:
        return (self.options.deadline - datetime.now(UTC)).total_seconds()

    def _pause(self, seconds: float) -> None:
        self.emit("waiting", seconds=round(seconds, 1))
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:  # short sleeps: Ctrl-C is handled between them
            time.sleep(min(left, 0.5))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def evacuate(config: Config, options: EvacuateOptions, events: EvacuationEvents, *, store: StateStore,
             runner: RunnerFactory | None = None, observer: Observer | None = None) -> EvacuationResult:
    """One evacuation (see the module's docstring); raises where the command exits 2, 3, 4 or 130."""
    return Evacuation(config, options, store, events, runner=runner, observer=observer).run()

