"""The storage adapter over libcloud's Azure Blobs (Azurite), S3 and MinIO (moto_server) and
local-disk drivers: streamed both ways, content type, metadata and checksums kept."""

from __future__ import annotations

import hashlib
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from failover.config import StorageSpec
from failover.errors import OperationFailed
from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer
from providers.libcloud import connect_storage, forget_adapters
from providers.libcloud import storage as libcloud_storage
from providers.libcloud.storage import (
    AZURE_LIST_PAGE,
    STREAMED_PUT_LIMIT,
    LibcloudStorage,
    SentStream,
    SinglePut,
    SizedBody,
    modified_time,
    single_put_for,
)

SUPPORT = Path(__file__).resolve().parents[2] / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

from faultkit import Faults  # noqa: E402

BACKENDS = ["azure_blobs", "s3", "minio", "local"]
KEYS = ["plain.txt", "with space/and more spaces.txt", "ünïcødé/日本語 ファイル.txt"]
MIB = 1024 * 1024


def spec_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorageSpec:
    if backend == "azure_blobs":
        azurite: Azurite = request.getfixturevalue("azurite")
        return StorageSpec(driver="azure_blobs", options={**azurite.driver_options, "secret": "${env:TARGET_STORAGE_SECRET}"},
                           container_prefix="replica-")
    if backend in ("s3", "minio"):
        moto: MotoServer = request.getfixturevalue("moto")
        options = {"key": "testing", "secret": "${env:TARGET_STORAGE_SECRET}", "host": "127.0.0.1", "port": moto.port, "secure": False}
        if backend == "s3":
            options["region"] = "us-east-1"
        return StorageSpec(driver=backend, options=options, container_prefix=f"{backend}-replica-")
    return StorageSpec(driver="local", options={"key": str(tmp_path)}, container_prefix="replica-")


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LibcloudStorage:
    secret = request.getfixturevalue("azurite").driver_options["secret"] if request.param == "azure_blobs" else "testing"
    monkeypatch.setenv("TARGET_STORAGE_SECRET", secret)
    return connect_storage(spec_for(request.param, request, tmp_path))


@pytest.fixture
def bucket(storage: LibcloudStorage, unique: str) -> Iterator[str]:
    name = f"bucket-{unique}"
    storage.ensure_container(name)
    yield name
    storage.delete_container(name)


def test_containers_are_named_with_the_prefix_and_ensured_idempotently(storage: LibcloudStorage, unique: str) -> None:
    bucket = f"photos-{unique}"
    assert not storage.container_exists(bucket)

    assert storage.ensure_container(bucket) == f"{storage.spec.container_prefix}photos-{unique}"
    assert storage.ensure_container(bucket) == storage.container_name(bucket)
    assert storage.container_exists(bucket)
    assert storage.session.driver.get_container(storage.container_name(bucket)).name == storage.container_name(bucket)

    storage.upload_stream(bucket, "left-behind.txt", [b"x"])
    assert storage.delete_container(bucket) is True
    assert storage.delete_container(bucket) is False
    assert not storage.container_exists(bucket)


@pytest.mark.parametrize("key", KEYS)
def test_round_trip_keeps_content_type_metadata_and_checksum(storage: LibcloudStorage, bucket: str, key: str) -> None:
    content = "Grüße, 世界 — ".encode() * 1000
    # Portable names: Azure refuses "-", moto (werkzeug) drops headers with "_".
    meta = {"owner": "web-team", "sourceref": "abc123"}

    uploaded = storage.upload_stream(bucket, key, _pieces(content, 777), content_type="text/plain; charset=utf-8", meta=meta)
    stored = storage.get_object(bucket, key)
    downloaded = b"".join(storage.download_stream(bucket, key))

    assert downloaded == content
    assert uploaded.md5 == hashlib.md5(content).hexdigest() and uploaded.size == len(content)
    assert stored is not None and stored.size == len(content)
    assert stored.md5 in (None, uploaded.md5)  # S3 states no MD5 for multipart uploads
    if storage.keeps_metadata:
        assert (stored.content_type, stored.meta) == ("text/plain; charset=utf-8", meta)
    assert [item.key for item in storage.iter_objects(bucket)] == [key]


