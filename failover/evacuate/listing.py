"""What a pass must copy, decided page by page by ``failover replicate``'s diff
(:func:`failover.replicate.buckets.diff_pages`): the source's listing, the target's listing and
the records of earlier copies (``StateStore.iter_replica_objects``) are read side by side in key
order, never held whole, and what must be copied is spilled into a scratch SQLite file
(:class:`Spool`) to be read back newest first.

Memory does not grow with the bucket: a window of each listing, a page of records and a batch of
rows to write. A listing that is not in key order (``OutOfOrder``) is spilled and read back
sorted, and the bucket diffed again.

The decision per object is the replicate diff's: unchanged when its record matches the source and
the target's copy, adopted when the target already holds it (same size and MD5) unrecorded,
refused when its key cannot be held, else copied.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from failover.ports import ObjectInfo
from failover.replicate.buckets import DiffBatch, diff_pages
from failover.state import ReplicaObject, StateStore

PAGE = 1000  # keys per diff window, and rows spilled, at a time


@dataclass
class BucketDiff:
    """What one bucket's listing showed, counted from the :class:`DiffBatch` es of
    :func:`~failover.replicate.buckets.diff_pages` as they come (``add``)."""

    bucket: str
    container: str
    objects: int = 0
    bytes: int = 0
    unchanged: int = 0  # recorded copies still current (adopted ones not counted here)
    adopted: int = 0  # unrecorded copies found on the target, recorded as they are found
    refused: dict[str, str] = field(default_factory=dict)
    to_copy: int = 0
    to_copy_bytes: int = 0

    def add(self, batch: DiffBatch) -> None:
        self.objects += batch.objects
        self.bytes += batch.bytes
        self.unchanged += batch.unchanged - len(batch.adopt)
        self.adopted += len(batch.adopt)
        self.refused.update(batch.refused)
        self.to_copy += len(batch.copy)
        self.to_copy_bytes += sum(item.size for item in batch.copy)


def diff_into(
    source: Iterable[ObjectInfo], target: Iterable[ObjectInfo], records: Iterable[ReplicaObject], *,
    diff: BucketDiff, refuse: Callable[[str], str | None], to_copy: Callable[[ObjectInfo], None],
    adopt: Callable[[list[ReplicaObject]], None], page: int = PAGE,
) -> BucketDiff:
    """The three key-ordered streams diffed by :func:`~failover.replicate.buckets.diff_pages`, a
    window at a time: each object to copy handed to ``to_copy``, each window's adopted copies to
    ``adopt``, everything counted in ``diff``. Raises OutOfOrder for a listing out of key order."""
    for batch in diff_pages(source, target, records, refuse=refuse, page=page):
        diff.add(batch)
        for item in batch.copy:
            to_copy(item)
        if batch.adopt:
            adopt(batch.adopt)
    return diff


def recorded_totals(store: StateStore, service: str, target: str, container: str) -> tuple[int, int]:
    """How many copies into ``container`` are recorded, and their bytes."""
    row = store.query("SELECT count(*) AS objects, coalesce(sum(size), 0) AS bytes FROM replica_objects"
                      " WHERE service = ? AND target = ? AND container = ?", (service, target, container))[0]
    return int(row["objects"]), int(row["bytes"])


class Spool:
    """A scratch SQLite file of objects: the objects each bucket must copy, read back newest
    first, and a sorter for listings that do not come in key order. Never the state: it is
    made again by every pass, and removed at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for stale in (path, path.with_name(path.name + "-journal")):
            with suppress(FileNotFoundError):
                stale.unlink()  # left by a process that was killed: its decisions are redone
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA temp_store=FILE")  # a sort of millions of rows spills to disk, not memory
        self._conn.execute("PRAGMA cache_size=-16000")  # 16 MB
        self._conn.execute(
            "CREATE TABLE objects (list TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, hash TEXT,"
            " md5 TEXT, modified REAL)")
        self._pending: list[tuple] = []

    def add(self, list_name: str, item: ObjectInfo) -> None:
        modified = item.modified.timestamp() if item.modified is not None else None
        self._pending.append((list_name, item.key, item.size, item.hash, item.md5, modified))
        if len(self._pending) >= PAGE:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._conn.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._pending = []

    def clear(self) -> None:
        self._pending = []
        self._conn.execute("DELETE FROM objects")

    def drop(self, list_name: str) -> None:
        """Forget what was spilled under ``list_name`` (a listing that failed half way)."""
        self.flush()
        self._conn.execute("DELETE FROM objects WHERE list = ?", (list_name,))

    def sorted_by_key(self, list_name: str, items: Iterable[ObjectInfo]) -> Iterator[ObjectInfo]:
        """``items`` spilled under ``list_name`` and read back in key order (byte order)."""
        for item in items:
            self.add(list_name, item)
        self.flush()
        yield from self._read("WHERE list = ? ORDER BY key", (list_name,))

    def newest_first(self, list_name: str, batch: int) -> Iterator[list[ObjectInfo]]:
        """The objects spilled under ``list_name``, the most recently written first (objects
        without a time last), in batches of ``batch``."""
        self.flush()
        self._conn.execute("CREATE INDEX IF NOT EXISTS newest ON objects (list, modified DESC, key)")
        rows: list[ObjectInfo] = []
        for item in self._read("WHERE list = ? ORDER BY modified IS NULL, modified DESC, key", (list_name,)):
            rows.append(item)
            if len(rows) >= batch:
                yield rows
                rows = []
        if rows:
            yield rows

    def _read(self, where: str, params: tuple) -> Iterator[ObjectInfo]:
        cursor = self._conn.execute(f"SELECT key, size, hash, md5, modified FROM objects {where}", params)
        try:
            while rows := cursor.fetchmany(PAGE):
                for key, size, etag, md5, modified in rows:
                    when = datetime.fromtimestamp(modified, UTC) if modified is not None else None
                    yield ObjectInfo(key=key, size=size, hash=etag, md5=md5, modified=when)
        finally:
            cursor.close()

    def close(self) -> None:
        self._conn.close()
        with suppress(FileNotFoundError):
            self.path.unlink()
