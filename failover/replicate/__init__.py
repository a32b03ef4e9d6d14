"""``failover replicate`` as a library: what cannot be rebuilt kept on the target ahead of time.

- :mod:`failover.replicate.buckets`: incremental, MD5-verified copies of buckets into containers;
- :mod:`failover.replicate.zones`: DNS zones mirrored onto the target DNS;
- :mod:`failover.replicate.dumps`: database dumps streamed into the target's storage, the newest kept;
- :mod:`failover.replicate.service`: one whole pass, :func:`replicate`, returning a :class:`ReplicateResult`.
"""

from failover.replicate.service import (
    MAX_WORKERS,
    PARTS,
    PartResult,
    ReplicateOptions,
    ReplicateProgress,
    ReplicateResult,
    replicate,
    replicate_pass,
)

__all__ = [
    "MAX_WORKERS", "PARTS", "PartResult", "ReplicateOptions", "ReplicateProgress", "ReplicateResult", "replicate",
    "replicate_pass",
]
