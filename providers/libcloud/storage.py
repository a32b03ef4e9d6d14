"""A storage target over any libcloud ``StorageDriver``, streaming both ways."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError, ObjectDoesNotExistError

from failover.config import DEFAULT_FILE, StorageSpec
from failover.errors import OperationFailed
from providers.base import ObjectInfo
from providers.libcloud.drivers import ADAPTERS, DriverSession, is_instance_of

CHUNK_SIZE = 1024 * 1024
LOCAL_DISK = "libcloud.storage.drivers.local:LocalStorageDriver"
AZURE_BLOBS = "libcloud.storage.drivers.azure_blobs:AzureBlobsStorageDriver"
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
# Azure metadata names are C# identifiers: S3's common "source-etag" is refused, and only
# as "Error in blocklist commit" after the whole object was sent.
_AZURE_META_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def connect_storage(spec: StorageSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> LibcloudStorage:
    """The storage target of a profile (shared by every caller in this process)."""
    return ADAPTERS.get("storage", spec, file, field, lambda: LibcloudStorage(spec, file=file, field=field))


class LibcloudStorage:
    """Buckets as containers named ``container_prefix + bucket`` on any libcloud driver."""

    def __init__(self, spec: StorageSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> None:
        self.spec = spec
        self.session = DriverSession("storage", spec, file=file, field=field)

    @property
    def keeps_metadata(self) -> bool:
        return not _is_local_disk(self.session.driver)

    def container_name(self, bucket: str) -> str:
        return f"{self.spec.container_prefix}{bucket}"

    # -- containers ----------------------------------------------------------------------

    def container_exists(self, bucket: str) -> bool:
        return self._container(bucket) is not None

    def ensure_container(self, bucket: str) -> str:
        name = self.container_name(bucket)
        if self._container(bucket) is None:
            with self.session.translating(f"create container {name}"):
                try:
                    self.session.driver.create_container(name)
                except ContainerAlreadyExistsError:
                    pass  # created meanwhile by a concurrent step: what we wanted
        return name

    def delete_container(self, bucket: str) -> bool:
        container = self._container(bucket)
        if container is None:
            return False
        for item in self.iter_objects(bucket):
            self.delete_object(bucket, item.key)
        with self.session.translating(f"delete container {container.name}"):
            self.session.driver.delete_container(container)
        return True

    def _container(self, bucket: str) -> Any:
        name = self.container_name(bucket)
        with self.session.translating(f"look up container {name}"):
            try:
                return self.session.driver.get_container(name)
            except ContainerDoesNotExistError:
                return None

    def _existing_container(self, bucket: str) -> Any:
        container = self._container(bucket)
        if container is None:
            raise OperationFailed(f"no container {self.container_name(bucket)}", where=self.session.where)
        return container

    # -- objects -------------------------------------------------------------------------

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        container = self._existing_container(bucket)
        pages = self.session.driver.iterate_container_objects(container, prefix=prefix or None)
        yield from (object_info(item) for item in self._translated(pages, f"list {container.name}"))

    def get_object(self, bucket: str, key: str) -> ObjectInfo | None:
        native = self._native_object(bucket, key)
        return object_info(native) if native is not None else None

    def upload_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> ObjectInfo:
        self._check_meta_names(meta or {})
        container = self._existing_container(bucket)
        sent = HashingStream(chunks)
        extra: dict[str, Any] = {"meta_data": dict(meta or {})}
        if content_type:
            extra["content_type"] = content_type
        with self.session.translating(f"upload {container.name}/{key}"):
            stored = self.session.driver.upload_object_via_stream(iter(sent), container, key, extra=extra)
        return ObjectInfo(
            key=key, size=sent.size, hash=_unquoted(stored.hash), md5=sent.md5,
            content_type=content_type, meta=dict(meta or {}),
        )

    def _check_meta_names(self, meta: dict[str, str]) -> None:
        if not is_instance_of(self.session.driver, AZURE_BLOBS):
            return
        refused = sorted(name for name in meta if not _AZURE_META_NAME.fullmatch(name))
        if refused:
            raise OperationFailed(
                f"Azure refuses metadata names other than letters, digits and _: {', '.join(refused)}",
                where=self.session.where,
            )

    def download_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        native = self._native_object(bucket, key)
        if native is None:
            raise OperationFailed(f"no object {key!r} in {self.container_name(bucket)}", where=self.session.where)
        action = f"download {self.container_name(bucket)}/{key}"
        with self.session.translating(action):
            chunks = self.session.driver.download_object_as_stream(native, chunk_size=CHUNK_SIZE)
        return self._translated(chunks, action)

    def delete_object(self, bucket: str, key: str) -> bool:
        native = self._native_object(bucket, key)
        if native is None:
            return False
        with self.session.translating(f"delete {self.container_name(bucket)}/{key}"):
            try:
                return bool(self.session.driver.delete_object(native))
            except ObjectDoesNotExistError:
                return False

    def _native_object(self, bucket: str, key: str) -> Any:
        name = self.container_name(bucket)
        with self.session.translating(f"look up {name}/{key}"):
            try:
                return self.session.driver.get_object(name, key)
            except (ObjectDoesNotExistError, ContainerDoesNotExistError):
                return None

    def _translated(self, items: Iterable[Any], action: str) -> Iterator[Any]:
        """``items``, with failures while iterating (a later page, a broken stream) translated too."""
        iterator = iter(items)
        while True:
            with self.session.translating(action):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item


class HashingStream:
    """Passes chunks through, counting bytes and computing their MD5 on the way."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._md5 = hashlib.md5()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._md5.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


def object_info(native: Any) -> ObjectInfo:
    extra = native.extra or {}
    return ObjectInfo(
        key=native.name,
        size=int(native.size or 0),
        hash=_unquoted(native.hash),
        md5=content_md5(native),
        content_type=extra.get("content_type") or None,
        # S3 listings put the owner ({id, display_name}) among the metadata: not user metadata.
        meta={str(k): v for k, v in (native.meta_data or {}).items() if isinstance(v, str)},
    )


def content_md5(native: Any) -> str | None:
    """The content's MD5 where the provider states one: Azure's Content-MD5, or an S3-style
    ETag of a single-part upload. Local disk's "hash" is of the file's mtime: not one."""
    stated = (native.extra or {}).get("md5_hash")
    if stated:
        return str(stated).lower()
    etag = (_unquoted(native.hash) or "").lower()
    if _MD5_HEX.fullmatch(etag) and not _is_local_disk(native.driver):
        return etag
    return None


def _is_local_disk(driver: Any) -> bool:
    return is_instance_of(driver, LOCAL_DISK)


def _unquoted(value: Any) -> str | None:
    return str(value).strip('"') if value else None
