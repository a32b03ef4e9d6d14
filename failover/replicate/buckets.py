"""Incremental copies of source buckets into target containers, and their records.

The one copy engine behind ``failover replicate`` and the ``sync-buckets`` action. For
each bucket a pass:

1. lists both sides once, at the same time, and reads the records of earlier copies from
   the state store; a pass with nothing to do then only records itself (step 5): no object
   is read or asked about;
2. copies each object that is new or changed (its size or ETag differ from the record of
   its last copy, or the target's copy is no longer the recorded one), in parallel,
   streamed from the source's response into the target's upload, stating the source's
   size and MD5 so that the target can take it in one request and check it;
3. verifies every copy: the bytes read against the source's size, and against its ETag
   when that is an MD5 (the target checks it as Content-MD5, or the upload hashes what it
   sends); what the target received against what was read; then, with one more listing,
   what the target stored (its MD5 where the target states one);
4. deletes what the source no longer has only when asked to, and never a mass deletion
   (the source lists nothing, or more than a tenth of the target would go) unless forced;
5. records every copy (per object) and the pass (per bucket): the pass's listing time is
   the replica's age on failover day, and what the RPO is measured from.

Keys that are not plain relative paths are refused, reported and never copied: HTTP
clients resolve ``.`` and ``..`` segments in URLs, and local disk joins keys as paths,
so such a key would be stored somewhere else than its name says. So are the keys the
target says it cannot hold (``StorageTarget.key_problem``: a control character, a name
it would store as another, a length it refuses; ``key_collisions``: ``a`` beside ``a/b``
on local disk): per object, counted, and the rest of the bucket is copied and recorded.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from failover.errors import FailoverError, Interrupted, OperationFailed
from failover.keytext import shown, shown_all
from failover.manifest import now_iso
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.retry import in_context, retry_requests
from failover.state import ReplicaObject, ReplicationRecord, StateStore, new_id

DEFAULT_WORKERS = 16
MASS_DELETION_SHARE = 0.10
RECORD_BATCH = 500  # copies recorded per state-store transaction
PROGRESS_INTERVAL_S = 0.2

T = TypeVar("T")
R = TypeVar("R")

# Journals a created resource: ``record(kind, id, **details)``, as ``ActionContext.record``.
Recorder = Callable[..., None]


@dataclass(frozen=True)
class CopyProgress:
    """Where one bucket's copy stands, sent to the progress callback as bytes flow."""

    bucket: str
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int
    bytes_per_s: float


@dataclass
class BucketResult:
    """What a pass did to one bucket. ``objects`` and ``bytes``: the source's current versions;
    ``skipped``: not copied because unchanged (or deleted on the source meanwhile)."""

    bucket: str
    container: str
    listed_at: str
    objects: int = 0
    bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # key -> why it was not copied
    created_container: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReplicationResult:
    """A whole pass; ``to_dict`` is the summary ``failover replicate --json`` prints."""

    id: str
    service: str
    target: str
    started_at: str
    finished_at: str
    duration_s: float
    buckets: list[BucketResult]

    def to_dict(self) -> dict[str, Any]:
        totals = {
            name: sum(getattr(bucket, name) for bucket in self.buckets)
            for name in ("objects", "bytes", "copied", "copied_bytes", "skipped", "deleted")
        }
        return {
            "id": self.id, "service": self.service, "target": self.target,
            "started_at": self.started_at, "finished_at": self.finished_at, "duration_s": round(self.duration_s, 3),
            **totals,
            "refused": sum(len(bucket.refused) for bucket in self.buckets),
            "bytes_per_s": round(totals["copied_bytes"] / self.duration_s) if self.duration_s > 0 else 0,
            "buckets": [bucket.to_dict() for bucket in self.buckets],
        }


def is_local_disk(storage_spec: Any) -> bool:
    """Whether a profile's storage is a directory on local disk (libcloud's ``local`` driver),
    where keys become paths."""
    return storage_spec.driver == "local"


# -- deciding what to copy -----------------------------------------------------------------

@dataclass
class BucketPlan:
    """What a pass will do to one bucket, decided from the two listings and the records."""

    copy: list[ObjectInfo] = field(default_factory=list)
    unchanged: int = 0
    adopt: list[ReplicaObject] = field(default_factory=list)  # unchanged copies nobody had recorded
    refused: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)


