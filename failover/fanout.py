"""The fan-out of object copies: batches of keys copied by local threads or by a Dask cluster.

The seam between deciding what to copy (here, on this machine) and copying it (anywhere):

- a :class:`CopyBatch` is a picklable, **secret-free** description of work: the source and
  target storage specs exactly as in the config (``${env:NAME}`` references unresolved), a
  bucket, its region and a batch of keys with the size and ETag the listing gave;
- :func:`copy_batch` runs wherever the batch lands (a thread here, a Dask worker elsewhere):
  it resolves secrets from *its own* environment at call time, opens the two adapters once
  per process (cached, connections reused), streams each object source -> target, verifies
  it, and returns one :class:`KeyResult` per key (never raising for one key's failure);
- an executor runs batches and yields their per-key results as they come:
  :class:`ThreadExecutor` (local threads, the default) or :class:`DaskExecutor`
  (``distributed.Client(address)``, ``pip install 'failover[distributed]'``).

A batch may run twice (a Dask worker lost mid-batch: the scheduler runs it again elsewhere;
an error: ``retries=``). That is safe because a copy is idempotent (the same key gets the
same bytes) and the coordinator, :func:`copy_buckets`, keeps exactly one result per key.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from failover.adapters import source_provider, source_storage, storage_target
from failover.config import Config, Source, StorageSpec
from failover.errors import InputError, Problem, ProviderUnreachable
from failover.keytext import shown
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.replicate.buckets import (
    PAGE,
    CopyResult,
    LocalCollisions,
    OutOfOrder,
    copy_object,
    diff_pages,
    in_key_order,
    is_local_disk,
    listed,
    listing,
    local_collisions,
    refusal,
    sorted_listing,
)

DEFAULT_BATCH_KEYS = 50
DEFAULT_THREADS = 16
DASK_RETRIES = 3  # re-runs of a batch whose task raised; a lost worker's batch is re-run by the scheduler anyway
WORKER_POOL = 16  # connections each worker process keeps to the source


# -- the task: what travels to a worker ------------------------------------------------------


@dataclass(frozen=True)
class StorageEnds:
    """Both ends of a copy as written in the config: secrets are ``${env:NAME}`` references,
    resolved by whoever opens the adapters, in its own environment."""

    source: dict[str, Any]  # the config's ``source`` section
    target: dict[str, Any]  # the target profile's ``storage`` section
    config_file: str = "failover.yaml"  # for messages only
    target_field: str = "storage"

    @classmethod
    def of(cls, config: Config, target_name: str) -> StorageEnds:
        profile = config.target(target_name)
        if profile.storage is None:
            raise InputError([config.problem(("targets", target_name, "storage"), "the profile has no storage")])
        return cls(
            source=config.source.model_dump(mode="json"), target=profile.storage.model_dump(mode="json"),
            config_file=str(config.path), target_field=f"targets.{target_name}.storage",
        )

    @property
    def key(self) -> tuple:
        """What identifies the adapters these ends open (for the per-process cache)."""
        return (repr(sorted(self.source.items())), repr(sorted(self.target.items())))


@dataclass(frozen=True)
class KeyToCopy:
    key: str
    size: int
    etag: str | None = None


@dataclass(frozen=True)
class CopyBatch:
    """A batch of keys of one bucket to copy from the source into the target."""

    ends: StorageEnds
    bucket: str
    region: str
    keys: tuple[KeyToCopy, ...]
    number: int = 0  # its place among the run's batches, for messages


@dataclass(frozen=True)
class KeyResult:
    """What became of one key, as it travels back from a worker (a plain, picklable dataclass):
    the copy layer's :class:`~failover.replicate.buckets.CopyResult` with its bucket
    (:meth:`of`, and back, :meth:`copy_result`). Copied and verified (``ok``), gone from the
    source meanwhile (``ok`` with ``gone``), or failed with ``error``. ``etag``: the source's,
    as copied; ``md5``: of the bytes the target received; ``target_hash``: the target's ETag."""

    bucket: str
    key: str
    ok: bool
    size: int = 0
    etag: str | None = None
    md5: str | None = None
    target_hash: str | None = None
    gone: bool = False
    error: str | None = None

    @classmethod
    def of(cls, bucket: str, result: CopyResult, listed_size: int = 0) -> KeyResult:
        """The wire form of ``result``; a key not copied keeps its ``listed_size``."""
        return cls(
            bucket=bucket, key=result.key, ok=result.error is None, size=result.size if result.ok else listed_size,
            etag=result.etag, md5=result.md5, target_hash=result.target_hash, gone=result.gone, error=result.error,
        )

    def copy_result(self) -> CopyResult:
        """The copy layer's result again (a failure's exception stays on the worker: its message is ``error``)."""
        if not self.ok:
            return CopyResult(key=self.key, etag=self.etag, error=self.error or "failed")
        return CopyResult(key=self.key, size=self.size, etag=self.etag or "", md5=self.md5,
                          target_hash=self.target_hash, gone=self.gone)