@pytest.mark.filterwarnings("ignore:Driver LocalStorageDriver does not implement native object filtering")
def test_listing_pages_through_every_object_and_filters_by_prefix(storage: LibcloudStorage, bucket: str) -> None:
    keys = sorted([f"logs/{n:03}.txt" for n in range(12)] + ["index.html"])
    for key in keys:
        storage.upload_stream(bucket, key, [key.encode()])

    listed = list(storage.iter_objects(bucket))

    assert sorted(item.key for item in listed) == keys
    assert all(item.size == len(item.key.encode()) for item in listed)
    assert sorted(item.key for item in storage.iter_objects(bucket, prefix="logs/")) == [k for k in keys if k.startswith("logs/")]


def test_a_20_mib_object_is_streamed_without_being_held_whole(storage: LibcloudStorage, bucket: str) -> None:
    size = 20 * MIB
    expected = hashlib.md5()
    for piece in _generated(size):
        expected.update(piece)

    tracemalloc.start()
    try:
        uploaded = storage.upload_stream(bucket, "big.bin", _generated(size), content_type="application/octet-stream")
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received, downloaded = 0, hashlib.md5()
        for chunk in storage.download_stream(bucket, "big.bin"):
            received += len(chunk)
            downloaded.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (uploaded.size, received) == (size, size)
    assert uploaded.md5 == downloaded.hexdigest() == expected.hexdigest()
    # Held whole, the object alone would take `size`; libcloud buffers one part (S3: 5 MiB) a few times.
    assert upload_peak < size and download_peak < size, (upload_peak, download_peak)


def test_deleting_an_object_is_idempotent(storage: LibcloudStorage, bucket: str) -> None:
    storage.upload_stream(bucket, "a b.txt", [b"data"])

    assert storage.delete_object(bucket, "a b.txt") is True
    assert storage.delete_object(bucket, "a b.txt") is False
    assert storage.get_object(bucket, "a b.txt") is None
    assert list(storage.iter_objects(bucket)) == []


def test_missing_objects_and_containers_are_reported(storage: LibcloudStorage, bucket: str, unique: str) -> None:
    with pytest.raises(OperationFailed, match="no object 'absent.txt'"):
        storage.download_stream(bucket, "absent.txt")
    with pytest.raises(OperationFailed, match=f"no container {storage.spec.container_prefix}never-{unique}"):
        storage.upload_stream(f"never-{unique}", "a.txt", [b"x"])
    assert storage.get_object(f"never-{unique}", "a.txt") is None


def test_azure_refuses_dashed_metadata_names_before_sending_anything(azurite: Azurite, unique: str) -> None:
    storage = connect_storage(StorageSpec(driver="azure_blobs", options=azurite.driver_options))
    storage.ensure_container(f"meta-{unique}")
    with pytest.raises(OperationFailed, match="metadata names other than letters, digits and _: source-etag"):
        storage.upload_stream(f"meta-{unique}", "a.txt", [b"x"], meta={"source-etag": "abc", "ok_name": "1"})
    assert storage.get_object(f"meta-{unique}", "a.txt") is None


def test_local_disk_says_it_keeps_no_metadata(tmp_path: Path) -> None:
    storage = connect_storage(StorageSpec(driver="local", options={"key": str(tmp_path)}))
    storage.ensure_container("b")
    stored = storage.upload_stream("b", "page.html", [b"<p>hi</p>"], content_type="text/html", meta={"a": "b"})

    assert storage.keeps_metadata is False
    assert storage.get_object("b", "page.html").md5 is None  # libcloud's local "hash" is of the mtime
    assert stored.md5 == hashlib.md5(b"<p>hi</p>").hexdigest()
    assert (tmp_path / "b" / "page.html").read_bytes() == b"<p>hi</p>"


