"""``sync-buckets``: each snapshot bucket's data in its target container.

From the source while it still answers, through the replication engine (the same copy
``failover replicate`` makes). Whether it answers is asked once, with a short timeout:
when the account is gone the run must not wait for it. Then the replica already on the
target is used instead, checked against the records of the copies made into it, and its
age is reported.

Undo removes only what this run created: containers, or the objects it added to a
container that held a replica before. A replica is precious on failover day.

A drill writes nothing: it checks the replicas already on the target, as a failover with
the source gone would use them, and reports them (its nodes would read the same data).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.adapters import source_storage
from failover.errors import FailoverError, OperationFailed
from failover.ports import SourceStorage
from failover.replicate.buckets import (
    DEFAULT_WORKERS,
    BucketResult,
    ReplicaStatus,
    Replicator,
    is_local_disk,
    quote_keys,
    replica_status,
)
from failover.state import StateStore, open_store


class SyncBucketsParams(Params):
    buckets: list[str] | None = Field(
        None, min_length=1, description="Names of the snapshot's buckets to sync (default: every bucket in the snapshot)."
    )
    workers: int = Field(DEFAULT_WORKERS, ge=1, le=64, description="Objects copied at once.")
    accept_incomplete_replica: bool = Field(
        False,
        description="With the source gone, use a replica that lacks objects the last replication copied (or holds"
        " other versions of them), listing them in the outputs, instead of failing.",
    )


@ACTIONS.register("sync-buckets")
class SyncBuckets(Action):
    """Copy each snapshot bucket into the container ``container_prefix + bucket`` from the source
    while it answers; otherwise check and use the replica already there, reporting its age."""

    summary = "Copy the snapshot's buckets to the target from the source, or use the replicas when the source is gone."
    Params = SyncBucketsParams
    example = {"buckets": ["media-assets"], "workers": 16}
    mutates = True

    def plan(self, ctx: ActionContext, params: SyncBucketsParams) -> list[Change]:
        storage = ctx.targets.storage
        changes = []
        for bucket in _buckets(ctx, params):
            container = storage.container_name(bucket.id)
            size = f"{bucket.objects} objects, {bucket.bytes} bytes"
            if ctx.drill_prefix:
                detail = f"a drill: check the replica of bucket {bucket.id} ({size}); nothing is written"
                changes.append(Change("check", "container", container, detail))
            elif storage.container_exists(bucket.id):
                detail = f"update from bucket {bucket.id} ({size}) if the source answers, else use the replica there"
                changes.append(Change("update", "container", container, detail))
            else:
                detail = f"copy bucket {bucket.id} ({size}); no replica there yet, so this needs the source"
                changes.append(Change("create", "container", container, detail))
        return changes

    def apply(self, ctx: ActionContext, params: SyncBucketsParams) -> dict[str, Any]:
        buckets = _buckets(ctx, params)
        with open_store(ctx.config) as store:
            if ctx.drill_prefix:
                ctx.info("a drill: checking the replicas on the target, writing nothing")
                return _use_replicas(ctx, params, store, buckets)
            source = _answering_source(ctx, buckets, params.workers)
            if source is not None:
                return _copy_from_source(ctx, params, source, store, [bucket.id for bucket in buckets])
            return _use_replicas(ctx, params, store, buckets)

    def undo(self, ctx: ActionContext, params: SyncBucketsParams) -> None:
        """Delete the containers this run created, and the objects it added to containers it did not."""
        storage = ctx.targets.storage
        created_buckets = sorted({item["bucket"] for item in ctx.created if item["kind"] == "container"})
        added: dict[str, list[str]] = {}
        for item in ctx.created:
            if item["kind"] == "object" and item["bucket"] not in created_buckets:
                added.setdefault(item["bucket"], []).append(item["key"])
        with open_store(ctx.config) as store:
            for bucket, keys in added.items():
                for key in keys:
                    storage.delete_object(bucket, key)
                _forget_copies(ctx, store, bucket, keys)
            for bucket in created_buckets:
                storage.delete_container(bucket)
                _forget_copies(ctx, store, bucket)


def _buckets(ctx: ActionContext, params: SyncBucketsParams) -> list[Any]:
    """The snapshot's buckets the step names (all by default); an unknown name is an error."""
    in_snapshot = {bucket.id: bucket for bucket in ctx.manifest.of_kind("bucket")}
    if params.buckets is None:
        return [in_snapshot[name] for name in sorted(in_snapshot)]
    unknown = [name for name in params.buckets if name not in in_snapshot]
    if unknown:
        known = ", ".join(sorted(in_snapshot)) or "none"
        raise OperationFailed(f"sync-buckets: no bucket {', '.join(unknown)} in the snapshot (it has: {known})")
    return [in_snapshot[name] for name in params.buckets]