# -- the worker's side -------------------------------------------------------------------------

_opened: dict[tuple, tuple[SourceStorage, StorageTarget]] = {}
_opening = threading.Lock()


def _adapters(ends: StorageEnds, region: str, bucket: str) -> tuple[SourceStorage, StorageTarget]:
    """The source and target adapters of ``ends``, opened once per process (connections are
    reused by every batch this process runs); secrets are read from this process's environment."""
    with _opening:
        opened = _opened.get(ends.key)
        if opened is None:
            source = Source.model_validate(ends.source)
            shim = SimpleNamespace(source=source, path=Path(ends.config_file))
            reader = source_provider(source.provider, ends.config_file).storage(shim, {}, WORKER_POOL)
            spec = StorageSpec.model_validate(ends.target)
            writer = storage_target(spec, file=ends.config_file, field=ends.target_field)
            opened = _opened[ends.key] = (reader, writer)
    reader = opened[0]
    regions = getattr(reader, "bucket_regions", None)
    if isinstance(regions, dict):
        regions.setdefault(bucket, region)
    return opened


def copy_batch(batch: CopyBatch) -> list[KeyResult]:
    """Copy every key of ``batch`` through the copy layer
    (:func:`failover.replicate.buckets.copy_object`: streamed, verified, retried afresh); one
    result per key, in order. Runs on any worker that has failover installed; a failure of one
    key is its result, never the batch's."""
    source, target = _adapters(batch.ends, batch.region, batch.bucket)
    return [
        KeyResult.of(batch.bucket, copy_object(source, target, batch.bucket, ObjectInfo(item.key, item.size, item.etag)),
                     item.size)
        for item in batch.keys
    ]


# -- executors ---------------------------------------------------------------------------------


class BatchExecutor(Protocol):
    """Runs batches somewhere; yields every key's result as its batch finishes."""

    parallelism: int  # how many batches run at once (sizes the batches)

    def run_batches(self, batches: Iterable[CopyBatch]) -> Iterator[KeyResult]:
        """Every key's result of every batch, in the order the batches finish."""


class ThreadExecutor:
    """Batches on local threads, in this process (the default)."""

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.parallelism = max(1, threads)

    def run_batches(self, batches: Iterable[Any], fn: Callable[[Any], list[Any]] = copy_batch) -> Iterator[Any]:
        """``fn`` (``copy_batch``, or another module-level function of a batch) over ``batches``."""
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="fanout") as pool:
            for results in _windowed(pool.submit, fn, batches, 2 * self.parallelism):
                yield from results

    def close(self) -> None:
        return None