def _pieces(content: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def _generated(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    """``total`` bytes made on demand, never all at once."""
    for index in range(total // piece):
        yield bytes([index % 251]) * piece


# -- the replication fast path ------------------------------------------------------------------

HTTP_BACKENDS = ["azure_blobs", "s3", "minio"]


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
def test_a_small_object_is_stored_in_one_request_with_its_md5_stated(
    storage: LibcloudStorage, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = _requests_counted(monkeypatch, storage)
    content = b"small and whole" * 100

    uploaded = storage.upload_stream(bucket, "small.txt", [content[:700], content[700:]], content_type="text/plain")

    assert requests.count == 1
    listed = next(storage.iter_objects(bucket))
    assert uploaded.md5 == listed.md5 == hashlib.md5(content).hexdigest()
    assert uploaded.hash == listed.hash
    if storage.spec.driver != "azure_blobs":
        assert uploaded.hash == uploaded.md5  # a plain PUT: S3's ETag is the MD5 again, not a multipart one
    assert storage.get_object(bucket, "small.txt").content_type == "text/plain"


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
def test_one_block_goes_up_whole_and_one_byte_more_is_streamed(
    storage: LibcloudStorage, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = single_put_for(storage.driver).limit
    whole = _counted(monkeypatch, SinglePut, "put")

    for key, size in (("one-block.bin", limit), ("one-more.bin", limit + 1)):
        content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        uploaded = storage.upload_stream(bucket, key, _pieces(content, 256 * 1024))
        assert (uploaded.size, uploaded.md5) == (size, hashlib.md5(content).hexdigest())
        assert hashlib.md5(b"".join(storage.download_stream(bucket, key))).hexdigest() == uploaded.md5

    assert whole.count == 1


def test_a_container_is_looked_up_once_for_many_uploads(storage: LibcloudStorage, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage.upload_stream(bucket, "first.txt", [b"1"])
    lookups = _counted(monkeypatch, storage.driver, "get_container")

    for n in range(5):
        storage.upload_stream(bucket, f"more-{n}.txt", [b"more"])

    assert lookups.count == 0
    assert storage.container_exists(bucket) and lookups.count == 1  # a question asked of the provider every time


@pytest.mark.parametrize("storage", ["azure_blobs", "s3"], indirect=True)
def test_requests_reads_the_environment_only_when_it_configures_a_proxy(
    storage: LibcloudStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert storage.driver.connection.connection.session.trust_env is False

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    forget_adapters()
    proxied = connect_storage(storage.spec)
    assert proxied.driver.connection.connection.session.trust_env is True


def test_listed_objects_say_when_they_were_written(storage: LibcloudStorage, bucket: str) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    storage.upload_stream(bucket, "dated.txt", [b"when"])

    listed = next(storage.iter_objects(bucket))
    fetched = storage.get_object(bucket, "dated.txt")

    for item in (listed, fetched):
        assert item.modified is not None and item.modified.tzinfo is not None
        assert before <= item.modified <= datetime.now(UTC) + timedelta(minutes=5)


def test_the_sent_stream_counts_and_hashes_what_it_hands_over() -> None:
    looked_ahead = SentStream(iter([b"ab", b"", b"cd", b"ef"]))
    assert looked_ahead.ends_within(3) is False
    assert list(looked_ahead) == [b"ab", b"cd", b"ef"]  # empty chunks dropped: libcloud reads one as the end
    assert (looked_ahead.size, looked_ahead.md5) == (6, hashlib.md5(b"abcdef").hexdigest())

    small = SentStream([b"ab", b"cd"])
    assert small.ends_within(4) is True
    assert small.rest() == b"abcd" and (small.size, small.md5) == (4, hashlib.md5(b"abcd").hexdigest())


def test_modified_times_are_read_from_each_providers_format() -> None:
    expected = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
    assert modified_time({"last_modified": "2024-05-01T12:30:15.000Z"}) == expected  # S3 listings
    assert modified_time({"last_modified": "Wed, 01 May 2024 12:30:15 GMT"}) == expected  # Azure, HTTP headers
    assert modified_time({"modify_time": expected.timestamp()}) == expected  # local disk
    assert modified_time({"last_modified": "yesterday"}) is None
    assert modified_time({}) is None


class _Calls:
    count = 0


def _counted(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> _Calls:
    """Count calls of ``owner.name`` (still calling it) for the rest of the test."""
    calls = _Calls()
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.count += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def _requests_counted(monkeypatch: pytest.MonkeyPatch, storage: LibcloudStorage) -> _Calls:
    """Count the requests of ``storage``'s driver: through libcloud's connection, or prepared by it
    and sent directly (``direct_request``)."""
    calls = _counted(monkeypatch, storage.driver.connection, "request")
    direct = libcloud_storage.direct_request

    def counting(*args, **kwargs):
        answer = direct(*args, **kwargs)
        calls.count += answer is not None  # else sent through connection.request, counted there
        return answer

    monkeypatch.setattr(libcloud_storage, "direct_request", counting)
    return calls


def test_a_signed_url_fetches_the_object_where_the_provider_signs_urls(storage: LibcloudStorage, bucket: str) -> None:
    import urllib.request

    storage.upload_stream(bucket, "orders-db/20260101T000000Z.dump", [b"PGDMP dump bytes"])
    url = storage.object_url(bucket, "orders-db/20260101T000000Z.dump", 900)
    if storage.spec.driver in ("local", "minio"):  # a local path is no use to a node; libcloud's minio signs none
        assert url is None
        return
    assert url is not None and url.startswith("http")
    with urllib.request.urlopen(url, timeout=10) as answer:  # no credentials: the URL carries its signature
        assert answer.read() == b"PGDMP dump bytes"
    assert storage.object_url(bucket, "no-such-key", 900) is None


# -- objects of a stated size: one request, streamed as read ----------------------------------------

MB = 1000 * 1000


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
@pytest.mark.parametrize("state_md5", [True, False], ids=["md5-stated", "md5-unknown"])
def test_an_object_of_stated_size_goes_up_in_one_streamed_request(
    storage: LibcloudStorage, bucket: str, monkeypatch: pytest.MonkeyPatch, state_md5: bool
) -> None:
    content = bytes(range(256)) * (10 * MB // 256) + b"tail"  # 10 MB: past one block and one S3 part
    md5 = hashlib.md5(content).hexdigest()
    requests = _requests_counted(monkeypatch, storage)
    meta = {"owner": "web_team"}

    uploaded = storage.upload_stream(
        bucket, "big/ten mb.bin", _pieces(content, MIB), content_type="application/x-test", meta=meta,
        size=len(content), md5=md5 if state_md5 else None,
    )

    assert requests.count == 1  # S3 through libcloud: initiate, 2 parts, complete; Azure: 3 blocks, block list
    assert (uploaded.size, uploaded.md5) == (len(content), md5)
    assert b"".join(storage.download_stream(bucket, "big/ten mb.bin")) == content
    stored = storage.get_object(bucket, "big/ten mb.bin")
    assert (stored.size, stored.md5, stored.content_type, stored.meta) == (len(content), md5, "application/x-test", meta)
    assert next(storage.iter_objects(bucket)).md5 == md5  # a plain ETag (S3) or a Content-MD5 (Azure), not multipart


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
def test_a_streamed_upload_holds_one_chunk_not_a_part(storage: LibcloudStorage, bucket: str) -> None:
    size = 20 * MIB
    expected = hashlib.md5()
    for piece in _generated(size):
        expected.update(piece)
    storage.upload_stream(bucket, "warm-up", [b"x"], size=1)  # the driver and its session, outside the measure

    tracemalloc.start()
    try:
        uploaded = storage.upload_stream(bucket, "big.bin", _generated(size), size=size, md5=expected.hexdigest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (uploaded.size, uploaded.md5) == (size, expected.hexdigest())
    assert peak < 2 * MIB, peak  # one 256 KiB piece in flight; libcloud's part upload held 5 MiB parts a few times


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
def test_bytes_that_are_not_the_stated_md5_are_refused_and_reported(storage: LibcloudStorage, bucket: str) -> None:
    content = b"what the source really sent" * 1000
    claimed = hashlib.md5(b"what the source said it had").hexdigest()

    with pytest.raises(OperationFailed) as raised:
        storage.upload_stream(bucket, "lied.bin", [content], size=len(content), md5=claimed)

    # Azure and S3 check the Content-MD5 and answer 400; moto stores the bytes, and its ETag gives it away.
    assert "PUT answered 400" in str(raised.value) or f"not the {claimed} the source states" in str(raised.value)


@pytest.mark.parametrize("storage", HTTP_BACKENDS, indirect=True)
@pytest.mark.parametrize("sent", [b"short", b"far too long a body"], ids=["fewer", "more"])
def test_a_stream_that_is_not_the_stated_size_fails_without_waiting_for_the_server(
    storage: LibcloudStorage, bucket: str, sent: bytes
) -> None:
    with pytest.raises(OperationFailed, match="bytes it stated"):
        storage.upload_stream(bucket, "sized.bin", iter([sent]), size=10)
    assert storage.upload_stream(bucket, "sized.bin", [b"0123456789"], size=10).size == 10  # the driver still works


def test_a_sized_body_counts_hashes_and_keeps_to_its_length() -> None:
    body = SizedBody(iter([b"ab", b"", b"cd"]), 4, hashing=True)
    assert len(body) == 4 and list(body) == [b"ab", b"cd"]
    assert (body.size, body.md5) == (4, hashlib.md5(b"abcd").hexdigest())
    assert SizedBody([b"abcd"], 4, hashing=False).md5 is None
    with pytest.raises(OperationFailed, match="sent 2 of the 4 bytes"):
        list(SizedBody([b"ab"], 4, hashing=False))
    with pytest.raises(OperationFailed, match="more than the 3 bytes"):
        list(SizedBody([b"ab", b"cd"], 3, hashing=False))


@pytest.mark.parametrize("storage", ["local"], indirect=True)
def test_local_disk_takes_a_stated_size_and_md5_as_hints_only(storage: LibcloudStorage, bucket: str) -> None:
    uploaded = storage.upload_stream(bucket, "a.bin", [b"abc"], size=3, md5=hashlib.md5(b"abc").hexdigest())
    assert (uploaded.size, uploaded.md5) == (3, hashlib.md5(b"abc").hexdigest())


def test_past_the_streamed_limit_an_object_takes_the_part_upload(storage: LibcloudStorage, monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    monkeypatch.setattr("providers.libcloud.storage.STREAMED_PUT_LIMIT", 1000)
    streamed = _counted(monkeypatch, SinglePut, "put_streamed")
    content = b"z" * 1001

    uploaded = storage.upload_stream(bucket, "over.bin", [content], size=len(content))

    assert streamed.count == 0 and uploaded.md5 == hashlib.md5(content).hexdigest()
    assert STREAMED_PUT_LIMIT >= 64 * MIB


def test_azure_lists_thousands_of_blobs_in_one_request(azurite: Azurite, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = connect_storage(StorageSpec(driver="azure_blobs", options=azurite.driver_options, container_prefix="list-"))
    bucket = f"many-{unique}"
    storage.ensure_container(bucket)
    for n in range(250):
        storage.upload_stream(bucket, f"k{n:04d}", [b"v"], size=1)
    requests = _requests_counted(monkeypatch, storage)

    listed = list(storage.iter_objects(bucket))

    assert [item.key for item in listed] == [f"k{n:04d}" for n in range(250)]
    assert requests.count == 1 and AZURE_LIST_PAGE == 5000  # libcloud's own listing asks for 100 at a time
    assert [item.key for item in storage.iter_objects(bucket, prefix="k00")] == [f"k{n:04d}" for n in range(100)]
    monkeypatch.setattr("providers.libcloud.storage.AZURE_LIST_PAGE", 100)
    assert [item.key for item in storage.iter_objects(bucket)] == [item.key for item in listed]  # three pages
    assert requests.count == 2 + 3
    storage.delete_container(bucket)


@pytest.mark.parametrize(("storage", "key", "why"), [
    ("azure_blobs", "a\x01b", "a control character ('\\x01')"),
    ("azure_blobs", "esc\x1b[2J", "a control character ('\\x1b')"),
    ("azure_blobs", "x//y", "which Azure stores as one '/'"),
    ("azure_blobs", "a\\b", "a backslash"),
    ("azure_blobs", "k" * 1025, "1,025 characters long"),
    ("minio", "k" * 1025, "1,025 bytes long"),
    ("minio", "x\ufffe", "a control character"),
    ("local", "k" * 256, "a path segment of 256 bytes"),
    ("local", "d/" * 2100 + "f", "a path of"),
    ("local", ".lock/x", "a folder local disk leaves out of its listings"),
    ("local", "tab\tkey", "a control character"),
], indirect=["storage"])
def test_keys_a_target_cannot_hold_are_named_with_why(storage: LibcloudStorage, key: str, why: str) -> None:
    problem = storage.key_problem("bucket", key)
    assert problem is not None and why in problem, problem
    assert key not in problem or len(key) < 20  # a long key is never repeated whole


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
@pytest.mark.parametrize("key", ["a/b", "x/y", "é" * 100, "sp ace/ü.txt", "k" * 255, "a/", "trailing."])
def test_ordinary_keys_are_held(storage: LibcloudStorage, key: str) -> None:
    if storage.key_problem("bucket", key) is not None:
        assert key == "a/" and storage.spec.driver == "local"  # an empty segment: refused before asking the target
    assert storage.key_collisions("bucket", [key], []) == {}


@pytest.mark.parametrize("storage", ["local", "azure_blobs"], indirect=True)
def test_on_local_disk_a_file_gives_way_to_a_folder_unless_it_is_stored_already(storage: LibcloudStorage) -> None:
    collisions = storage.key_collisions("bucket", ["a", "a/b", "a/b/c", "d/e", "f"], stored=["d"])
    if storage.spec.driver != "local":
        assert collisions == {}  # object stores have no folders
        return
    assert set(collisions) == {"a", "a/b", "d/e"}
    assert "needs a folder of this name for 'a/" in collisions["a"]
    assert "stores a file 'd' where this key needs a folder" in collisions["d/e"]


def test_a_503_on_a_page_of_an_azure_listing_asks_for_that_page_again(
    azurite: Azurite, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = StorageSpec(driver="azure_blobs", options=azurite.driver_options, container_prefix="list-")
    storage = connect_storage(spec)
    bucket = f"paged-{unique}"
    storage.ensure_container(bucket)
    for n in range(25):
        storage.upload_stream(bucket, f"k{n:04d}", [b"v"], size=1)
    monkeypatch.setattr("providers.libcloud.storage.AZURE_LIST_PAGE", 10)
    faults = Faults(storage.driver, monkeypatch, name_of=lambda action, params, method: params.get("comp"))
    faults.fail("list", after=1)  # the second page

    listed = [item.key for item in storage.iter_objects(bucket)]

    assert faults.injected == ["list"]
    assert listed == [f"k{n:04d}" for n in range(25)]  # each once, in order
    storage.delete_container(bucket)
