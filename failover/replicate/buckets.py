"""Incremental copies of source buckets into target containers, and their records.

The one copy engine behind ``failover replicate`` and the ``sync-buckets`` action. For
each bucket a pass:

1. lists both sides once, page by page, and reads the records of earlier copies from the
   state store in the same key order; a pass with nothing to do then only records itself
   (step 5): no object is read or asked about;
2. copies each object that is new or changed (its size or ETag differ from the record of
   its last copy, or the target's copy is no longer the recorded one), in parallel,
   streamed from the source's response into the target's upload, stating the source's
   size and MD5 so that the target can take it in one request and check it;
3. verifies every copy: the bytes read against the source's size, and against its ETag
   when that is an MD5 (the target checks it as Content-MD5, or the upload hashes what it
   sends); what the target received against what was read; then, with one more listing
   merged with this pass's records page by page, what the target stored (its MD5 where the
   target states one);
4. deletes what the source no longer has only when asked to, and never a mass deletion
   (the source lists nothing, or more than a tenth of the target would go) unless forced;
5. records every copy (per object, a batch per transaction) and the pass (per bucket): the pass's listing time is
   the replica's age on failover day, and what the RPO is measured from.

The mechanism is two public layers, which ``replicate``, ``sync-buckets``, evacuation and
fan-out share (names stable): there is one copy mechanism. Evacuation diffs through
:func:`diff_pages` (spooling what to copy to read it back newest first); evacuation and the
fan-out copy each key through :func:`copy_object` (layer 2's :func:`_copy_one`, one
:class:`CopyResult`); the fan-out plans from :func:`diff_pages` windows, and
:func:`replica_status` merges the target's listing with the records page by page.

(1) :func:`diff_pages` merges the source's listing, the target's and the state store's copy
    records (``StateStore.iter_replica_objects``), all three in key order, into
    :class:`DiffBatch` es of about ``page`` keys: what to copy (``copy``; ``new``, those the
    target does not hold), records to adopt, unchanged and refused counts, keys to delete.
    It holds a page of each side (plus a page read ahead, which catches a listing out of key
    order: :class:`OutOfOrder`), never the bucket.
(2) :func:`copy_batch` (or :func:`submit_batch`, without waiting) copies one batch of listed
    objects between a ``SourceStorage`` and a ``StorageTarget``, streamed, retried and
    verified per object, on a thread pool or in the calling thread, and returns a
    :class:`CopyResult` per key (``key``, ``size``, ``etag``, ``md5``, ``target_hash``,
    ``ok``/``gone``/``error``); the caller records the ``ok`` ones in one transaction
    (``StateStore.save_replica_objects([result.record(at) ...])``). :func:`copy_object` copies
    one key the same way, for a caller that schedules its own keys (evacuation, the fan-out).

:class:`Replicator` runs a pass over them: it copies a batch while the next page is listed
and diffed, records each batch when it is done, counts deletions until the listings end
(the mass-deletion guard needs the totals), and verifies with one more listing of the
target merged page by page with this pass's records. Deletions are counted as the diff goes
(the mass-deletion guard needs the totals), then made a diff window at a time from the listings
read once more. Local disk lists in key order too (a folder at a time); where keys are paths,
``a`` beside ``a/b`` is decided as the source is read (:class:`LocalCollisions`, a bounded
read-ahead against one more listing of the disk). A provider that does not list in key order,
or a collision not decided within the read-ahead, is listed whole and sorted.

Keys that are not plain relative paths are refused, reported and never copied: HTTP
clients resolve ``.`` and ``..`` segments in URLs, and local disk joins keys as paths,
so such a key would be stored somewhere else than its name says. So are the keys the
target says it cannot hold (``StorageTarget.key_problem``: a control character, a name
it would store as another, a length it refuses; ``key_collisions``: ``a`` beside ``a/b``
on local disk): per object, counted, and the rest of the bucket is copied and recorded.
"""

from __future__ import annotations

import collections
import functools
import itertools
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from failover.errors import FailoverError, Interrupted, OperationFailed, ProviderError, TransientError
from failover.keytext import shown, shown_all
from failover.manifest import now_iso
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.retry import REQUEST_RETRIES, in_context, retry_requests
from failover.state import ReplicaObject, ReplicationRecord, StateStore, new_id

DEFAULT_WORKERS = 16
MASS_DELETION_SHARE = 0.10
PROGRESS_INTERVAL_S = 0.2

