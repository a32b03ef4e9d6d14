"""The seam between the evacuation and whatever copies objects: batches of keys in, one
result per key out, as they are done.

:class:`BatchRunner` is the whole interface; :class:`LocalThreads` runs batches on this
machine's threads (what ``failover replicate`` does too). A runner on a Dask distributed
cluster (``--scheduler``) implements the same protocol, its workers copying through the fan-out
(:func:`failover.fanout.copy_batch`) with their own source and target clients. Either way each
object goes through the one copy layer, :func:`failover.replicate.buckets.copy_object`, and
comes back as its :class:`~failover.replicate.buckets.CopyResult`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from failover.errors import Interrupted, ProviderError
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.replicate.buckets import CopyResult
from failover.replicate.buckets import copy_object as copy_layer
from failover.retry import in_context
from failover.state import ReplicaObject

WAKE_S = 0.5  # how often a runner waiting on copies lets its caller look at the clock


@dataclass(frozen=True)
class Batch:
    """Objects of one bucket to copy, in the order they should go."""

    bucket: str
    objects: tuple[ObjectInfo, ...]
    region: str | None = None  # the bucket's region at the source (a cluster's workers open their own clients)


@dataclass(frozen=True)
class KeyResult:
    """What became of one key, as a runner yields it: the copy layer's
    :class:`~failover.replicate.buckets.CopyResult` (``result``), with the key's bucket and its
    listed ``size`` (what a failed or stopped key leaves missing)."""

    bucket: str
    size: int
    result: CopyResult

    @property
    def key(self) -> str:
        return self.result.key

    @property
    def copy(self) -> ReplicaObject | None:
        """The record of the copy, when it was copied."""
        return self.result.record() if self.result.ok else None

    @property
    def gone(self) -> bool:
        return self.result.gone

    @property
    def stopped(self) -> bool:
        """Cut off by the deadline: not copied, nothing stored."""
        return isinstance(self.result.exception, Interrupted)

    @property
    def error(self) -> str | None:
        return None if self.stopped else self.result.error


class BatchRunner(Protocol):
    def run_batches(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[KeyResult | None]:
        """Copy every object of ``batches``; yield each key's result as it is done, and None
        at least every ``WAKE_S`` seconds while none is (the caller checks the deadline).
        Once ``cancel`` is set, no new copy starts and those running stop; a copy stopped
        half way stores nothing. Raises ProviderError when a side cannot be reached."""


Copier = Callable[[str, ObjectInfo, threading.Event, Callable[[int], None]], CopyResult]


def copy_object(
    source: SourceStorage, target: StorageTarget, bucket: str, item: ObjectInfo, cancel: threading.Event,
    read: Callable[[int], None],
) -> CopyResult:
    """One object through the copy layer (:func:`failover.replicate.buckets.copy_object`): streamed
    in one request stating its size and MD5 (the target refuses other bytes, and an upload cut off
    stores nothing), verified, retried afresh; ``read(n)`` counts bytes as they pass (negative
    when an attempt is abandoned)."""
    return copy_layer(source, target, bucket, item, cancel=cancel, read=read)


class LocalThreads:
    """Batches run on ``workers`` threads of this process, at most twice that many objects
    submitted ahead, so that the order of the batches (newest first, by priority) holds."""

    def __init__(self, copier: Copier, workers: int, read: Callable[[int], None]) -> None:
        self.copier = copier
        self.workers = workers
        self.read = read

    def run_batches(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[KeyResult | None]:
        todo = ((batch.bucket, item) for batch in batches for item in batch.objects)
        pending: dict[Future[CopyResult], tuple[str, ObjectInfo]] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="evacuate") as pool:
            try:
                while True:
                    while not cancel.is_set() and len(pending) < 2 * self.workers:
                        following = next(todo, None)
                        if following is None:
                            break
                        bucket, item = following
                        future = pool.submit(in_context(self.copier), bucket, item, cancel, self.read)
                        pending[future] = following
                    if not pending:
                        return
                    done, _ = wait(pending, timeout=WAKE_S, return_when=FIRST_COMPLETED)
                    if not done:
                        yield None
                    for future in done:
                        bucket, item = pending.pop(future)
                        yield self._result(future, bucket, item)
            finally:
                if pending:  # left early (an error, an interruption): what runs stops, storing nothing
                    cancel.set()
                    wait([future for future in pending if not future.cancel()])

    @staticmethod
    def _result(future: Future[CopyResult], bucket: str, item: ObjectInfo) -> KeyResult:
        result = future.result()
        if isinstance(result.exception, ProviderError):
            raise result.exception  # unreachable: the pass stops
        return KeyResult(bucket, item.size, result)