def plan_bucket(
    source: dict[str, ObjectInfo], target: dict[str, ObjectInfo], records: dict[str, ReplicaObject],
    *, local_disk: bool, delete: bool, storage: StorageTarget | None = None, bucket: str = "",
) -> BucketPlan:
    """``storage`` (the target, holding ``bucket``) says which keys it cannot hold."""
    plan = BucketPlan()
    refused = refusals(source, target, local_disk=local_disk, storage=storage, bucket=bucket)
    for key, item in source.items():
        why = refused.get(key)
        copy, record = target.get(key), records.get(key)
        if why is not None:
            plan.refused[key] = why
        elif record is not None and is_current(item, copy, record):
            plan.unchanged += 1
        elif (adopted := adoption(item, copy)) is not None:
            plan.unchanged += 1
            plan.adopt.append(adopted)
        else:
            plan.copy.append(item)
    if delete:
        plan.delete = sorted(key for key in target if key not in source)
    return plan


def refusal(key: str, *, local_disk: bool, storage: StorageTarget | None = None, bucket: str = "") -> str | None:
    """Why ``key`` cannot be stored under its own name on the target, or None."""
    segments = key.split("/")
    if not key:
        return "an empty key"
    if "\0" in key:
        return "a NUL character"
    if key.startswith("/"):
        return "an absolute path"
    if any(segment in (".", "..") for segment in segments):
        return "a '.' or '..' path segment"
    if local_disk and "" in segments:
        return "an empty path segment, which local disk cannot keep"
    return storage.key_problem(bucket, key) if storage is not None else None


def refusals(
    keys: Collection[str], stored: Collection[str], *, local_disk: bool, storage: StorageTarget | None = None,
    bucket: str = "",
) -> dict[str, str]:
    """Each of ``keys`` (a listing of the source) that cannot be stored under its own name, with
    why: by itself (:func:`refusal`), or beside another key of the listing or of ``stored``."""
    refused = {}
    for key in keys:
        why = refusal(key, local_disk=local_disk, storage=storage, bucket=bucket)
        if why is not None:
            refused[key] = why
    if storage is not None:
        held = [key for key in keys if key not in refused]
        refused.update(storage.key_collisions(bucket, held, list(stored)))
    return refused


def is_current(item: ObjectInfo, copy: ObjectInfo | None, record: ReplicaObject) -> bool:
    """Whether the target holds the recorded copy of the source object as it is now."""
    return record.source_etag == (item.hash or "") and record.size == item.size and is_recorded_copy(copy, record)


def is_recorded_copy(copy: ObjectInfo | None, record: ReplicaObject) -> bool:
    """Whether the target's object is still the copy the record describes: same size, and the
    same content MD5 where the target states one, else the same hash (ETag) as after the upload."""
    if copy is None or copy.size != record.size:
        return False
    if copy.md5 is not None:
        return copy.md5 == record.md5
    if copy.hash and record.target_hash:
        return copy.hash == record.target_hash
    return True


def adoption(item: ObjectInfo, copy: ObjectInfo | None) -> ReplicaObject | None:
    """A record for a copy already on the target (made before the records were, or by another
    tool): same size, and the target states the MD5 that the source's ETag is."""
    if copy is None or copy.size != item.size or item.md5 is None or copy.md5 != item.md5:
        return None
    return ReplicaObject(
        key=item.key, source_etag=item.hash or "", size=item.size, md5=item.md5, target_hash=copy.hash,
        copied_at=now_iso(),
    )


def check_deletions(bucket: str, container: str, deleting: int, source_objects: int, target_objects: int) -> None:
    """Refuse a mass deletion: the source listing nothing, or more than a tenth of the target going."""
    if not deleting:
        return
    if source_objects == 0:
        raise OperationFailed(
            f"refusing to delete all {deleting} objects of container {container}: bucket {bucket} lists no objects"
            " on the source (force to delete them anyway)"
        )
    if deleting > MASS_DELETION_SHARE * target_objects:
        raise OperationFailed(
            f"refusing to delete {deleting} of the {target_objects} objects of container {container}, more than"
            f" {MASS_DELETION_SHARE:.0%}, gone from bucket {bucket} on the source (force to delete them anyway)"
        )


# -- copying -----------------------------------------------------------------------------