T = TypeVar("T")

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
    """The whole-bucket view of :func:`diff_pages`, for listings already held: ``storage`` (the
    target, holding ``bucket``) says which keys it cannot hold."""
    plan = BucketPlan()
    refused = refusals(source, target, local_disk=local_disk, storage=storage, bucket=bucket)
    for batch in diff_pages(
        (source[key] for key in sorted(source)), (target[key] for key in sorted(target)),
        (records[key] for key in sorted(records)), refuse=refused.get, delete=delete,
    ):
        plan.copy += batch.copy
        plan.unchanged += batch.unchanged
        plan.adopt += batch.adopt
        plan.refused.update(batch.refused)
        plan.delete += batch.delete
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


# -- layer 1: the diff of two listings and the records, page by page ------------------------

PAGE = 1000  # keys (of the source and the target) per diff batch


class OutOfOrder(Exception):
    """A listing that is not in key order: the page-by-page diff cannot use it (the pass then
    reads that bucket's listings whole and sorts them)."""


@dataclass
class DiffBatch:
    """What a window of keys (in key order) asks for: ``copy`` the source's objects that are new
    or changed, ``new`` the keys of those the target does not hold at all; ``adopt`` records
    for unchanged copies nobody had recorded; ``refused`` keys the target cannot hold, with why;
    ``delete`` the target's keys the source does not have (only when deletions were asked for).
    ``objects``/``bytes``: the source's objects in the window; ``target_objects``: the target's."""

    copy: list[ObjectInfo] = field(default_factory=list)
    new: set[str] = field(default_factory=set)
    adopt: list[ReplicaObject] = field(default_factory=list)
    unchanged: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    target_objects: int = 0

    def __len__(self) -> int:
        return self.objects + self.target_objects


def diff_pages(
    source: Iterable[ObjectInfo], target: Iterable[ObjectInfo], records: Iterable[ReplicaObject], *,
    refuse: Callable[[str], str | None] = lambda key: None, delete: bool = False, page: int = PAGE,
) -> Iterator[DiffBatch]:
    """Merge the source's listing, the target's and the records of earlier copies, all three in
    key order, into batches of about ``page`` keys: the window held is a page of each, never the
    bucket. ``refuse(key)`` says why a source key cannot be stored (None: it can). Raises
    OutOfOrder as soon as a listing goes backwards (nothing of that window was yielded)."""
    # A page read ahead of the merge: a listing that goes backwards is caught within a page,
    # before keys it has not reached yet are taken for absent.
    sources = _read_ahead(_ordered(source, "the source's listing"), page)
    targets = _read_ahead(_ordered(target, "the target's listing"), page)
    recorded = _ordered(records, "the copy records")
    item, copy, record = next(sources, None), next(targets, None), next(recorded, None)
    batch = DiffBatch()
    while item is not None or copy is not None:
        key = min(candidate.key for candidate in (item, copy) if candidate is not None)
        while record is not None and record.key < key:
            record = next(recorded, None)  # a copy whose object is gone from both listings
        on_source = item if item is not None and item.key == key else None
        on_target = copy if copy is not None and copy.key == key else None
        last = record if record is not None and record.key == key else None
        if on_source is not None:
            item = next(sources, None)
        if on_target is not None:
            copy = next(targets, None)
            batch.target_objects += 1
        if on_source is None:
            if delete:
                batch.delete.append(key)
        else:
            _decide(batch, on_source, on_target, last, refuse(key))
        if len(batch) >= page:
            yield batch
            batch = DiffBatch()
    if len(batch):
        yield batch


def _decide(batch: DiffBatch, item: ObjectInfo, copy: ObjectInfo | None, record: ReplicaObject | None,
            why: str | None) -> None:
    batch.objects += 1
    batch.bytes += item.size
    if why is not None:
        batch.refused[item.key] = why
    elif record is not None and is_current(item, copy, record):
        batch.unchanged += 1
    elif (adopted := adoption(item, copy)) is not None:
        batch.unchanged += 1
        batch.adopt.append(adopted)
    else:
        batch.copy.append(item)
        if copy is None:
            batch.new.add(item.key)


class _Keyed(Protocol):
    key: str


K = TypeVar("K", bound=_Keyed)


def _ordered(items: Iterable[K], what: str) -> Iterator[K]:
    """``items``, checked to come in strictly increasing key order."""
    previous: str | None = None
    for item in items:
        if previous is not None and item.key <= previous:
            raise OutOfOrder(f"{what} is not in key order: {shown(item.key)} after {shown(previous)}")
        previous = item.key
        yield item


def in_key_order(items: Iterable[K], what: str) -> Iterator[K]:
    """``items`` (a listing, or records), checked as they come to be in strictly increasing key
    order: OutOfOrder as soon as one goes backwards, for a caller merging it with another."""
    return _ordered(items, what)


