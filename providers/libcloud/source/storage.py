"""A libcloud storage driver as the source of ``replicate`` and ``sync-buckets``: a container
is a bucket of the same name; its objects are listed and streamed through the same adapter that
writes targets (paged listings, retries, errors translated), read-only here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from failover.config import StorageSpec
from failover.errors import ConfigError, FailoverError, Problem
from failover.ports import ObjectInfo, SourceObject
from providers.libcloud.source.inventory import source_storage

PROBE_TIMEOUT_S = 3  # seconds: on failover day, a source that is gone must cost seconds


class LibcloudObjects:
    """A ``SourceStorage`` over ``source.storage``."""

    def __init__(self, spec: StorageSpec, *, file: str = "failover.yaml") -> None:
        self.spec = spec
        self.file = file
        self.storage = source_storage(spec, file)

    @classmethod
    def from_config(cls, config: Any) -> LibcloudObjects:
        spec = config.source.storage
        if spec is None:
            raise ConfigError([Problem(file=str(config.path), field="source.storage", message=(
                "the snapshot has buckets and the source names no storage driver to read them from"))])
        return cls(StorageSpec(driver=spec.driver, options=spec.options), file=str(config.path))

    def probe(self, bucket: str) -> str | None:
        """One request on a driver of its own, with a short timeout and no retries."""
        probe = source_storage(self.spec, self.file)
        try:
            driver = probe.driver
            driver.connection.timeout = PROBE_TIMEOUT_S
            driver.connection.retry_delay = None
            with probe.session.translating(f"look up container {bucket}"):
                driver.get_container(bucket)
        except FailoverError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - anything the driver raises means "not now"
            return f"the source storage ({self.spec.driver}) cannot serve {bucket}: {type(exc).__name__}: {exc}"
        return None

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        for item in self.storage.iter_objects(bucket):
            # listings carry no content type or metadata (as the port says): open() reads them
            yield ObjectInfo(key=item.key, size=item.size, hash=item.hash, md5=item.md5, modified=item.modified)

    def open(self, bucket: str, key: str) -> SourceObject | None:
        info = self.storage.get_object(bucket, key)
        if info is None:
            return None
        chunks = self.storage.download_stream(bucket, key)
        return SourceObject(info=info, chunks=chunks, close=getattr(chunks, "close", lambda: None))
