"""The storage adapter over libcloud's Azure Blobs (Azurite), S3 and MinIO (moto_server) and
local-disk drivers: streamed both ways, content type, metadata and checksums kept."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.config import StorageSpec
from failover.errors import OperationFailed
from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer
from providers.libcloud import connect_storage
from providers.libcloud.storage import LibcloudStorage

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
