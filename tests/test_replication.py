"""The replication engine: S3 (a moto_server process) into Azurite, a second moto_server
(libcloud's MinIO driver) and local disk. Every copy verified by checksum, content types
and metadata kept, unchanged objects neither read nor sent again, deletions never
propagated in bulk, memory bounded whatever an object's size."""

from __future__ import annotations

import hashlib
import itertools
import os
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.errors import OperationFailed, TransientError
from failover.ports import ObjectInfo, SourceObject
from failover.replicate.buckets import CopyProgress, Replicator, check_deletions, plan_bucket, refusal, replica_status
from failover.state import ReplicaObject, StateStore
from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer
from providers.aws.objects import S3Objects
from providers.aws.session import AwsSession
from providers.libcloud import storage as libcloud_storage

MiB = 1024 * 1024
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
TARGETS = ["azure", "s3", "local"]

# key -> (content, content type, metadata). Metadata names are letters, digits and "_":
# Azure takes no other.
MEDIA: dict[str, tuple[bytes, str, dict[str, str]]] = {
    "index.html": (b"<h1>hello</h1>", "text/html", {"owner": "alice"}),
    "docs/annual report 2024.pdf": (b"%PDF-1.7 " * 300, "application/pdf", {"classification": "public"}),
    "photos/été/çà et là ✓.jpg": (os.urandom(70_000), "image/jpeg", {"camera": "x100", "shot_at": "2024-05-01"}),
    "empty.txt": (b"", "text/plain", {}),
}
MULTIPART_KEY = "backups/db.dump"  # uploaded in two parts: its ETag is not an MD5
EVIL_KEY = "../evil"
EVIL_BODY = b"should never leave the container"


# -- the clouds ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _aws_credentials(aws_env: None) -> None:
    """Fake credentials for every test (the source adapter reads the environment's)."""


@pytest.fixture(scope="module")
def source(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture(scope="module")
def s3(source: MotoServer) -> Any:
    return boto3.client("s3", endpoint_url=source.url, **CREDENTIALS)


@pytest.fixture(scope="module")
def s3_target() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


_names = itertools.count(1)


@pytest.fixture
def unique() -> str:
    """A fresh name for this test's buckets and container prefix."""
    return f"t{next(_names)}-{os.getpid()}"


@pytest.fixture(params=TARGETS)
def target_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def spec(target_kind: str, unique: str, tmp_path: Path, request: pytest.FixtureRequest) -> StorageSpec:
    prefix = f"{unique}-"
    if target_kind == "azure":
        options = request.getfixturevalue("azurite").driver_options
        return StorageSpec(driver="azure_blobs", options=options, container_prefix=prefix)
    if target_kind == "s3":
        port = request.getfixturevalue("s3_target").port
        options = {"key": "testing", "secret": "testing", "secure": False, "host": "127.0.0.1", "port": port}
        return StorageSpec(driver="minio", options=options, container_prefix=prefix)
    disk = tmp_path / "disk"
    disk.mkdir()
    return StorageSpec(driver="local", options={"key": str(disk)}, container_prefix=prefix)


@pytest.fixture
def target(spec: StorageSpec) -> Any:
    return storage_target(spec)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as state:
        yield state


def make_replicator(source_url: str, target: Any, store: StateStore, spec: StorageSpec, **options: Any) -> Replicator:
    session = AwsSession(endpoint_url=source_url, max_backoff=0.05, pool_size=8)
    return Replicator(
        S3Objects(session), target, store, service="svc", target_name="fallback", workers=8,
        local_disk=spec.driver == "local", **options,
    )


@pytest.fixture
def replicator(source: MotoServer, target: Any, store: StateStore, spec: StorageSpec) -> Replicator:
    return make_replicator(source.url, target, store, spec)


def fill_bucket(s3: Any, bucket: str, objects: dict[str, tuple[bytes, str, dict[str, str]]]) -> None:
    s3.create_bucket(Bucket=bucket)
    for key, (body, content_type, meta) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=meta)


def put_multipart(s3: Any, bucket: str, key: str, parts: list[bytes]) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/octet-stream")
    done = [
        {"PartNumber": number, "ETag": s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body)["ETag"]}
        for number, body in enumerate(parts, start=1)
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done})


