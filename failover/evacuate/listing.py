"""What a pass must copy, decided page by page: the source's listing, the target's listing and
the records of earlier copies are read side by side in key order (S3 and Azure list in key
order, the records are read in pages ordered by key), never held whole, and what must be
copied is spilled into a scratch SQLite file (:class:`Spool`) to be read back newest first.

Memory does not grow with the bucket: a page of each listing, a page of records and a batch of
rows to write. A target whose listing is not in key order (local disk walks folders) is spilled
and read back sorted first.

The decision per object is ``failover replicate``'s (``failover.replicate.buckets``): unchanged
when its record matches the source and the target's copy, adopted when the target already
holds it (same size and MD5) unrecorded, refused when its key cannot be held, else copied.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from failover.errors import OperationFailed
from failover.keytext import shown
from failover.ports import ObjectInfo
from failover.replicate.buckets import adoption, is_current
from failover.state import ReplicaObject, StateStore

PAGE = 1000  # records read, and rows spilled, at a time


@dataclass
class BucketDiff:
    """What one bucket's listing showed: counts, and what was decided for each object."""

    bucket: str
    container: str
    objects: int = 0
    bytes: int = 0
    unchanged: int = 0
    adopted: list[ReplicaObject] = field(default_factory=list)  # recorded as they are found
    adopted_count: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    to_copy: int = 0
    to_copy_bytes: int = 0


def in_key_order(items: Iterable[ObjectInfo], what: str) -> Iterator[ObjectInfo]:
    """``items`` as they come, checked to be in ascending key order (which the merge needs)."""
    previous: str | None = None
    for item in items:
        if previous is not None and item.key <= previous:
            raise OperationFailed(f"the listing of {what} is not in key order ({shown(item.key)} after"
                                  f" {shown(previous)}); it cannot be compared page by page")
        previous = item.key
        yield item


def recorded(store: StateStore, service: str, target: str, container: str, page: int = PAGE) -> Iterator[ReplicaObject]:
    """The records of copies into ``container``, in key order, a page at a time."""
    collate = ' COLLATE "C"' if store.backend is not None else ""  # PostgreSQL: byte order, as the listings
    after = ""
    first = True
    while True:
        rows = store.query(
            "SELECT key, source_etag, size, md5, target_hash, copied_at FROM replica_objects"
            " WHERE service = ? AND target = ? AND container = ?"
            + ("" if first else f" AND key{collate} > ?") + f" ORDER BY key{collate} LIMIT {int(page)}",
            (service, target, container) if first else (service, target, container, after),
        )
        yield from (ReplicaObject(*row) for row in rows)
        if len(rows) < page:
            return
        after, first = rows[-1]["key"], False


def recorded_totals(store: StateStore, service: str, target: str, container: str) -> tuple[int, int]:
    """How many copies into ``container`` are recorded, and their bytes."""
    row = store.query("SELECT count(*) AS objects, coalesce(sum(size), 0) AS bytes FROM replica_objects"
                      " WHERE service = ? AND target = ? AND container = ?", (service, target, container))[0]
    return int(row["objects"]), int(row["bytes"])


def diff_bucket(
    source: Iterable[ObjectInfo], target: Iterable[ObjectInfo], records: Iterable[ReplicaObject], *,
    diff: BucketDiff, refusal: Callable[[str], str | None], to_copy: Callable[[ObjectInfo], None],
    adopt: Callable[[list[ReplicaObject]], None],
) -> BucketDiff:
    """Walk the three key-ordered streams together; hand each object to copy to ``to_copy``
    and adopted copies to ``adopt`` (in pages), counting everything in ``diff``."""
    target_items, record_items = iter(target), iter(records)
    copy = next(target_items, None)
    record = next(record_items, None)
    adopted: list[ReplicaObject] = []
    for item in source:
        while copy is not None and copy.key < item.key:
            copy = next(target_items, None)
        while record is not None and record.key < item.key:
            record = next(record_items, None)
        here = copy if copy is not None and copy.key == item.key else None
        its_record = record if record is not None and record.key == item.key else None
        diff.objects += 1
        diff.bytes += item.size
        why = refusal(item.key)
        if why is not None:
            diff.refused[item.key] = why
        elif its_record is not None and is_current(item, here, its_record):
            diff.unchanged += 1
        elif (found := adoption(item, here)) is not None:
            diff.adopted_count += 1
            adopted.append(found)
            if len(adopted) >= PAGE:
                adopt(adopted)
                adopted = []
        else:
            diff.to_copy += 1
            diff.to_copy_bytes += item.size
            to_copy(item)
    adopt(adopted)
    return diff


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