def _read_ahead(items: Iterator[K], depth: int) -> Iterator[K]:
    """``items``, with up to ``depth`` of them read before they are handed on."""
    ahead: collections.deque[K] = collections.deque(itertools.islice(items, depth))
    for item in items:
        ahead.append(item)
        yield ahead.popleft()
    yield from ahead


def local_collisions(
    source: Iterable[ObjectInfo], target: Iterable[ObjectInfo], refuse: Callable[[str], str | None],
) -> dict[str, str]:
    """``StorageTarget.key_collisions`` of local disk over two listings in key order, streamed:
    the source's keys (those ``refuse`` lets through) that cannot be stored beside another
    key, with why. A key is a file and its folders are folders, so ``a`` and ``a/b`` cannot both
    be: a file the target stores keeps its place (the source's keys under it give way), else the
    file gives way to the folder. Raises OutOfOrder."""
    scan = LocalCollisions(source, target, refuse, depth=sys.maxsize)
    while scan._step():
        scan._ahead.clear()
    return {key: why for key, why in scan._refused.items() if refuse(key) is None}


class TooFarAhead(OutOfOrder):
    """Local disk's collisions could not be decided within the window (a key ``a`` followed by
    more than a window of keys ``a-...`` before ``a/``): the pass reads that bucket whole."""


class LocalCollisions:
    """:func:`local_collisions` decided while the source's listing is read once, for the diff:
    :meth:`source` hands the listing on as :func:`diff_pages` asks for it, each key only once it
    is decided (the first key at or past ``key + "/"`` has been read from either listing, or
    they ended), and :meth:`refuse` says why a key is refused (``refuse``'s reason, or the
    collision's). ``target`` is a listing of its own (local disk lists cheaply), only scanned.
    Holds the source's objects read ahead of the diff, at most ``depth``: beyond that,
    TooFarAhead (the caller then reads the bucket whole)."""

    def __init__(self, source: Iterable[ObjectInfo], target: Iterable[ObjectInfo],
                 refuse: Callable[[str], str | None], *, depth: int = 4 * PAGE) -> None:
        self._reading = {True: _ordered(source, "the source's listing"), False: _ordered(target, "the target's listing")}
        self._head: dict[bool, ObjectInfo | None] = {side: next(items, None) for side, items in self._reading.items()}
        self._ahead: collections.deque[ObjectInfo] = collections.deque()  # the source's, read and not handed on
        self._refuse, self._depth = refuse, depth
        self._refused: dict[str, str] = {}
        self._chain: list[_Link] = []  # the keys read that are prefixes of the last
        self._last: str | None = None  # the last key read, on either side

    def refuse(self, key: str) -> str | None:
        """Why the source's ``key`` (handed on by :meth:`source`) is refused, or None; asked once per key."""
        return self._refused.pop(key, None)

    def source(self) -> Iterator[ObjectInfo]:
        while True:
            while not self._ahead and self._step():
                pass
            if not self._ahead:
                return
            key = self._ahead[0].key
            while not (self._last is not None and self._last >= key + "/") and self._step():
                pass
            yield self._ahead.popleft()

    def _step(self) -> bool:
        """Read the next key (from either listing, or both when they share it); False at the end."""
        heads = [item for item in self._head.values() if item is not None]
        if not heads:
            return False
        if len(self._ahead) >= self._depth:
            raise TooFarAhead(f"local disk's folders could not be decided within {self._depth} objects")
        key = min(item.key for item in heads)
        sides = [side for side, item in self._head.items() if item is not None and item.key == key]
        for side in sides:
            if side:
                self._ahead.append(self._head[side])  # type: ignore[arg-type]
            self._head[side] = next(self._reading[side], None)
        why = self._refuse(key) if True in sides else None
        if why is not None:
            self._refused[key] = why
        self._scan(key, True in sides and why is None, False in sides)
        self._last = key
        return True

    def _scan(self, key: str, is_held: bool, is_stored: bool) -> None:
        chain, refused = self._chain, self._refused
        while chain and not key.startswith(chain[-1].key):
            chain.pop()
        mine = _Link(key, is_held, is_stored)
        for above in chain:
            if not key.startswith(above.key + "/"):
                continue  # a prefix (``a`` of ``a-c``), not a folder
            if is_held and above.stored and not mine.refused:
                mine.refused = True
                refused[key] = f"the target stores a file {shown(above.key)} where this key needs a folder"
            if above.held and not above.stored and not above.refused:
                above.refused = True
                refused[above.key] = f"local disk needs a folder of this name for {shown(key)}"
        chain.append(mine)


