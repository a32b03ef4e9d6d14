"""What goes first: the buckets in the order of ``evacuation.priority`` (names or globs, the
first pattern that matches a bucket places it), then the others, smallest first (by the
snapshot's bytes), so that the most buckets are complete when time runs out."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from failover.manifest import Bucket


def bucket_order(buckets: Sequence[Bucket], priority: Sequence[str]) -> list[Bucket]:
    """``buckets`` (the snapshot's) in the order they are evacuated."""

    def rank(bucket: Bucket) -> tuple[int, int, str]:
        placed = priority_rank(bucket.id, priority)
        if placed is not None:
            return (placed, 0, bucket.id)
        return (len(priority), bucket.bytes, bucket.id)

    return sorted(buckets, key=rank)


def priority_rank(bucket: str, priority: Sequence[str]) -> int | None:
    """The index of the first pattern of ``priority`` that ``bucket`` matches (``*``, ``?``,
    ``[...]`` as in shell globs, case-sensitive), or None."""
    return next((index for index, pattern in enumerate(priority) if fnmatchcase(bucket, pattern)), None)
