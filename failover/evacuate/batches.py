"""The seam between the evacuation and whatever copies objects: batches of keys in, one
result per key out, as they are done.

:class:`BatchRunner` is the whole interface; :class:`LocalThreads` runs batches on this
machine's threads (what ``failover replicate`` does too). A runner on a Dask distributed
cluster (``--scheduler``) implements the same protocol, its workers calling
:func:`copy_object` with their own source and target clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from failover.errors import Interrupted, OperationFailed, TransientError
from failover.manifest import now_iso
from failover.ports import ObjectInfo, SourceStorage, StorageTarget
from failover.replicate.buckets import verify_copy
from failover.retry import in_context, retry_requests
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
    """What became of one key: ``copy`` (the record of the copy) when copied; ``gone`` when the
    source no longer has it; ``error`` when it could not be copied (the others go on)."""

    bucket: str
    key: str
    size: int
    copy: ReplicaObject | None = None
    gone: bool = False
    stopped: bool = False  # cut off by the deadline: not copied, nothing stored
    error: str | None = None


class BatchRunner(Protocol):
    def run_batches(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[KeyResult | None]:
        """Copy every object of ``batches``; yield each key's result as it is done, and None
        at least every ``WAKE_S`` seconds while none is (the caller checks the deadline).
        Once ``cancel`` is set, no new copy starts and those running stop; a copy stopped
        half way stores nothing. Raises ProviderError when a side cannot be reached."""


Copier = Callable[[str, ObjectInfo, threading.Event, Callable[[int], None]], ReplicaObject | None]


def copy_object(
    source: SourceStorage, target: StorageTarget, bucket: str, item: ObjectInfo, cancel: threading.Event,
    read: Callable[[int], None],
) -> ReplicaObject | None:
    """Stream one object from the source into the target in one request stating its size and MD5
    (the target refuses other bytes, and an upload cut off stores nothing), verify it, and return
    the record of the copy; None when the source no longer has it. ``read(n)`` counts bytes as
    they pass (negative when an attempt is abandoned)."""
    container = target.container_name(bucket)

    def attempt() -> ReplicaObject | None:
        opened = source.open(bucket, item.key)
        if opened is None:
            return None
        with opened:
            size = 0

            def chunks() -> Iterator[bytes]:
                nonlocal size
                for chunk in opened.chunks:
                    if cancel.is_set():
                        raise Interrupted("evacuation stopped")
                    size += len(chunk)
                    read(len(chunk))
                    yield chunk

            try:
                stored = target.upload_stream(
                    bucket, item.key, chunks(), content_type=opened.info.content_type, meta=opened.info.meta,
                    size=opened.info.size, md5=opened.info.md5,
                )
            except BaseException:
                read(-size)
                raise
        verify_copy(bucket, container, opened.info, size, stored)
        return ReplicaObject(key=item.key, source_etag=opened.info.hash or "", size=size, md5=stored.md5,
                             target_hash=stored.hash, copied_at=now_iso())

    return retry_requests(attempt)


class LocalThreads:
    """Batches run on ``workers`` threads of this process, at most twice that many objects
    submitted ahead, so that the order of the batches (newest first, by priority) holds."""

    def __init__(self, copier: Copier, workers: int, read: Callable[[int], None]) -> None:
        self.copier = copier
        self.workers = workers
        self.read = read

    def run_batches(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[KeyResult | None]:
        todo = ((batch.bucket, item) for batch in batches for item in batch.objects)
        pending: dict[Future[ReplicaObject | None], tuple[str, ObjectInfo]] = {}
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
    def _result(future: Future[ReplicaObject | None], bucket: str, item: ObjectInfo) -> KeyResult:
        try:
            copy = future.result()
        except Interrupted:
            return KeyResult(bucket, item.key, item.size, stopped=True)
        except (OperationFailed, TransientError) as exc:  # not ProviderError: unreachable stops the pass
            return KeyResult(bucket, item.key, item.size, error=str(exc))
        return KeyResult(bucket, item.key, item.size, copy=copy, gone=copy is None)