@pytest.fixture
def media(s3: Any, unique: str) -> str:
    """A bucket of unicode and space keys, content types, metadata, a multipart object and a key escaping upwards."""
    bucket = f"{unique}-media"
    fill_bucket(s3, bucket, MEDIA)
    put_multipart(s3, bucket, MULTIPART_KEY, [b"a" * (5 * MiB), b"b" * 1024])
    s3.put_object(Bucket=bucket, Key=EVIL_KEY, Body=EVIL_BODY)
    return bucket


def source_object(s3: Any, bucket: str, key: str) -> tuple[str, str, dict[str, str]]:
    answer = s3.get_object(Bucket=bucket, Key=key)
    return hashlib.md5(answer["Body"].read()).hexdigest(), answer["ContentType"], answer["Metadata"]


def stored_md5(target: Any, bucket: str, key: str) -> str:
    digest = hashlib.md5()
    for chunk in target.download_stream(bucket, key):
        digest.update(chunk)
    return digest.hexdigest()


def source_keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for item in page.get("Contents", [])]


class Counting:
    """An adapter whose method calls are counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


# -- deciding what to copy (no clouds) ----------------------------------------------------

@pytest.mark.parametrize("key", ["../evil", "a/../../b", "/etc/passwd", "./x", "a/./b", "a/..", "nul\0byte"])
def test_keys_that_would_land_elsewhere_are_refused_everywhere(key: str) -> None:
    assert refusal(key, local_disk=False) is not None
    assert refusal(key, local_disk=True) is not None


@pytest.mark.parametrize("key", ["a//b", "folder/", "x//"])
def test_empty_segments_are_refused_on_local_disk_only(key: str) -> None:
    assert refusal(key, local_disk=False) is None
    assert "empty path segment" in refusal(key, local_disk=True)


@pytest.mark.parametrize("key", ["index.html", "dir with space/ünïcödé ✓.txt", "a..b/c.", ".hidden/x", "...", "日本/語"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert refusal(key, local_disk=True) is None


def record(key: str, etag: str, size: int, md5: str, target_hash: str | None = "th") -> ReplicaObject:
    return ReplicaObject(key=key, source_etag=etag, size=size, md5=md5, target_hash=target_hash, copied_at="2026-01-01T00:00:00Z")


def test_plan_copies_what_is_new_or_changed_and_skips_the_recorded_copies() -> None:
    source = {
        "same": ObjectInfo("same", 3, hash="e1"),
        "new": ObjectInfo("new", 3, hash="e2"),
        "edited": ObjectInfo("edited", 3, hash="e3-new"),
        "resized": ObjectInfo("resized", 4, hash="e4"),
        "gone-from-target": ObjectInfo("gone-from-target", 3, hash="e5"),
        "tampered": ObjectInfo("tampered", 3, hash="e6"),
    }
    target = {
        "same": ObjectInfo("same", 3, hash="th"),
        "edited": ObjectInfo("edited", 3, hash="th"),
        "resized": ObjectInfo("resized", 3, hash="th"),
        "tampered": ObjectInfo("tampered", 3, hash="other"),
        "extra": ObjectInfo("extra", 1, hash="th"),
    }
    records = {key: record(key, f"e{n}", 3, "m") for n, key in
               enumerate(["same", "x", "edited", "resized", "gone-from-target", "tampered"], start=1)}
    plan = plan_bucket(source, target, records, local_disk=False, delete=False)
    assert sorted(item.key for item in plan.copy) == ["edited", "gone-from-target", "new", "resized", "tampered"]
    assert plan.unchanged == 1 and plan.delete == [] and plan.adopt == []
    assert plan_bucket(source, target, records, local_disk=False, delete=True).delete == ["extra"]


def test_plan_adopts_an_unrecorded_copy_whose_md5_is_the_source_etag() -> None:
    md5 = hashlib.md5(b"abc").hexdigest()
    source = {"k": ObjectInfo("k", 3, hash=md5, md5=md5)}
    target = {"k": ObjectInfo("k", 3, hash="0x8D", md5=md5)}
    plan = plan_bucket(source, target, {}, local_disk=False, delete=False)
    assert plan.copy == [] and [adopted.key for adopted in plan.adopt] == ["k"]
    unstated = {"k": ObjectInfo("k", 3, hash=md5)}  # a hash that may not be the content's: not enough
    assert plan_bucket(source, unstated, {}, local_disk=False, delete=False).copy == [source["k"]]


def test_a_recorded_copy_is_compared_by_stated_md5_where_the_target_states_one() -> None:
    source = {"k": ObjectInfo("k", 3, hash="etag")}
    records = {"k": record("k", "etag", 3, "md5-sent")}
    same = {"k": ObjectInfo("k", 3, hash="changes-every-write", md5="md5-sent")}
    other = {"k": ObjectInfo("k", 3, hash="th", md5="md5-other")}
    assert plan_bucket(source, same, records, local_disk=False, delete=False).unchanged == 1
    assert plan_bucket(source, other, records, local_disk=False, delete=False).copy == [source["k"]]


def test_mass_deletions_are_refused() -> None:
    check_deletions("b", "c", deleting=0, source_objects=0, target_objects=0)
    check_deletions("b", "c", deleting=1, source_objects=9, target_objects=10)  # 10%: allowed
    with pytest.raises(OperationFailed, match="lists no objects"):
        check_deletions("b", "c", deleting=3, source_objects=0, target_objects=3)
    with pytest.raises(OperationFailed, match="2 of the 10 objects of container c, more than 10%"):
        check_deletions("b", "c", deleting=2, source_objects=8, target_objects=10)


class LyingSource:
    """A source whose stated ETag is not the MD5 of what it serves (a corrupted read)."""

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        yield ObjectInfo("k", 4, hash="0" * 32, md5="0" * 32)

    def open(self, bucket: str, key: str) -> SourceObject:
        return SourceObject(ObjectInfo("k", 4, hash="0" * 32, md5="0" * 32), iter([b"data"]), lambda: None)


def test_a_copy_whose_bytes_do_not_match_the_source_etag_fails(tmp_path: Path, store: StateStore) -> None:
    (tmp_path / "disk").mkdir()
    spec = StorageSpec(driver="local", options={"key": str(tmp_path / "disk")})
    replicator = Replicator(LyingSource(), storage_target(spec), store, service="svc", target_name="t", local_disk=True)
    with pytest.raises(OperationFailed, match=r"'k' from bucket b1 .* is not the source's ETag"):
        replicator.replicate(["b1"])
    assert store.replica_objects("svc", "t", "b1") == {}


@pytest.mark.parametrize("target_kind", ["azure", "s3"], indirect=True)
def test_bytes_that_are_not_the_source_etag_are_refused_by_the_target(
    target_kind: str, store: StateStore, target: Any, spec: StorageSpec
) -> None:
    replicator = Replicator(LyingSource(), target, store, service="svc", target_name="t", workers=2)
    with pytest.raises(OperationFailed, match=r"PUT answered 400|not the 0{32} the source states"):
        replicator.replicate(["b1"])
    assert store.replica_objects("svc", "t", target.container_name("b1")) == {}


class FlakyListing:
    """A target whose first listing breaks off after one object, as a reset connection does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.listings = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listings += 1
        for n, item in enumerate(self.inner.iter_objects(bucket, prefix)):
            if self.listings == 1 and n == 1:
                raise TransientError("list: temporary failure (connection reset)", where="storage target")
            yield item


