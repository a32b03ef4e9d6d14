"""``replicas``: each snapshot bucket has a whole, recent replica on the target.

Read from one listing of each container, against the records of the copies
``replicate`` made (:func:`failover.replicate.buckets.replica_status`): the container exists,
no recorded copy is missing or changed, it holds at least as many objects as the
snapshot counted, and the replica (the source's listing it was made from) is no older
than ``readiness.rpo``.
"""

from __future__ import annotations

from typing import Any

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, passed, plural, summarize
from failover.clock import approx_duration
from failover.replicate.buckets import quote_keys, replica_status


@CHECKS.register("replicas")
class Replicas(Check):
    summary = "Every snapshot bucket has a whole replica on the target, no older than readiness.rpo."
    order = 60
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        buckets = ctx.manifest.of_kind("bucket")
        if not buckets:
            return passed("no buckets in the snapshot")
        if ctx.profile.storage is None:
            return ctx.no_capability("storage", f"the snapshot has {plural(len(buckets), 'bucket')} to keep there")
        rows = [_bucket(ctx, bucket) for bucket in buckets]
        return summarize(rows, buckets=rows, rpo_s=ctx.readiness.rpo)


def _bucket(ctx: CheckContext, bucket: Any) -> dict[str, Any]:
    status = replica_status(ctx.targets.storage, ctx.store, service=ctx.service, target_name=ctx.target_name,
                            bucket=bucket.id)
    row: dict[str, Any] = {
        "bucket": bucket.id, "container": status.container, "exists": status.exists, "objects": status.objects,
        "bytes": status.bytes, "snapshot_objects": bucket.objects, "missing": list(status.missing),
        "differing": list(status.differing), "as_of": status.as_of,
        "age_s": round(status.age_s, 1) if status.age_s is not None else None, "refused": status.refused,
    }
    name = f"bucket {bucket.id} ({status.container})"
    if not status.exists:
        return {**row, "status": "fail",
                "detail": f"{name}: no container {status.container} on the target: run `failover replicate`"}
    problems = []
    if status.missing:
        problems.append(f"{len(status.missing)} recorded object(s) missing: {quote_keys(status.missing)}")
    if status.differing:
        problems.append(f"{len(status.differing)} object(s) changed since copied: {quote_keys(status.differing)}")
    if status.objects + status.refused < bucket.objects:
        problems.append(f"incomplete: {status.objects} of the snapshot's {bucket.objects} objects")
    rpo = ctx.readiness.rpo
    if status.age_s is not None and status.age_s > rpo:
        problems.append(f"{approx_duration(status.age_s)} old, older than readiness.rpo ({approx_duration(rpo)})")
    counts = f"{status.objects}/{bucket.objects} objects"
    if problems:
        return {**row, "status": "fail", "detail": f"{name}: {'; '.join(problems)}"}
    if status.age_s is None:
        return {**row, "status": "warn",
                "detail": f"{name}: {counts}, age unknown (no replication recorded): run `failover replicate`"}
    if status.refused:
        return {**row, "status": "warn",
                "detail": f"{name}: {counts}, {approx_duration(status.age_s)} old; {status.refused} object(s) with keys the"
                          " target cannot hold were refused (see `failover replicate`)"}
    return {**row, "status": "pass", "detail": f"{name}: {counts}, {approx_duration(status.age_s)} old"}
