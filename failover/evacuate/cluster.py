"""``evacuate --scheduler``: the evacuation's batches copied on a Dask distributed cluster.

:class:`ClusterRunner` is a :class:`~failover.evacuate.batches.BatchRunner` over
:class:`failover.fanout.DaskExecutor`: each evacuation batch (one bucket's keys, newest first)
becomes a secret-free :class:`failover.fanout.CopyBatch` (the config's storage specs with
``${env:NAME}`` unresolved; each worker reads its own environment), and each key's result
comes back as the copy layer's :class:`~failover.replicate.buckets.CopyResult` (through the
fan-out's wire form), recorded in the state by the coordinator, here, once per key.

Batches are handed to the cluster at most two per worker thread ahead, so the priority order
holds. When the deadline passes (``cancel``), no batch is handed out any more; batches already
on a worker run to their end there (each object goes up in one request stating its MD5: the
target stores it whole or not at all), and their copies, not recorded here, are adopted by the
next pass's listing (same size and MD5), never copied twice.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from failover.evacuate.batches import WAKE_S, Batch, KeyResult
from failover.fanout import CopyBatch, DaskExecutor, KeyToCopy, StorageEnds
from failover.fanout import KeyResult as WireResult

_DONE = object()


class ClusterRunner:
    def __init__(self, executor: DaskExecutor, ends: StorageEnds, default_region: str = "us-east-1") -> None:
        self.executor = executor
        self.ends = ends
        self.default_region = default_region

    def _tasks(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[CopyBatch]:
        for number, batch in enumerate(batches):
            if cancel.is_set():
                return
            yield CopyBatch(ends=self.ends, bucket=batch.bucket, region=batch.region or self.default_region,
                            keys=tuple(KeyToCopy(item.key, item.size, item.hash) for item in batch.objects),
                            number=number)

    def run_batches(self, batches: Iterable[Batch], cancel: threading.Event) -> Iterator[KeyResult | None]:
        results: queue.Queue[object] = queue.Queue()

        def pump() -> None:
            try:
                for result in self.executor.run_batches(self._tasks(batches, cancel)):
                    results.put(result)
                    if cancel.is_set():
                        break
            except BaseException as exc:  # handed to the caller's thread
                results.put(exc)
            finally:
                results.put(_DONE)

        thread = threading.Thread(target=pump, name="evacuate-cluster", daemon=True)
        thread.start()
        while True:
            try:
                item = results.get(timeout=WAKE_S)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield _converted(item)  # type: ignore[arg-type]


def _converted(result: WireResult) -> KeyResult:
    return KeyResult(result.bucket, result.size, result.copy_result())