@pytest.mark.parametrize("target_kind", ["local"], indirect=True)
def test_a_listing_broken_off_by_a_transient_failure_is_read_again(
    s3: Any, unique: str, source: MotoServer, target: Any, store: StateStore, spec: StorageSpec
) -> None:
    bucket = f"{unique}-flaky"
    fill_bucket(s3, bucket, {f"k{n}": (b"x", "text/plain", {}) for n in range(3)})
    make_replicator(source.url, target, store, spec).replicate([bucket])
    flaky = FlakyListing(target)

    rerun = make_replicator(source.url, flaky, store, spec).replicate([bucket]).to_dict()

    # Local disk is listed twice by a pass (for the folders its keys need, and for the diff), the
    # broken listing once more.
    assert (rerun["copied"], rerun["skipped"], flaky.listings) == (0, 3, 3)


class FlakyUpload:
    """A target whose first upload of each object fails after reading its bytes, as a
    connection reset mid-request does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failed: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload_stream(self, bucket: str, key: str, chunks: Any, *args: Any, **kwargs: Any) -> ObjectInfo:
        if key not in self.failed:
            self.failed.add(key)
            for _ in chunks:
                pass
            raise TransientError("upload: temporary failure (connection reset)", where="storage target")
        return self.inner.upload_stream(bucket, key, chunks, *args, **kwargs)


@pytest.mark.parametrize("target_kind", ["local"], indirect=True)
def test_progress_counts_an_object_copied_again_after_a_transient_failure_once(
    s3: Any, unique: str, source: MotoServer, target: Any, store: StateStore, spec: StorageSpec
) -> None:
    bucket = f"{unique}-retried"
    fill_bucket(s3, bucket, {f"k{n}": (b"x" * 1000, "text/plain", {}) for n in range(3)})
    flaky, progress = FlakyUpload(target), []

    result = make_replicator(source.url, flaky, store, spec, progress=progress.append).replicate([bucket]).to_dict()

    assert result["copied"] == 3 and flaky.failed == {"k0", "k1", "k2"}
    last = progress[-1]
    assert (last.objects_done, last.bytes_done, last.bytes_total) == (3, 3000, 3000)


# -- copying, against the emulated clouds --------------------------------------------------

def test_first_replication_copies_every_object_verified_with_its_type_and_metadata(
    media: str, s3: Any, replicator: Replicator, target: Any, store: StateStore
) -> None:
    result = replicator.replicate([media]).to_dict()

    [bucket] = result["buckets"]
    expected = [*MEDIA, MULTIPART_KEY]
    assert bucket["container"] == target.container_name(media)
    assert (bucket["objects"], bucket["copied"], bucket["skipped"]) == (len(expected) + 1, len(expected), 0)
    assert bucket["refused"] == {EVIL_KEY: "a '.' or '..' path segment"}
    assert bucket["created_container"] is True
    assert sorted(item.key for item in target.iter_objects(media)) == sorted(expected)
    for key in expected:
        md5, content_type, meta = source_object(s3, media, key)
        assert stored_md5(target, media, key) == md5, key
        if target.keeps_metadata:
            stored = target.get_object(media, key)
            assert (stored.content_type, stored.meta) == (content_type, meta), key
    assert set(store.replica_objects("svc", "fallback", bucket["container"])) == set(expected)


def test_an_unchanged_rerun_lists_each_side_once_and_sends_nothing(
    media: str, source: MotoServer, target: Any, store: StateStore, spec: StorageSpec
) -> None:
    make_replicator(source.url, target, store, spec).replicate([media])

    counting = Counting(target)
    with LatencyProxy(source.url, latency_s=0) as proxy:
        rerun = make_replicator(proxy.url, counting, store, spec).replicate([media]).to_dict()
        source_requests = proxy.stats().requests

    assert (rerun["copied"], rerun["copied_bytes"], rerun["skipped"]) == (0, 0, len(MEDIA) + 1)
    assert source_requests == 1  # one listing page; no object read
    # Local disk is listed once more, for the folders its keys need (``a`` beside ``a/b``).
    assert counting.calls["iter_objects"] == (2 if spec.driver == "local" else 1)
    assert counting.calls["upload_stream"] == counting.calls["get_object"] == counting.calls["download_stream"] == 0


def test_a_changed_object_is_copied_again(
    media: str, s3: Any, replicator: Replicator, target: Any
) -> None:
    replicator.replicate([media])
    s3.put_object(Bucket=media, Key="index.html", Body=b"<h1>changed</h1>", ContentType="text/html", Metadata={"owner": "bob"})

    result = replicator.replicate([media]).to_dict()

    assert (result["copied"], result["copied_bytes"]) == (1, len(b"<h1>changed</h1>"))
    assert stored_md5(target, media, "index.html") == hashlib.md5(b"<h1>changed</h1>").hexdigest()
    if target.keeps_metadata:
        assert target.get_object(media, "index.html").meta == {"owner": "bob"}


def test_a_copy_changed_on_the_target_is_repaired(media: str, replicator: Replicator, target: Any) -> None:
    replicator.replicate([media])
    target.upload_stream(media, "index.html", iter([b"vandalised"]), content_type="text/html")

    assert replicator.replicate([media]).to_dict()["copied"] == 1
    assert stored_md5(target, media, "index.html") == hashlib.md5(MEDIA["index.html"][0]).hexdigest()


def test_deletions_are_not_propagated_by_default(media: str, s3: Any, replicator: Replicator, target: Any) -> None:
    replicator.replicate([media])
    s3.delete_object(Bucket=media, Key="index.html")

    assert replicator.replicate([media]).to_dict()["deleted"] == 0
    assert target.get_object(media, "index.html") is not None


def test_mirroring_an_emptied_source_is_refused_and_the_target_keeps_every_object(
    media: str, s3: Any, replicator: Replicator, target: Any
) -> None:
    replicator.replicate([media])
    before = sorted(item.key for item in target.iter_objects(media))
    for key in source_keys(s3, media):
        s3.delete_object(Bucket=media, Key=key)

    with pytest.raises(OperationFailed, match=f"bucket {media} lists no objects on the source"):
        replicator.replicate([media], delete=True)
    assert sorted(item.key for item in target.iter_objects(media)) == before


@pytest.mark.parametrize("target_kind", ["local"], indirect=True)
def test_mirroring_deletes_a_few_and_more_only_when_forced(
    s3: Any, unique: str, replicator: Replicator, target: Any, store: StateStore
) -> None:
    bucket = f"{unique}-many"
    fill_bucket(s3, bucket, {f"k{n:02d}": (b"x", "text/plain", {}) for n in range(20)})
    replicator.replicate([bucket])

    s3.delete_object(Bucket=bucket, Key="k00")
    s3.delete_object(Bucket=bucket, Key="k01")  # 2 of 20: 10%, allowed
    assert replicator.replicate([bucket], delete=True).to_dict()["deleted"] == 2
    for n in range(2, 8):  # 6 of 18: a third
        s3.delete_object(Bucket=bucket, Key=f"k{n:02d}")
    with pytest.raises(OperationFailed, match="refusing to delete 6 of the 18 objects"):
        replicator.replicate([bucket], delete=True)
    assert len(list(target.iter_objects(bucket))) == 18

    assert replicator.replicate([bucket], delete=True, force=True).to_dict()["deleted"] == 6
    assert sorted(item.key for item in target.iter_objects(bucket)) == [f"k{n:02d}" for n in range(8, 20)]
    assert set(store.replica_objects("svc", "fallback", target.container_name(bucket))) == {f"k{n:02d}" for n in range(8, 20)}


@pytest.mark.parametrize("target_kind", ["local"], indirect=True)
def test_a_key_escaping_local_disk_is_written_nowhere(media: str, replicator: Replicator, spec: StorageSpec) -> None:
    replicator.replicate([media])
    disk = Path(spec.options["key"])
    written = [path for path in disk.parent.rglob("*") if path.is_file()]
    assert written and not [path for path in written if "evil" in path.name]


def _peak_bytes(run: Any) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_object_is_streamed_in_bounded_memory(
    s3: Any, unique: str, replicator: Replicator, target: Any, target_kind: str
) -> None:
    small, large = f"{unique}-small", f"{unique}-large"
    fill_bucket(s3, small, {"warm-up": (b"w", "text/plain", {})})
    fill_bucket(s3, large, {"big.bin": (os.urandom(20 * MiB), "application/octet-stream", {"kind": "blob"})})
    replicator.replicate([small])  # clients, drivers and catalogues loaded outside the measure

    peak = _peak_bytes(lambda: replicator.replicate([large]))

    assert stored_md5(target, large, "big.bin") == source_object(s3, large, "big.bin")[0]
    # Each 1 MiB chunk read from the source is written (local disk) or sent (Azure, S3: one
    # request streamed as it is read) as it comes, never the object, nor a block or part of it.
    assert peak < 5 * MiB


def test_each_pass_is_recorded_per_bucket_and_progress_reports_bytes_per_second(
    media: str, s3: Any, unique: str, source: MotoServer, target: Any, store: StateStore, spec: StorageSpec
) -> None:
    other = f"{unique}-other"
    fill_bucket(s3, other, {"a.txt": (b"a" * 1000, "text/plain", {})})
    progress: list[CopyProgress] = []
    replicator = make_replicator(source.url, target, store, spec, progress=progress.append)

    first = replicator.replicate([media, other])
    second = replicator.replicate([media, other])

    records = store.replications("svc", "fallback")
    assert [(r.id, r.bucket) for r in records] == [
        (first.id, media), (first.id, other), (second.id, media), (second.id, other)
    ]
    media_first = records[0]
    assert media_first.objects == len(MEDIA) + 2 and media_first.copied == len(MEDIA) + 1 and media_first.refused == 1
    assert media_first.bytes == sum(len(body) for body, _, _ in MEDIA.values()) + 5 * MiB + 1024 + len(EVIL_BODY)
    assert (records[3].copied, records[3].copied_bytes) == (0, 0)
    assert store.last_replication("svc", "fallback", other) == records[3]

    last = [p for p in progress if p.bucket == media][-1]
    assert (last.objects_done, last.bytes_done) == (last.objects_total, last.bytes_total) == (len(MEDIA) + 1, last.bytes_total)
    assert last.bytes_per_s > 0


def test_the_replica_is_checked_without_the_source(
    media: str, replicator: Replicator, target: Any, store: StateStore, spec: StorageSpec
) -> None:
    replicator.replicate([media])

    intact = replica_status(target, store, service="svc", target_name="fallback", bucket=media)
    assert intact.exists and intact.intact and intact.objects == len(MEDIA) + 1
    assert intact.as_of == store.last_replication("svc", "fallback", media).listed_at
    assert 0 <= intact.age_s < 600

    target.delete_object(media, "index.html")
    damaged = replica_status(target, store, service="svc", target_name="fallback", bucket=media)
    assert damaged.missing == ("index.html",) and not damaged.intact

    absent = replica_status(target, store, service="svc", target_name="fallback", bucket="never-copied")
    assert not absent.exists and absent.container == target.container_name("never-copied")


def test_the_source_probe_says_why_when_the_source_is_gone(s3: Any) -> None:
    with MotoServer() as doomed:
        objects = S3Objects(AwsSession(endpoint_url=doomed.url))
        boto3.client("s3", endpoint_url=doomed.url, **CREDENTIALS).create_bucket(Bucket="data")
        assert objects.probe("data") is None
        assert objects.probe("no-such-bucket") == "S3 answered 404 for bucket no-such-bucket: Not Found"
    assert objects.probe("data").startswith("cannot reach S3 for bucket data: Could not connect")


def test_the_source_probe_asks_once_and_never_retries(source: MotoServer) -> None:
    with LatencyProxy(source.url, latency_s=0, fail_ratio=1.0) as throttled:
        why = S3Objects(AwsSession(endpoint_url=throttled.url)).probe("data")
        assert throttled.stats().requests == 1
    assert why == "S3 answered 503 for bucket data: Service Unavailable"


@pytest.mark.parametrize("driver", ["s3", "azure_blobs"])
def test_large_objects_go_up_in_one_request_each_with_their_bytes_intact(
    driver: str, s3: Any, unique: str, source: MotoServer, store: StateStore, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 MB objects through libcloud's S3 driver (not MinIO's) and Azure's: one PUT each,
    streamed from the source, where libcloud would send 4 requests (S3 multipart) or 4
    (Azure blocks and block list)."""
    if driver == "s3":
        options = {"key": "testing", "secret": "testing", "secure": False, "host": "127.0.0.1",
                   "port": request.getfixturevalue("s3_target").port, "region": "us-east-1"}
    else:
        options = request.getfixturevalue("azurite").driver_options
    spec = StorageSpec(driver=driver, options=options, container_prefix=f"{unique}-")
    target = storage_target(spec)
    bucket = f"{unique}-large"
    bodies = {f"part {n}.bin": os.urandom(10_000_000 + n) for n in range(3)}
    fill_bucket(s3, bucket, {key: (body, "application/x-blob", {"n": key[5]}) for key, body in bodies.items()})
    puts = Counter()
    original = target.driver.connection.request.__func__

    def counting(connection: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        puts[kwargs.get("method", "GET")] += 1
        return original(connection, action, *args, **kwargs)

    monkeypatch.setattr(type(target.driver.connection), "request", counting)
    direct = libcloud_storage.direct_request

    def counting_direct(connection: Any, action: str, method: str, *args: Any) -> Any:
        answer = direct(connection, action, method, *args)
        puts[method] += answer is not None  # else it went through connection.request, counted there
        return answer

    monkeypatch.setattr(libcloud_storage, "direct_request", counting_direct)

    result = make_replicator(source.url, target, store, spec).replicate([bucket]).to_dict()

    assert (result["copied"], result["copied_bytes"]) == (3, sum(len(body) for body in bodies.values()))
    assert puts["PUT"] == 1 + 3 and puts["POST"] == 0  # the container, then one request per object
    for key, body in bodies.items():
        assert b"".join(target.download_stream(bucket, key)) == body
        stored = target.get_object(bucket, key)
        assert (stored.md5, stored.content_type, stored.meta) == (hashlib.md5(body).hexdigest(), "application/x-blob", {"n": key[5]})
    assert make_replicator(source.url, target, store, spec).replicate([bucket]).to_dict()["copied"] == 0