class Replicator:
    """Copies source buckets into their target containers: one pass per ``replicate`` call,
    its worker threads shared by the pass's buckets."""

    def __init__(
        self,
        source: SourceStorage,
        target: StorageTarget,
        store: StateStore,
        *,
        service: str,
        target_name: str,
        workers: int = DEFAULT_WORKERS,
        local_disk: bool = False,
        progress: Callable[[CopyProgress], None] | None = None,
        record: Recorder | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.store = store
        self.service = service
        self.target_name = target_name
        self.workers = workers
        self.local_disk = local_disk
        self.progress = progress
        self.record = record
        self.cancel = cancel or threading.Event()

    def replicate(self, buckets: Iterable[str], *, delete: bool = False, force: bool = False) -> ReplicationResult:
        """Bring each bucket's container up to date. ``delete`` also removes what the source no
        longer has (refusing a mass deletion unless ``force``)."""
        replication_id = new_id("rep")
        started_at, started = now_iso(), time.monotonic()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="replicate") as pool:
            results = [self._bucket(pool, replication_id, bucket, delete, force) for bucket in buckets]
        return ReplicationResult(
            id=replication_id, service=self.service, target=self.target_name, started_at=started_at,
            finished_at=now_iso(), duration_s=time.monotonic() - started, buckets=results,
        )

    def _bucket(self, pool: ThreadPoolExecutor, replication_id: str, bucket: str, delete: bool, force: bool) -> BucketResult:
        container = self.target.container_name(bucket)
        result = BucketResult(bucket=bucket, container=container, listed_at=now_iso())
        # The two listings at once: each is mostly waiting for its provider's pages.
        listing = pool.submit(in_context(lambda: listed(self.source, bucket)))
        try:
            existed = self.target.container_exists(bucket)
            target = listed(self.target, bucket) if existed else {}
            records = self.store.replica_objects(self.service, self.target_name, container)
        finally:
            source = listing.result()  # the source's failure first: it says more than a target's
        plan = plan_bucket(source, target, records, local_disk=self.local_disk, delete=delete, storage=self.target,
                           bucket=bucket)
        result.objects, result.bytes = len(source), sum(item.size for item in source.values())
        result.refused, result.skipped = plan.refused, plan.unchanged
        copied: list[ReplicaObject] = []
        try:
            if delete and not force:
                check_deletions(bucket, container, len(plan.delete), len(source), len(target))
            if not existed:
                self._create_container(bucket, container)
                result.created_container = True
            self._remember(container, plan.adopt)
            self._copy(pool, bucket, container, plan.copy, journal_new=existed, existing=target.keys(), copied=copied)
            self._verify_stored(bucket, container, copied)
            deleted = self._delete(pool, bucket, container, plan.delete)
        except FailoverError as exc:
            # Not a pass (it is not recorded as one), but what it did is reported: counts, refusals.
            result.copied, result.copied_bytes = len(copied), sum(item.size for item in copied)
            exc.bucket_result = result  # type: ignore[attr-defined]
            raise

        result.copied, result.copied_bytes = len(copied), sum(item.size for item in copied)
        result.skipped = len(source) - len(plan.refused) - len(copied)
        result.deleted = deleted
        self.store.save_replication(self._record_of(replication_id, result))
        return result

    def _create_container(self, bucket: str, container: str) -> None:
        if self.record is not None:
            self.record("container", container, bucket=bucket)  # journaled first: a crash cannot leak it
        self.target.ensure_container(bucket)

    def _copy(
        self, pool: ThreadPoolExecutor, bucket: str, container: str, items: list[ObjectInfo], *,
        journal_new: bool, existing: Iterable[str], copied: list[ReplicaObject],
    ) -> None:
        """Copy ``items`` (each copy appended to ``copied`` as it is done, so a failure leaves
        what was done); when ``journal_new``, journal each object that was not on the target
        (an undo removes those, and only those, from a container that held a replica before)."""
        existing = set(existing)
        meter = _Meter(bucket, len(items), sum(item.size for item in items), self.progress)

        def copy(item: ObjectInfo) -> ReplicaObject | None:
            journal = journal_new and item.key not in existing
            # A transient failure mid-stream cannot resume the upload: copy the object again, afresh.
            return retry_requests(lambda: self._copy_one(bucket, container, item, meter, journal=journal))

        unrecorded: list[ReplicaObject] = []
        try:
            for done in _completed(pool, copy, items, window=2 * self.workers, cancel=self.cancel):
                if done is not None:
                    copied.append(done)
                    unrecorded.append(done)
                if len(unrecorded) >= RECORD_BATCH:
                    self._remember(container, unrecorded)
                    unrecorded = []
        finally:
            self._remember(container, unrecorded)  # what was copied before a failure need not be copied again

    def _copy_one(self, bucket: str, container: str, item: ObjectInfo, meter: _Meter, *, journal: bool) -> ReplicaObject | None:
        """Stream one object from the source into the target and verify it; None when it is gone from the source."""
        opened = self.source.open(bucket, item.key)
        if opened is None:
            return None
        if journal and self.record is not None:
            self.record("object", f"{container}/{item.key}", bucket=bucket, key=item.key)
        with opened:
            reading = _Reading(opened.chunks, meter, self.cancel)
            try:
                # The size and MD5 the source states let the target take the object in one
                # request streamed as it is read, its MD5 checked by the service.
                stored = self.target.upload_stream(
                    bucket, item.key, reading, content_type=opened.info.content_type, meta=opened.info.meta,
                    size=opened.info.size, md5=opened.info.md5,
                )
            except BaseException:
                meter.read(-reading.size)  # the bytes of an attempt that failed count again when retried
                raise
        verify_copy(bucket, container, opened.info, reading.size, stored)
        meter.object_done()
        return ReplicaObject(
            key=item.key, source_etag=opened.info.hash or "", size=reading.size, md5=stored.md5,
            target_hash=stored.hash, copied_at=now_iso(),
        )

    def _verify_stored(self, bucket: str, container: str, copied: list[ReplicaObject]) -> None:
        """One more listing of the target: every copy is stored as it was sent."""
        if not copied:
            return
        stored = listed(self.target, bucket)
        wrong = [item.key for item in copied if not is_recorded_copy(stored.get(item.key), item)]
        if wrong:
            raise OperationFailed(
                f"{len(wrong)} object(s) copied from bucket {bucket} are not stored in container {container}"
                f" as they were sent (size or MD5 differ): {quote_keys(wrong)}"
            )

    def _delete(self, pool: ThreadPoolExecutor, bucket: str, container: str, keys: list[str]) -> int:
        deleted = sum(pool.map(lambda key: self.target.delete_object(bucket, key), keys))
        self.store.forget_replica_objects(self.service, self.target_name, container, keys)
        return deleted

    def _remember(self, container: str, copies: list[ReplicaObject]) -> None:
        self.store.save_replica_objects(self.service, self.target_name, container, copies)

    def _record_of(self, replication_id: str, result: BucketResult) -> ReplicationRecord:
        return ReplicationRecord(
            id=replication_id, service=self.service, target=self.target_name, bucket=result.bucket,
            container=result.container, listed_at=result.listed_at, finished_at=now_iso(), objects=result.objects,
            bytes=result.bytes, copied=result.copied, copied_bytes=result.copied_bytes, deleted=result.deleted,
            refused=len(result.refused),
        )