@dataclass
class _Link:
    """A key of :class:`LocalCollisions`' chain: held (a source key to copy), stored, refused."""

    key: str
    held: bool
    stored: bool
    refused: bool = False


def sorted_listing(items: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """A listing read whole and put in key order: for a provider found not to list in it (OutOfOrder)."""
    return sorted(items, key=lambda item: item.key)


# -- layer 2: copying one batch of keys ----------------------------------------------------------

@dataclass(frozen=True)
class CopyResult:
    """One key of a batch: copied and verified (``ok``: ``size`` bytes, the source's ``etag``,
    the ``md5`` of what the target stored and its ``target_hash``), gone from the source
    meanwhile (``gone``), or not copied (``error``, and the ``exception`` to raise)."""

    key: str
    size: int = 0
    etag: str | None = None
    md5: str | None = None
    target_hash: str | None = None
    copied_at: str | None = None
    gone: bool = False
    error: str | None = None
    exception: FailoverError | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.gone

    def record(self, copied_at: str | None = None) -> ReplicaObject:
        """The state store's record of this copy (``ok`` results only), copied at ``copied_at``
        (a batch's records share one time), else at ``self.copied_at``, else now."""
        return ReplicaObject(key=self.key, source_etag=self.etag or "", size=self.size, md5=self.md5 or "",
                             target_hash=self.target_hash, copied_at=copied_at or self.copied_at or now_iso())


def copy_batch(
    source: SourceStorage, target: StorageTarget, bucket: str, items: Sequence[ObjectInfo], *,
    pool: ThreadPoolExecutor | None = None, progress: _Meter | None = None, cancel: threading.Event | None = None,
    before_upload: Callable[[ObjectInfo], None] | None = None,
) -> list[CopyResult]:
    """Copy ``items`` (listed source objects) from ``source``'s ``bucket`` into its container on
    ``target``, each streamed, retried afresh on a transient failure and verified
    (:func:`verify_copy`); on ``pool``'s threads, else here. One result per item, in order; the
    caller records the ``ok`` ones (:meth:`CopyResult.record`) in batches. A copy that does not
    verify is that key's error; a provider that cannot be reached, a cancellation or a failure
    that outlived its retries stops the batch: the keys not started yet get that error too.
    ``before_upload(item)`` runs before an object's upload (a journal entry)."""
    return submit_batch(source, target, bucket, items, pool=pool, progress=progress, cancel=cancel,
                        before_upload=before_upload).results()


class BatchCopy:
    """A batch being copied (:func:`submit_batch`); ``results()`` waits for it."""

    def __init__(self, futures: list[Future[CopyResult]], stop: threading.Event) -> None:
        self._futures = futures
        self._stop = stop

    def results(self) -> list[CopyResult]:
        wait(self._futures)
        return [future.result() for future in self._futures]

    def finished(self) -> list[CopyResult]:
        """The results of the copies that ran (after :meth:`cancel`: not those it stopped before they started)."""
        wait(self._futures)
        return [future.result() for future in self._futures if not future.cancelled()]

    def cancel(self) -> None:
        """Start no more of its copies; those running finish."""
        self._stop.set()
        for future in self._futures:
            future.cancel()
        wait([future for future in self._futures if not future.cancelled()])


def submit_batch(
    source: SourceStorage, target: StorageTarget, bucket: str, items: Sequence[ObjectInfo], *,
    pool: ThreadPoolExecutor | None = None, progress: _Meter | None = None, cancel: threading.Event | None = None,
    before_upload: Callable[[ObjectInfo], None] | None = None,
) -> BatchCopy:
    """:func:`copy_batch` started on ``pool`` without waiting: the next batch can be diffed meanwhile."""
    stop, cancel = threading.Event(), cancel or threading.Event()
    stopped: list[FailoverError] = []  # what stopped the batch
    container = target.container_name(bucket)
    meter = progress or _Meter(bucket, len(items), sum(item.size for item in items), None)

    def copy(item: ObjectInfo) -> CopyResult:
        if cancel.is_set():
            return _failed(item, Interrupted("replication interrupted"))
        if stop.is_set():
            return _failed(item, stopped[0] if stopped else Interrupted("replication interrupted"))
        def attempt() -> CopyResult:
            return _copy_one(source, target, bucket, container, item, meter, cancel, before_upload)

        try:
            try:
                return attempt()  # most copies succeed at once: no retry machinery for them
            except TransientError:
                # A transient failure mid-stream cannot resume the upload: copy the object again, afresh.
                return retry_requests(attempt)
        except OperationFailed as exc:  # this object's copy: the others go on
            return _failed(item, exc)
        except FailoverError as exc:  # unreachable, refused, interrupted, or still failing after its retries
            stopped.append(exc)
            stop.set()
            return _failed(item, exc)

    if pool is None:
        futures = []
        for item in items:
            future: Future[CopyResult] = Future()
            future.set_result(copy(item))
            futures.append(future)
    else:
        futures = [pool.submit(in_context(copy), item) for item in items]
    return BatchCopy(futures, stop)


def _failed(item: ObjectInfo, exc: FailoverError) -> CopyResult:
    return CopyResult(key=item.key, etag=item.hash, error=str(exc), exception=exc)


def _copy_one(
    source: SourceStorage, target: StorageTarget, bucket: str, container: str, item: ObjectInfo, meter: _Meter,
    cancel: threading.Event, before_upload: Callable[[ObjectInfo], None] | None,
) -> CopyResult:
    """Stream one object from the source into the target and verify it."""
    opened = source.open(bucket, item.key)
    if opened is None:
        return CopyResult(key=item.key, etag=item.hash, gone=True)
    if before_upload is not None:
        before_upload(item)
    with opened:
        reading = _Reading(opened.chunks, meter, cancel)
        try:
            # The size and MD5 the source states let the target take the object in one
            # request streamed as it is read, its MD5 checked by the service.
            stored = target.upload_stream(
                bucket, item.key, reading, content_type=opened.info.content_type, meta=opened.info.meta,
                size=opened.info.size, md5=opened.info.md5,
            )
        except BaseException:
            meter.read(-reading.size)  # the bytes of an attempt that failed count again when retried
            raise
    verify_copy(bucket, container, opened.info, reading.size, stored)
    meter.object_done()
    return CopyResult(key=item.key, size=reading.size, etag=opened.info.hash or "", md5=stored.md5,
                      target_hash=stored.hash)


def copy_object(
    source: SourceStorage, target: StorageTarget, bucket: str, item: ObjectInfo, *,
    cancel: threading.Event | None = None, read: Callable[[int], None] | None = None,
    before_upload: Callable[[ObjectInfo], None] | None = None,
) -> CopyResult:
    """One listed object copied by the copy layer (:func:`_copy_one`: streamed, stating its size
    and MD5, verified), retried afresh on a transient failure; never raises a FailoverError: the
    result says ``ok``, ``gone`` or ``error`` (with the ``exception``: an :class:`Interrupted`
    when ``cancel`` was set mid-stream, which stores nothing). ``read(n)`` counts the bytes as
    they pass, negative for an attempt abandoned. For evacuation and the fan-out, one key at a time."""
    meter, stop, container = _Counter(read), cancel or threading.Event(), target.container_name(bucket)

    def attempt() -> CopyResult:
        return _copy_one(source, target, bucket, container, item, meter, stop, before_upload)  # type: ignore[arg-type]

    try:
        try:
            return attempt()
        except TransientError:
            # A transient failure mid-stream cannot resume the upload: copy the object again, afresh.
            return retry_requests(attempt)
    except FailoverError as exc:
        return _failed(item, exc)


class _Counter:
    """What :func:`_copy_one` needs of a meter, for one object: the bytes, handed to ``read``."""

    def __init__(self, read: Callable[[int], None] | None) -> None:
        self._read = read

    def read(self, size: int) -> None:
        if self._read is not None:
            self._read(size)

    def object_done(self) -> None:
        return None


# -- a pass ----------------------------------------------------------------------------------

class Replicator:
    """Copies source buckets into their target containers: one pass per ``replicate`` call,
    its worker threads shared by the pass's buckets. A bucket's pass diffs the listings page by
    page (:func:`diff_pages`) and copies each page's batch (:func:`submit_batch`) while the next
    page is listed and diffed; what a batch copied is recorded in one transaction."""

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
        page: int = PAGE,
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
        self.page = page

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
        state = _BucketPass(result)
        try:
            # The source's first page before the target is asked: its failure says more than a target's.
            source = _peeked(listing(self.source, bucket))
            existed = self.target.container_exists(bucket)
            whole = False
            try:
                self._diff_and_copy(pool, state, bucket, source, existed, delete, whole=False)
            except OutOfOrder:
                # A provider that does not list in key order: this bucket's listings read whole and sorted.
                # What was copied so far is recorded, so it is not copied again.
                state.restart()
                source, whole = listing(self.source, bucket), True
                self._diff_and_copy(pool, state, bucket, source, existed, delete, whole=True)
            if delete and not force:
                check_deletions(bucket, container, state.deleting, result.objects, state.target_objects)
            state.settle()
            if state.copied:
                self._verify_stored(bucket, container, since=result.listed_at)
            if state.deleting:
                result.deleted = self._delete_gone(pool, bucket, container, whole=whole)
        except FailoverError as exc:
            # Not a pass (it is not recorded as one), but what it did is reported: counts, refusals.
            exc.bucket_result = result  # type: ignore[attr-defined]
            raise
        self.store.save_replication(self._record_of(replication_id, result))
        return result

    def _diff_and_copy(
        self, pool: ThreadPoolExecutor, state: _BucketPass, bucket: str, source: Iterator[ObjectInfo], existed: bool,
        delete: bool, *, whole: bool,
    ) -> None:
        container, result = self.target.container_name(bucket), state.result
        # Listed when it existed, or was created by an attempt that went out of key order.
        listed_target = existed or result.created_container
        target: Iterable[ObjectInfo] = listing(self.target, bucket) if listed_target else ()
        refuse = functools.partial(refusal, local_disk=self.local_disk, storage=self.target, bucket=bucket)
        if whole:
            source_items, target = sorted_listing(source), sorted_listing(target)
            source = iter(source_items)
            if self.local_disk:  # keys are paths there: ``a`` beside ``a/b`` cannot both be stored
                refuse = _with_collisions(refuse, local_collisions(source_items, target, refuse))
        elif self.local_disk:  # ``a`` beside ``a/b``: decided as the source is read, against one more listing of the disk
            scan = LocalCollisions(source, listing(self.target, bucket) if listed_target else (), refuse,
                                   depth=4 * self.page)
            source, refuse = scan.source(), scan.refuse
        records = self.store.iter_replica_objects(self.service, self.target_name, container)
        if not existed and not result.created_container:
            self._create_container(bucket, container)
            result.created_container = True
        meter = _Meter(bucket, 0, 0, self.progress)
        pending: list[tuple[DiffBatch, BatchCopy]] = []  # the batch being copied while the next is diffed
        try:
            for batch in diff_pages(source, target, records, refuse=refuse, delete=delete, page=self.page):
                if self.cancel.is_set():
                    raise Interrupted("replication interrupted")
                state.add(batch)
                meter.expect(len(batch.copy), sum(item.size for item in batch.copy))
                journal = self._journal(bucket, container, batch.new) if existed else None
                pending.append((batch, submit_batch(self.source, self.target, bucket, batch.copy, pool=pool,
                                                    progress=meter, cancel=self.cancel, before_upload=journal)))
                if len(pending) > 1:
                    self._finish(state, *pending.pop(0))
            while pending:
                self._finish(state, *pending.pop(0))
        finally:
            for _, copying in pending:  # a failure: what runs finishes and is recorded, nothing more starts
                copying.cancel()
                self._remember(container, [copy.record() for copy in copying.finished() if copy.ok])
            if meter.objects_total:
                meter.report()

    def _finish(self, state: _BucketPass, batch: DiffBatch, copying: BatchCopy) -> None:
        """Record a batch's copies (and adoptions) in one transaction; then raise its first failure."""
        results = copying.results()
        copied_at = now_iso()  # when the batch's copies were all done
        self._remember(state.result.container, [*batch.adopt, *(copy.record(copied_at) for copy in results if copy.ok)])
        state.copied_now(results)
        failed = [copy for copy in results if copy.exception is not None]
        if failed:
            raise _most_telling([copy.exception for copy in failed if copy.exception is not None])

    def _journal(self, bucket: str, container: str, new: set[str]) -> Callable[[ObjectInfo], None] | None:
        """Journal each object that was not on the target before its upload: an undo removes those,
        and only those, from a container that held a replica before."""
        if self.record is None:
            return None
        record = self.record

        def journal(item: ObjectInfo) -> None:
            if item.key in new:
                record("object", f"{container}/{item.key}", bucket=bucket, key=item.key)

        return journal

    def _create_container(self, bucket: str, container: str) -> None:
        if self.record is not None:
            self.record("container", container, bucket=bucket)  # journaled first: a crash cannot leak it
        self.target.ensure_container(bucket)

    def _verify_stored(self, bucket: str, container: str, *, since: str) -> None:
        """One more listing of the target, merged page by page with the records of this pass's
        copies (recorded since ``since``): every copy is stored as it was sent."""
        wrong, stored = [], _ordered(listing(self.target, bucket), "the target's listing")
        try:
            copy = next(stored, None)
            for record in self.store.iter_replica_objects(self.service, self.target_name, container):
                if record.copied_at < since:
                    continue
                while copy is not None and copy.key < record.key:
                    copy = next(stored, None)
                if not is_recorded_copy(copy if copy is not None and copy.key == record.key else None, record):
                    wrong.append(record.key)
            for _ in stored:
                pass  # read to its end: a listing out of key order would have made the merge wrong
        except OutOfOrder:
            records = {record.key: record for record in self.store.iter_replica_objects(
                self.service, self.target_name, container) if record.copied_at >= since}
            held = listed(self.target, bucket)
            wrong = sorted(key for key, record in records.items() if not is_recorded_copy(held.get(key), record))
        if wrong:
            raise OperationFailed(
                f"{len(wrong)} object(s) copied from bucket {bucket} are not stored in container {container}"
                f" as they were sent (size or MD5 differ): {quote_keys(wrong)}"
            )

    def _delete_gone(self, pool: ThreadPoolExecutor, bucket: str, container: str, *, whole: bool) -> int:
        """Delete what the source no longer has, as the diff of the two listings (listed again once
        the mass-deletion guard has the totals) yields it: each window's keys deleted and forgotten
        together, never a list of the bucket."""
        def diffed(whole: bool) -> Iterator[DiffBatch]:
            source: Iterable[ObjectInfo] = listing(self.source, bucket)
            target: Iterable[ObjectInfo] = listing(self.target, bucket)
            if whole:
                source, target = sorted_listing(source), sorted_listing(target)
            return diff_pages(source, target, (), delete=True, page=self.page)

        deleted = 0
        try:
            for batch in diffed(whole):
                if batch.delete:
                    deleted += self._delete(pool, bucket, container, batch.delete)
        except OutOfOrder:
            for batch in diffed(True):
                if batch.delete:
                    deleted += self._delete(pool, bucket, container, batch.delete)
        return deleted

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


class _BucketPass:
    """A bucket pass's counts, kept on its BucketResult as the batches go."""

    def __init__(self, result: BucketResult) -> None:
        self.result = result
        self.deleting = 0  # the target's keys the source no longer has (deleted after the listings)
        self.target_objects = 0
        self.copied = 0

    def add(self, batch: DiffBatch) -> None:
        result = self.result
        result.objects += batch.objects
        result.bytes += batch.bytes
        result.refused.update(batch.refused)
        result.skipped += batch.unchanged
        self.deleting += len(batch.delete)
        self.target_objects += batch.target_objects

    def copied_now(self, results: list[CopyResult]) -> None:
        result = self.result
        copies = [copy for copy in results if copy.ok]
        self.copied += len(copies)
        result.copied += len(copies)
        result.copied_bytes += sum(copy.size for copy in copies)
        result.skipped += sum(1 for copy in results if copy.gone)

    def settle(self) -> None:
        """Every object the source listed that was neither refused nor copied was skipped."""
        self.result.skipped = self.result.objects - len(self.result.refused) - self.result.copied

    def restart(self) -> None:
        """The listings are read again from the start; what was copied stays counted."""
        result = self.result
        result.objects = result.bytes = result.skipped = 0
        result.refused = {}
        self.deleting, self.target_objects = 0, 0


def _with_collisions(refuse: Callable[[str], str | None], collisions: dict[str, str]) -> Callable[[str], str | None]:
    return lambda key: refuse(key) or collisions.get(key)


def _most_telling(errors: list[FailoverError]) -> FailoverError:
    """The failure to raise for a batch: an interruption, then an unreachable provider, then the first."""
    for kind in (Interrupted, ProviderError):
        found = next((error for error in errors if isinstance(error, kind)), None)
        if found is not None:
            return found
    return errors[0]


def _peeked(items: Iterable[T]) -> Iterator[T]:
    """``items`` with its first element read now (its first page asked for)."""
    iterator = iter(items)
    first = list(itertools.islice(iterator, 1))
    return itertools.chain(first, iterator)


def listing(storage: SourceStorage | StorageTarget, bucket: str) -> Iterator[ObjectInfo]:
    """Every object of ``bucket``, page by page, as the provider lists them. One that breaks off on
    a transient error (a kept-alive connection the server had just closed: Azurite closes them
    after 5 idle seconds, which a pass's copies easily last) is listed again from the start,
    skipping what was already yielded: the keys up to the last one, in a listing in key order,
    else as many objects as were yielded."""
    yielded, last, ordered = 0, None, True
    for restart in itertools.count(1):
        skip = yielded  # counted down where the listing is not in key order
        try:
            for item in storage.iter_objects(bucket):
                if last is not None and item.key <= last:
                    if ordered and restart > 1:
                        continue  # yielded before the listing broke off
                    ordered = False
                if not ordered and skip:
                    skip -= 1
                    continue
                yielded, last = yielded + 1, item.key
                yield item
            return
        except TransientError:
            if restart > REQUEST_RETRIES:
                raise
            time.sleep(min(0.2 * 2 ** restart, 5.0))


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
    most every ``PROGRESS_INTERVAL_S`` (and at the end, ``report``). The totals grow as the
    diff finds what to copy, page by page (``expect``)."""

    def __init__(self, bucket: str, objects_total: int, bytes_total: int, callback: Callable[[CopyProgress], None] | None) -> None:
        self.bucket = bucket
        self.objects_total = objects_total
        self.bytes_total = bytes_total
        self.objects_done = 0
        self.bytes_done = 0
        self._callback = callback
        self._lock = threading.Lock()
        self._started = self._reported = time.monotonic()

    def expect(self, objects: int, size: int) -> None:
        with self._lock:
            self.objects_total += objects
            self.bytes_total += size

    def read(self, size: int) -> None:
        with self._lock:
            self.bytes_done += size
            self._report_due()

    def object_done(self) -> None:
        with self._lock:
            self.objects_done += 1
            self._report_due()

    def report(self) -> None:
        with self._lock:
            self._report()

    def _report_due(self) -> None:
        if self._callback is not None and time.monotonic() - self._reported >= PROGRESS_INTERVAL_S:
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
    target: StorageTarget, store: StateStore, *, service: str, target_name: str, bucket: str, page: int = PAGE,
) -> ReplicaStatus:
    """Check the replica of ``bucket`` without the source: one listing of the target, merged page
    by page with the records of the copies (``page`` at a time), both in key order; a listing out
    of key order is read whole instead."""
    container = target.container_name(bucket)
    if not target.container_exists(bucket):
        return ReplicaStatus(bucket=bucket, container=container, exists=False)
    try:
        found = _merged_status(listing(target, bucket), store.iter_replica_objects(
            service, target_name, container, page=page))
    except OutOfOrder:
        found = _whole_status(listed(target, bucket), store.replica_objects(service, target_name, container))
    last = store.last_replication(service, target_name, bucket)
    as_of = last.listed_at if last is not None else found.newest
    return ReplicaStatus(
        bucket=bucket, container=container, exists=True, objects=found.objects, bytes=found.bytes,
        missing=tuple(found.missing), differing=tuple(found.differing), as_of=as_of, age_s=_age_s(as_of),
        refused=last.refused if last is not None else 0,
    )


@dataclass
class _Found:
    """A replica's listing checked against its records: what :class:`ReplicaStatus` says of it."""

    objects: int = 0
    bytes: int = 0
    newest: str | None = None
    missing: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)


