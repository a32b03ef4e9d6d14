"""The bucket copy's two public layers (failover.replicate.buckets): ``diff_pages``, the
page-by-page diff of the source's listing, the target's and the copy records in key order,
and ``copy_batch``, which copies one batch and answers per key; and the pass built on them
holding a bounded window of the bucket, recording in batches, and falling back to whole
sorted listings for a provider that does not list in key order. The target is a second
moto_server through libcloud's S3 driver (module-scoped)."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.errors import Interrupted
from failover.ports import ObjectInfo, SourceObject
from failover.replicate.buckets import (
    CopyResult,
    OutOfOrder,
    Replicator,
    copy_batch,
    copy_object,
    diff_pages,
    replica_status,
)
from failover.state import ReplicaObject, StateStore
from failover.testing.servers import MotoServer


def info(key: str, body: bytes = b"x") -> ObjectInfo:
    md5 = hashlib.md5(body).hexdigest()
    return ObjectInfo(key, len(body), hash=md5, md5=md5)


def record(item: ObjectInfo) -> ReplicaObject:
    return ReplicaObject(item.key, item.hash or "", item.size, item.md5 or "", item.hash, "2026-01-01T00:00:00Z")


# -- layer 1: the diff -------------------------------------------------------------------------

def test_the_diff_decides_each_key_in_key_order_and_in_bounded_batches() -> None:
    source = [info(f"k{n:02}") for n in range(10)] + [info("new"), info("zz-changed", b"new bytes")]
    target = [info(f"k{n:02}") for n in range(10)] + [info("gone-from-source"), info("zz-changed", b"old")]
    records = [record(item) for item in target if item.key != "k05"] + [record(info("only-recorded"))]

    batches = list(diff_pages(iter(source), iter(sorted(target, key=lambda i: i.key)),
                              iter(sorted(records, key=lambda r: r.key)), delete=True, page=4,
                              refuse=lambda key: "bad" if key == "k07" else None))

    assert all(len(batch) <= 4 + 1 for batch in batches) and len(batches) >= 5  # a key counts once per side
    copied = [item.key for batch in batches for item in batch.copy]
    assert copied == ["new", "zz-changed"]  # sorted, as both listings come
    assert [key for batch in batches for key in batch.new] == ["new"]  # the one the target did not hold
    assert [item.key for batch in batches for item in batch.adopt] == ["k05"]  # unrecorded but the same MD5
    assert sum(batch.unchanged for batch in batches) == 9  # k00-k09 but the refused k07
    assert {key: why for batch in batches for key, why in batch.refused.items()} == {"k07": "bad"}
    assert [key for batch in batches for key in batch.delete] == ["gone-from-source"]
    assert sum(batch.objects for batch in batches) == 12 and sum(batch.target_objects for batch in batches) == 12


def test_a_listing_out_of_key_order_stops_the_diff() -> None:
    with pytest.raises(OutOfOrder, match="the target's listing is not in key order"):
        list(diff_pages(iter([info("a"), info("b")]), iter([info("b"), info("a")]), iter([])))


# -- a generated source ---------------------------------------------------------------------

class GeneratedSource:
    """``count`` objects made up as they are listed; counts what was listed when each object
    is opened (the pass's window), and answers ``gone`` keys with None and ``lying`` keys with
    bytes that are not their ETag's."""

    def __init__(self, count: int, *, gone: frozenset[str] = frozenset(), lying: frozenset[str] = frozenset()) -> None:
        self.count, self.gone, self.lying = count, gone, lying
        self.listed = self.opened = 0
        self.widest = 0  # the most objects listed but not opened yet, at any open

    def key(self, n: int) -> str:
        return f"objects/{n:05}"

    def body(self, key: str) -> bytes:
        return f"content of {key}".encode()

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        for n in range(self.count):
            self.listed += 1
            yield info(self.key(n), self.body(self.key(n)))

    def open(self, bucket: str, key: str) -> SourceObject | None:
        self.opened += 1
        self.widest = max(self.widest, self.listed - self.opened)
        if key in self.gone:
            return None
        stated = info(key, self.body(key))
        body = b"corrupted" if key in self.lying else self.body(key)
        return SourceObject(stated, iter([body]), lambda: None)


@pytest.fixture(scope="module")
def s3_target() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


_names = itertools.count(1)


@pytest.fixture
def target(s3_target: MotoServer, aws_env: None) -> Any:
    options = {"key": "testing", "secret": "testing", "secure": False, "host": "127.0.0.1", "port": s3_target.port,
               "region": "us-east-1"}
    return storage_target(StorageSpec(driver="s3", options=options, container_prefix=f"l{next(_names)}-{os.getpid()}-"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as state:
        yield state


# -- layer 2: one batch --------------------------------------------------------------------

def test_a_batch_is_copied_and_answered_per_key(target: Any) -> None:
    source = GeneratedSource(4, gone=frozenset({"objects/00001"}), lying=frozenset({"objects/00002"}))
    target.ensure_container("b")
    items = list(source.iter_objects("b"))

    results = copy_batch(source, target, "b", items)

    assert [result.key for result in results] == [item.key for item in items]
    ok, gone, lying, last = results
    assert ok.ok and last.ok and (ok.size, ok.md5) == (items[0].size, items[0].md5) and ok.etag == items[0].hash
    assert gone == CopyResult(key="objects/00001", etag=items[1].hash, gone=True) and not gone.ok
    assert not lying.ok and lying.error is not None and lying.exception is not None
    assert ok.record().key == "objects/00000" and ok.record().md5 == items[0].md5
    stored = {item.key: item.md5 for item in target.iter_objects("b")}
    assert stored == {"objects/00000": items[0].md5, "objects/00003": items[3].md5}  # nothing corrupted kept


# -- the pass ------------------------------------------------------------------------------

class CountingStore:
    """The state store, counting the transactions that record copies."""

    def __init__(self, inner: StateStore) -> None:
        self.inner, self.saves = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save_replica_objects(self, *args: Any) -> None:
        self.saves += 1
        self.inner.save_replica_objects(*args)


def test_a_pass_holds_a_window_of_pages_and_records_a_batch_per_transaction(target: Any, store: StateStore) -> None:
    source, counting = GeneratedSource(240), CountingStore(store)
    replicator = Replicator(source, target, counting, service="svc", target_name="t", workers=4, page=20)

    first = replicator.replicate(["b"]).buckets[0]

    assert (first.objects, first.copied, first.skipped) == (240, 240, 0)
    # One batch copying while the next is diffed, a page of each listing read ahead: never the bucket.
    assert source.widest <= 3 * 20
    assert counting.saves <= 240 // 20 + 1
    assert len(store.replica_objects("svc", "t", target.container_name("b"))) == 240
    again = Replicator(GeneratedSource(240), target, store, service="svc", target_name="t", page=20).replicate(["b"])
    assert (again.buckets[0].copied, again.buckets[0].skipped) == (0, 240)


class ReversedListing:
    """A target that lists its objects in reverse key order."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from reversed(list(self.inner.iter_objects(bucket, prefix)))


def test_a_target_that_does_not_list_in_key_order_is_read_whole_and_copied_right(
    target: Any, store: StateStore
) -> None:
    Replicator(GeneratedSource(30), target, store, service="svc", target_name="t", page=10).replicate(["b"])
    source = GeneratedSource(35)  # five more

    again = Replicator(source, ReversedListing(target), store, service="svc", target_name="t", page=10).replicate(["b"])

    # Until the listing goes backwards, keys it has not reached look absent: at most the first
    # window is copied again (the same bytes, verified); then both listings are read whole, sorted.
    assert again.buckets[0].objects == 35 and 5 <= again.buckets[0].copied <= 5 + 10 + 1
    assert again.buckets[0].skipped == 35 - again.buckets[0].copied
    third = Replicator(GeneratedSource(35), ReversedListing(target), store, service="svc", target_name="t",
                       page=10).replicate(["b"])
    assert {item.key for item in target.iter_objects("b")} == {f"objects/{n:05}" for n in range(35)}
    assert third.buckets[0].copied <= 10 + 1


def test_copy_records_are_read_in_key_order_page_by_page(store: StateStore) -> None:
    keys = ["b", "a/é", "a/z", "A", "a", "ü", "a b", "z" * 3]
    store.save_replica_objects("svc", "t", "c", [record(info(key)) for key in keys])
    store.save_replica_objects("svc", "t", "other", [record(info("zzz-elsewhere"))])

    assert [item.key for item in store.iter_replica_objects("svc", "t", "c", page=3)] == sorted(keys)


class ReversedSource(GeneratedSource):
    """A source that lists in reverse key order."""

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        yield from reversed(list(super().iter_objects(bucket)))


def test_a_source_out_of_key_order_into_a_new_container_is_copied_once_and_recorded(
    target: Any, store: StateStore
) -> None:
    first = Replicator(ReversedSource(25), target, store, service="svc", target_name="t", page=10).replicate(["b"])

    assert (first.buckets[0].objects, first.buckets[0].created_container) == (25, True)
    assert {item.key for item in target.iter_objects("b")} == {f"objects/{n:05}" for n in range(25)}
    again = Replicator(ReversedSource(25), target, store, service="svc", target_name="t", page=10).replicate(["b"])
    assert (again.buckets[0].copied, again.buckets[0].skipped) == (0, 25)


# -- one copy per key, for evacuation and the fan-out -----------------------------------------

class CancellingSource(GeneratedSource):
    """Each object in two chunks; ``cancel`` is set between them (the deadline, mid-stream)."""

    def __init__(self, count: int, cancel: threading.Event) -> None:
        super().__init__(count)
        self.cancel = cancel

    def open(self, bucket: str, key: str) -> SourceObject | None:
        body = self.body(key)

        def chunks() -> Iterator[bytes]:
            yield body[:4]
            self.cancel.set()
            yield body[4:]

        return SourceObject(info(key, body), chunks(), lambda: None)


def test_copy_object_answers_for_its_key_and_a_cancel_mid_stream_stores_nothing(target: Any) -> None:
    source = GeneratedSource(3, gone=frozenset({"objects/00001"}), lying=frozenset({"objects/00002"}))
    target.ensure_container("one")
    ok, gone, lying = (copy_object(source, target, "one", item) for item in source.iter_objects("one"))

    assert ok.ok and ok.record().md5 == info(ok.key, source.body(ok.key)).md5
    assert gone.gone and not gone.ok
    assert lying.error is not None and lying.exception is not None and not lying.ok

    cancel, counted = threading.Event(), []
    cancelling = CancellingSource(1, cancel)
    [item] = cancelling.iter_objects("one")
    stopped = copy_object(cancelling, target, "one", item, cancel=cancel, read=counted.append)

    assert isinstance(stopped.exception, Interrupted) and not stopped.ok
    assert counted == [4, -4]  # counted as they passed, taken back when the attempt was abandoned
    assert {stored.key for stored in target.iter_objects("one")} == {"objects/00000"}


# -- the replica on failover day, page by page -------------------------------------------------

def test_replica_status_merges_a_listing_of_many_pages_with_the_records(target: Any, store: StateStore) -> None:
    source = GeneratedSource(9)
    Replicator(source, target, store, service="svc", target_name="t", page=3).replicate(["st"])
    container = target.container_name("st")
    target.delete_object("st", "objects/00002")  # recorded, gone from the target
    body = b"changed on the target"
    target.upload_stream("st", "objects/00005", iter([body]))  # recorded, then overwritten
    target.upload_stream("st", "zz-unrecorded", iter([b"12345"]))
    store.save_replica_objects("svc", "t", container, [record(info("objects/00002b"))])  # recorded, never stored
    expected_bytes = sum(len(source.body(source.key(n))) for n in range(9) if n not in (2, 5)) + len(body) + 5

    for storage in (target, ReversedListing(target)):  # in key order, page by page; else read whole
        status = replica_status(storage, store, service="svc", target_name="t", bucket="st", page=2)

        assert (status.exists, status.objects, status.bytes) == (True, 9, expected_bytes)
        assert status.missing == ("objects/00002", "objects/00002b")
        assert status.differing == ("objects/00005",)
        assert status.as_of is not None and not status.intact


# -- local disk lists in key order -------------------------------------------------------------

DISK_KEYS = ["a-c", "a/b", "a b", "a0", "a/b-c/d", "a/b/c", "b", "é/x", "z.txt", "ab/c"]


def test_local_disk_lists_in_byte_order_a_folder_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "disk").mkdir()
    disk = storage_target(StorageSpec(driver="local", options={"key": str(tmp_path / "disk")}))
    disk.ensure_container("b")
    keys = [key for key in DISK_KEYS if key not in ("a/b",)]  # a/b is a folder here (a/b/c)
    for key in keys:
        disk.upload_stream("b", key, iter([key.encode()]))

    listed_keys = [item.key for item in disk.iter_objects("b")]

    # '-' (0x2D) and ' ' sort before '/' (0x2F): a-c before a/b-c/d; a/b-c/d before a/b/c; a0 after a/...
    assert listed_keys == sorted(keys, key=lambda key: key.encode()) == \
        ["a b", "a-c", "a/b-c/d", "a/b/c", "a0", "ab/c", "b", "z.txt", "é/x"]
    assert [item.key for item in disk.iter_objects("b", prefix="a/")] == ["a/b-c/d", "a/b/c"]
    import providers.libcloud.local_listing as local_listing

    read: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(local_listing.os, "scandir", lambda folder: read.append(folder) or scandir(folder))
    first = next(iter(disk.iter_objects("b")))
    assert first.key == "a b" and len(read) == 1  # the container's own folder only: not the bucket


class KeyedSource(GeneratedSource):
    """A source of the given keys, listed in key order."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(len(keys))
        self.keys = sorted(keys)

    def key(self, n: int) -> str:
        return self.keys[n]


@pytest.mark.parametrize("spread", [0, 30])
def test_a_pass_into_local_disk_refuses_a_file_where_a_folder_is_needed_page_by_page(
    tmp_path: Path, store: StateStore, spread: int
) -> None:
    # ``spread`` keys between ``d`` and ``d/x`` (``d-...``: '-' sorts before '/'): more than the
    # window decides, so that bucket is read whole; the answer is the same.
    keys = [*DISK_KEYS, "d", *(f"d-{n:03}" for n in range(spread)), "d/x"]
    (tmp_path / "disk").mkdir()
    disk = storage_target(StorageSpec(driver="local", options={"key": str(tmp_path / "disk")}))
    result = Replicator(KeyedSource(keys), disk, store, service="svc", target_name="t", page=3,
                        local_disk=True).replicate(["b"]).buckets[0]

    assert set(result.refused) == {"a/b", "d"}  # files where a/b/c and d/x need folders
    assert "needs a folder of this name for 'a/b-c/d'" in result.refused["a/b"] or "a/b/c" in result.refused["a/b"]
    # Read whole after a window: copies of the first attempt still running then are recorded, not counted.
    assert (result.objects, result.copied + result.skipped) == (len(keys), len(keys) - 2)
    assert [item.key for item in disk.iter_objects("b")] == sorted(set(keys) - {"a/b", "d"})
    counting = Counting(disk)
    again = Replicator(KeyedSource(keys), counting, store, service="svc", target_name="t", page=3,
                       local_disk=True).replicate(["b"]).buckets[0]
    assert (again.copied, set(again.refused), again.skipped) == (0, {"a/b", "d"}, len(keys) - 2)
    assert counting.listings == (2 if spread == 0 else 3)  # once more for its folders; once more read whole


class Counting:
    """An adapter whose ``iter_objects`` calls are counted."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.listings = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listings += 1
        return self.inner.iter_objects(bucket, prefix)


class ForgettingStore(CountingStore):
    """The state store, keeping the size of each deletion of records."""

    def __init__(self, inner: StateStore) -> None:
        super().__init__(inner)
        self.forgotten: list[int] = []

    def forget_replica_objects(self, service: str, target: str, container: str, keys: Any) -> None:
        keys = list(keys)
        self.forgotten.append(len(keys))
        self.inner.forget_replica_objects(service, target, container, keys)


def test_deletions_are_made_and_forgotten_a_window_at_a_time(target: Any, store: StateStore) -> None:
    Replicator(GeneratedSource(20), target, store, service="svc", target_name="t", page=4).replicate(["del"])
    forgetting = ForgettingStore(store)

    again = Replicator(GeneratedSource(8), target, forgetting, service="svc", target_name="t", page=4).replicate(
        ["del"], delete=True, force=True)

    assert again.buckets[0].deleted == 12
    assert sum(forgetting.forgotten) == 12 and len(forgetting.forgotten) >= 3 and max(forgetting.forgotten) <= 4 + 1
    assert [item.key for item in target.iter_objects("del")] == [f"objects/{n:05}" for n in range(8)]
    assert len(store.replica_objects("svc", "t", target.container_name("del"))) == 8