def _answering_source(ctx: ActionContext, buckets: list[Any], workers: int) -> SourceStorage | None:
    """The source's storage if it answers now (asked once, briefly), else None."""
    if not buckets:
        return None
    try:
        source = source_storage(ctx.config, {bucket.id: bucket.region for bucket in buckets}, workers)
        why = source.probe(buckets[0].id)
    except FailoverError as exc:
        why = str(exc)
    if why is not None:
        ctx.info(f"the source does not answer, using the replicas on the target: {why}")
        return None
    return source


def _copy_from_source(
    ctx: ActionContext, params: SyncBucketsParams, source: SourceStorage, store: StateStore, buckets: list[str]
) -> dict[str, Any]:
    replicator = Replicator(
        source, ctx.targets.storage, store, service=ctx.service, target_name=ctx.target_name,
        workers=params.workers, local_disk=is_local_disk(ctx.targets.profile.storage), record=ctx.record,
        cancel=ctx.cancel,
    )
    result = replicator.replicate(buckets)  # never delete: a failover copies, it does not prune
    for bucket in result.buckets:
        ctx.info(f"{bucket.bucket}: copied {bucket.copied} of {bucket.objects} objects ({bucket.copied_bytes} bytes)")
    provider = ctx.config.source.provider
    return {bucket.bucket: _copied_outputs(bucket, provider) for bucket in result.buckets}


def _copied_outputs(result: BucketResult, provider: str) -> dict[str, Any]:
    return {
        "container": result.container, "objects": result.objects, "bytes": result.bytes, "copied": result.copied,
        "skipped": result.skipped, "source": provider, "replica_age_s": 0.0, "refused": sorted(result.refused),
        "incomplete": [],
    }


def _use_replicas(ctx: ActionContext, params: SyncBucketsParams, store: StateStore, buckets: list[Any]) -> dict[str, Any]:
    """Check every bucket's replica and fail naming each that is missing (or damaged, unless accepted)."""
    statuses = [
        replica_status(ctx.targets.storage, store, service=ctx.service, target_name=ctx.target_name, bucket=bucket.id)
        for bucket in buckets
    ]
    problems = [_missing(status) for status in statuses if not status.exists]
    if not params.accept_incomplete_replica:
        problems += [_damaged(status) for status in statuses if status.exists and not status.intact]
    if problems:
        raise OperationFailed("; ".join(problems))
    for status in statuses:
        age = "unknown" if status.age_s is None else f"{status.age_s:.0f}s"
        ctx.info(f"{status.bucket}: using the replica in {status.container}, {status.objects} objects, data age {age}")
    return {status.bucket: _replica_outputs(status) for status in statuses}


def _missing(status: ReplicaStatus) -> str:
    return (
        f"no replica of bucket {status.bucket} in container {status.container};"
        " run failover replicate while the source is reachable"
    )


def _damaged(status: ReplicaStatus) -> str:
    return (
        f"the replica of bucket {status.bucket} in container {status.container} lacks {len(status.missing)} and has"
        f" changed {len(status.differing)} of the objects the last replication copied"
        f" ({quote_keys(status.missing + status.differing)});"
        " set accept_incomplete_replica to use it anyway"
    )


def _replica_outputs(status: ReplicaStatus) -> dict[str, Any]:
    return {
        "container": status.container, "objects": status.objects, "bytes": status.bytes, "copied": 0,
        "skipped": status.objects, "source": "replica",
        "replica_age_s": None if status.age_s is None else round(status.age_s, 1), "refused": [],
        "incomplete": sorted(status.missing + status.differing),
    }


def _forget_copies(ctx: ActionContext, store: StateStore, bucket: str, keys: list[str] | None = None) -> None:
    """Drop the records of undone copies (all of the container's by default), so that a later
    check of the replica does not count them as missing."""
    container = ctx.targets.storage.container_name(bucket)
    if keys is None:
        keys = list(store.replica_objects(ctx.service, ctx.target_name, container))
    store.forget_replica_objects(ctx.service, ctx.target_name, container, keys)