def _merged_status(stored: Iterable[ObjectInfo], records: Iterable[ReplicaObject]) -> _Found:
    """The target's listing and the records, both in key order, merged a key at a time. Raises OutOfOrder."""
    found, latest = _Found(), None
    copies = _ordered(stored, "the target's listing")

    def counted(copy: ObjectInfo) -> ObjectInfo | None:
        nonlocal latest
        found.objects += 1
        found.bytes += copy.size
        when = getattr(copy, "modified", None)
        if when is not None and (latest is None or when > latest):
            latest = when
        return next(copies, None)

    copy = next(copies, None)
    for record in records:
        while copy is not None and copy.key < record.key:
            copy = counted(copy)
        if copy is not None and copy.key == record.key:
            if not is_recorded_copy(copy, record):
                found.differing.append(record.key)
            copy = counted(copy)
        else:
            found.missing.append(record.key)
    while copy is not None:
        copy = counted(copy)
    found.newest = _iso_time(latest) if latest is not None else None
    return found


def _whole_status(stored: dict[str, ObjectInfo], records: dict[str, ReplicaObject]) -> _Found:
    return _Found(
        objects=len(stored), bytes=sum(item.size for item in stored.values()),
        newest=_newest_modified(stored.values()),
        missing=sorted(key for key in records if key not in stored),
        differing=sorted(key for key, record in records.items()
                         if key in stored and not is_recorded_copy(stored[key], record)),
    )


def _newest_modified(objects: Iterable[ObjectInfo]) -> str | None:
    # ObjectInfo gains a ``modified`` time (an aware datetime) when the storage adapter
    # reports one; until then a replica without records has no known age.
    times = [when for item in objects if (when := getattr(item, "modified", None)) is not None]
    return _iso_time(max(times)) if times else None


def _iso_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age_s(as_of: str | None) -> float | None:
    if as_of is None:
        return None
    return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(as_of)).total_seconds())


def quote_keys(keys: Iterable[str], limit: int = 5) -> str:
    """A few of ``keys`` for a message: ``'a', 'b' and 3 more``, long keys cut, controls escaped."""
    return shown_all(keys, limit)