def listed(storage: SourceStorage | StorageTarget, bucket: str) -> dict[str, ObjectInfo]:
    """Every object of ``bucket``, by key. A listing is read whole, so one that fails on a
    transient error (a kept-alive connection the server had just closed: Azurite closes
    them after 5 idle seconds, which a pass's copies easily last) is read again, whole."""
    return retry_requests(lambda: {item.key: item for item in storage.iter_objects(bucket)})


def verify_copy(bucket: str, container: str, source: ObjectInfo, size_read: int, received: ObjectInfo) -> None:
    """The bytes read are the source's: as many, and of its MD5 where its ETag is one; and the
    target received them all. ``received.md5`` is the MD5 of what the target was sent, which
    is what was read: the upload hashes the stream as it passes, or, where it stated the
    source's MD5 to the target, the target checked the bytes against it (and refused others)."""
    problems = []
    if size_read != source.size:
        problems.append(f"read {size_read} bytes where the source has {source.size}")
    if received.size != size_read:
        problems.append(f"the target received {received.size} of the {size_read} bytes read")
    if received.md5 is None:
        problems.append("the target did not report the MD5 of what it received")
    elif source.md5 is not None and received.md5 != source.md5:
        problems.append(f"the MD5 of the bytes read ({received.md5}) is not the source's ETag ({source.md5})")
    if problems:
        raise OperationFailed(f"copy of {shown(source.key)} from bucket {bucket} into container {container}: {'; '.join(problems)}")


class _Reading:
    """The source's chunks on their way to the target: counted and metered; stops as soon
    as the pass is cancelled."""

    def __init__(self, chunks: Iterable[bytes], meter: _Meter, cancel: threading.Event) -> None:
        self._chunks = chunks
        self._meter = meter
        self._cancel = cancel
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if self._cancel.is_set():
                raise Interrupted("replication interrupted")
            self.size += len(chunk)
            self._meter.read(len(chunk))
            yield chunk