class DaskExecutor:
    """Batches as tasks on a Dask distributed cluster: ``DaskExecutor("tcp://host:8786")``, or an
    existing ``distributed.Client``. Workers need failover installed and the source's and
    target's secrets in their own environment; a task carries none."""

    def __init__(self, scheduler: Any, *, retries: int = DASK_RETRIES, connect_timeout: float = 10) -> None:
        try:
            import distributed
        except ImportError:
            raise InputError([Problem(file="--scheduler", message=(
                "Dask distributed is not installed: pip install 'failover[distributed]'"))]) from None
        self._distributed = distributed
        self.retries = retries
        if isinstance(scheduler, distributed.Client):
            self.client, self._own = scheduler, False
        else:
            try:
                self.client = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ProviderUnreachable(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
            self._own = True
            try:
                self.client.wait_for_workers(1, timeout=connect_timeout)
            except TimeoutError:
                self.client.close()
                raise ProviderUnreachable(f"the Dask scheduler {scheduler} has no worker") from None

    @property
    def parallelism(self) -> int:
        """The cluster's worker threads now (workers may come and go)."""
        return max(1, sum(self.client.nthreads().values()))

    def run_batches(self, batches: Iterable[Any], fn: Callable[[Any], list[Any]] = copy_batch) -> Iterator[Any]:
        """``fn`` over ``batches`` on the cluster; ``fn`` must be importable on the workers (a function
        of a module of failover, as ``copy_batch``), and a batch carries no secret."""
        completed = self._distributed.as_completed(loop=self.client.loop)
        submitted: dict[str, CopyBatch] = {}  # task key -> its batch, while it runs
        todo = iter(batches)
        window = 2 * self.parallelism  # asked of the scheduler once, not per batch

        def submit_more() -> None:
            for batch in todo:
                future = self.client.submit(fn, batch, retries=self.retries, pure=False)
                submitted[future.key] = batch
                completed.add(future)
                if len(submitted) >= window:
                    return

        submit_more()
        for future in completed:
            batch = submitted.pop(future.key)
            try:
                results = future.result()
            except Exception as exc:  # the batch raised on every attempt: its keys' results say so
                if not isinstance(batch, CopyBatch):
                    raise
                results = [KeyResult(bucket=batch.bucket, key=item.key, ok=False, error=f"{type(exc).__name__}: {exc}")
                           for item in batch.keys]
            future.release()
            yield from results
            submit_more()

    def close(self) -> None:
        if self._own:
            self.client.close()


def _windowed(submit: Any, fn: Any, batches: Iterable[Any], window: int) -> Iterator[list[Any]]:
    """``fn`` over ``batches``, at most ``window`` at once, results as they come."""
    todo = iter(batches)
    pending: set[Any] = set()
    try:
        while True:
            for batch in todo:
                pending.add(submit(fn, batch))
                if len(pending) >= window:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        for future in pending:
            future.cancel()


def executor_for(scheduler: str | None, *, threads: int = DEFAULT_THREADS) -> ThreadExecutor | DaskExecutor:
    """Local threads without ``scheduler``; else a Dask client of ``tcp://HOST:8786``."""
    return DaskExecutor(scheduler) if scheduler else ThreadExecutor(threads)


# -- the coordinator ---------------------------------------------------------------------------


@dataclass
class BucketCopy:
    """What :func:`copy_buckets` did to one bucket. ``skipped``: already on the target, same
    size and MD5; ``refused``: keys the target cannot hold (never sent); ``failed``: key -> why."""

    bucket: str
    container: str
    objects: int = 0
    bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    gone: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    results: dict[str, KeyResult] = field(default_factory=dict, repr=False)  # one per key copied

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class FanoutResult:
    executor: str
    batches: int
    buckets: list[BucketCopy]
    repeated_results: int = 0  # results of a key that already had one (a batch run twice): ignored

    @property
    def ok(self) -> bool:
        return all(bucket.ok for bucket in self.buckets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "executor": self.executor, "batches": self.batches,
            "repeated_results": self.repeated_results,
            "buckets": [
                {k: v for k, v in asdict(bucket).items() if k != "results"} for bucket in self.buckets
            ],
        }


def plan_batches(
    ends: StorageEnds, bucket: str, region: str, items: Sequence[ObjectInfo], size: int, start: int = 0
) -> list[CopyBatch]:
    """``items`` in batches of ``size`` keys."""
    return [
        CopyBatch(
            ends=ends, bucket=bucket, region=region, number=start + n,
            keys=tuple(KeyToCopy(key=item.key, size=item.size, etag=item.hash) for item in items[at:at + size]),
        )
        for n, at in enumerate(range(0, len(items), size))
    ]


def batch_size_for(count: int, parallelism: int, most: int = DEFAULT_BATCH_KEYS) -> int:
    """Keys per batch: at most ``most``, and small enough that every worker gets about two batches."""
    return max(1, min(most, math.ceil(count / (2 * parallelism)) if count else 1))


def copy_buckets(
    config: Config, target_name: str, buckets: dict[str, str] | Iterable[str], *,
    scheduler: str | None = None, executor: BatchExecutor | None = None,
    batch_keys: int = DEFAULT_BATCH_KEYS, threads: int = DEFAULT_THREADS,
) -> FanoutResult:
    """Copy ``buckets`` (names, or name -> region) from the source into the target profile's
    containers, through ``executor`` (else Dask at ``scheduler``, else local threads); then
    verify every copy from one more listing of the target. Objects already on the target with
    the same size and MD5 are skipped; keys the target cannot hold are refused, never sent."""
    regions = dict(buckets) if isinstance(buckets, dict) else dict.fromkeys(buckets, config.source.regions[0])
    ends = StorageEnds.of(config, target_name)
    profile = config.target(target_name)
    target = storage_target(profile.storage, file=str(config.path), field=f"targets.{target_name}.storage")
    source = source_storage(config, regions, threads)
    own = executor is None
    executor = executor or executor_for(scheduler, threads=threads)
    result = FanoutResult(executor=type(executor).__name__, batches=0, buckets=[])
    local_disk = is_local_disk(profile.storage)
    try:
        # Every bucket's batches in one stream: no bucket waits for the last batch of the one before.
        plans = [_plan_bucket(source, target, bucket, local_disk=local_disk) for bucket in regions]
        size = batch_size_for(sum(len(todo) for _, todo in plans), executor.parallelism, batch_keys)
        batches = []
        for (done, todo), region in zip(plans, regions.values(), strict=True):
            batches += plan_batches(ends, done.bucket, region, todo, size, start=len(batches))
        result.batches = len(batches)
        by_bucket = {done.bucket: done for done, _ in plans}
        for outcome in executor.run_batches(batches):
            done = by_bucket[outcome.bucket]
            if outcome.key in done.results:
                result.repeated_results += 1
                continue
            done.results[outcome.key] = outcome
        for done, todo in plans:
            _tally(done, todo, target)
            result.buckets.append(done)
    finally:
        if own:
            executor.close()
    return result


def _plan_bucket(
    source: SourceStorage, target: StorageTarget, bucket: str, *, local_disk: bool, page: int = PAGE,
) -> tuple[BucketCopy, list[ObjectInfo]]:
    """The bucket's container made ready, and what to copy into it: every object of the source
    listing that the target can hold and does not hold already (same size and MD5), decided a
    window at a time by :func:`~failover.replicate.buckets.diff_pages` (the fan-out keeps no
    records); a listing out of key order is read whole and sorted instead."""
    existed = target.container_exists(bucket)
    target.ensure_container(bucket)
    try:
        return _planned(source, target, bucket, existed, local_disk=local_disk, page=page, whole=False)
    except OutOfOrder:
        return _planned(source, target, bucket, existed, local_disk=local_disk, page=page, whole=True)


def _planned(
    source: SourceStorage, target: StorageTarget, bucket: str, existed: bool, *, local_disk: bool, page: int,
    whole: bool,
) -> tuple[BucketCopy, list[ObjectInfo]]:
    def listings() -> tuple[Iterable[ObjectInfo], Iterable[ObjectInfo]]:
        source_items: Iterable[ObjectInfo] = listing(source, bucket)
        target_items: Iterable[ObjectInfo] = listing(target, bucket) if existed else ()
        if whole:
            return sorted_listing(source_items), sorted_listing(target_items)
        return source_items, target_items

    refuse = functools.partial(refusal, local_disk=local_disk, storage=target, bucket=bucket)
    source_items, target_items = listings()
    if whole and local_disk:  # ``a`` beside ``a/b``: decided over the whole listings
        refuse = functools.partial(_refused, refuse, local_collisions(source_items, target_items, refuse))
    elif local_disk:  # decided as the source is read, against one more listing of the disk
        scan = LocalCollisions(source_items, listing(target, bucket) if existed else (), refuse, depth=4 * page)
        source_items, refuse = scan.source(), scan.refuse
    done = BucketCopy(bucket=bucket, container=target.container_name(bucket))
    todo: list[ObjectInfo] = []
    for batch in diff_pages(source_items, target_items, (), refuse=refuse, page=page):
        done.objects += batch.objects
        done.bytes += batch.bytes
        done.skipped += batch.unchanged  # already there: same size and MD5
        done.refused.update(batch.refused)
        todo += batch.copy
    return done, todo


def _refused(refuse: Callable[[str], str | None], collisions: dict[str, str], key: str) -> str | None:
    return refuse(key) or collisions.get(key)


def _tally(done: BucketCopy, todo: list[ObjectInfo], target: StorageTarget) -> None:
    """Count the results, each key once, and check every copy against one more listing of the
    target, merged with ``todo`` (in key order) a key at a time; a listing out of key order is
    read whole instead."""
    try:
        copies = in_key_order(listing(target, done.bucket), "the target's listing")
        copy = next(copies, None)
        verdicts = []
        for item in todo:
            while copy is not None and copy.key < item.key:
                copy = next(copies, None)
            verdicts.append((item, copy if copy is not None and copy.key == item.key else None))
        for _ in copies:
            pass  # read to its end: a listing out of key order would have made the merge wrong
    except OutOfOrder:
        held = listed(target, done.bucket)
        verdicts = [(item, held.get(item.key)) for item in todo]
    for item, copy in verdicts:
        outcome = done.results.get(item.key)
        if outcome is None:
            done.failed[item.key] = "no result came back for it"
        elif not outcome.ok:
            done.failed[item.key] = outcome.error or "failed"
        elif outcome.gone:
            done.gone += 1
        elif copy is None or copy.size != outcome.size or (copy.md5 is not None and copy.md5 != outcome.md5):
            done.failed[item.key] = f"{shown(item.key)} is not stored as it was sent (size or MD5 differ)"
        else:
            done.copied += 1
            done.copied_bytes += outcome.size