class _Meter:
    """A bucket's copied bytes and objects, counted from the worker threads and reported at
    most every ``PROGRESS_INTERVAL_S`` (and whenever an object is done)."""

    def __init__(self, bucket: str, objects_total: int, bytes_total: int, callback: Callable[[CopyProgress], None] | None) -> None:
        self.bucket = bucket
        self.objects_total = objects_total
        self.bytes_total = bytes_total
        self.objects_done = 0
        self.bytes_done = 0
        self._callback = callback
        self._lock = threading.Lock()
        self._started = self._reported = time.monotonic()

    def read(self, size: int) -> None:
        with self._lock:
            self.bytes_done += size
            if time.monotonic() - self._reported >= PROGRESS_INTERVAL_S:
                self._report()

    def object_done(self) -> None:
        with self._lock:
            self.objects_done += 1
            self._report()

    def _report(self) -> None:
        if self._callback is None:
            return
        self._reported = time.monotonic()
        elapsed = self._reported - self._started
        self._callback(CopyProgress(
            bucket=self.bucket, objects_done=self.objects_done, objects_total=self.objects_total,
            bytes_done=self.bytes_done, bytes_total=self.bytes_total,
            bytes_per_s=self.bytes_done / elapsed if elapsed > 0 else 0.0,
        ))


def _completed(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *, window: int, cancel: threading.Event
) -> Iterator[R]:
    """``fn`` over ``items`` on ``pool``, at most ``window`` at a time, results as they come.
    The first error or a cancellation stops the submitting; what runs finishes before it is raised."""
    todo = iter(items)
    pending: set[Future[R]] = set()
    try:
        while True:
            if cancel.is_set():
                raise Interrupted("replication interrupted")
            pending.update(pool.submit(in_context(fn), item) for item in itertools.islice(todo, window - len(pending)))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            # Successes first: an error among them must not lose what was done alongside.
            for future in sorted(done, key=lambda future: future.exception() is not None):
                yield future.result()
    finally:
        for future in pending:
            future.cancel()
        wait(pending)


# -- the replica on failover day -------------------------------------------------------------

@dataclass(frozen=True)
class ReplicaStatus:
    """A bucket's replica on the target, checked against the records of the copies made into it.
    ``as_of``: when the source was listed for the last replication (else the newest object's time)."""

    bucket: str
    container: str
    exists: bool
    objects: int = 0
    bytes: int = 0
    missing: tuple[str, ...] = ()  # recorded copies not on the target
    differing: tuple[str, ...] = ()  # recorded copies changed on the target since
    as_of: str | None = None
    age_s: float | None = None
    refused: int = 0  # the source's objects the last replication refused (keys the target cannot hold)

    @property
    def intact(self) -> bool:
        return not self.missing and not self.differing


def replica_status(
    target: StorageTarget, store: StateStore, *, service: str, target_name: str, bucket: str
) -> ReplicaStatus:
    """Check the replica of ``bucket`` without the source: one listing of the target."""
    container = target.container_name(bucket)
    if not target.container_exists(bucket):
        return ReplicaStatus(bucket=bucket, container=container, exists=False)
    stored = listed(target, bucket)
    records = store.replica_objects(service, target_name, container)
    missing = tuple(sorted(key for key in records if key not in stored))
    differing = tuple(sorted(
        key for key, record in records.items()
        if key in stored and not is_recorded_copy(stored[key], record)
    ))
    last = store.last_replication(service, target_name, bucket)
    as_of = last.listed_at if last is not None else _newest_modified(stored.values())
    return ReplicaStatus(
        bucket=bucket, container=container, exists=True, objects=len(stored),
        bytes=sum(item.size for item in stored.values()), missing=missing, differing=differing,
        as_of=as_of, age_s=_age_s(as_of), refused=last.refused if last is not None else 0,
    )


def _newest_modified(objects: Iterable[ObjectInfo]) -> str | None:
    # ObjectInfo gains a ``modified`` time (an aware datetime) when the storage adapter
    # reports one; until then a replica without records has no known age.
    times = [when for item in objects if (when := getattr(item, "modified", None)) is not None]
    return max(times).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if times else None


def _age_s(as_of: str | None) -> float | None:
    if as_of is None:
        return None
    return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(as_of)).total_seconds())


def quote_keys(keys: Iterable[str], limit: int = 5) -> str:
    """A few of ``keys`` for a message: ``'a', 'b' and 3 more``, long keys cut, controls escaped."""
    return shown_all(keys, limit)
