"""``snapshot-age``: the snapshot a failover would work from is recent enough."""

from __future__ import annotations

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed
from failover.clock import approx_duration


@CHECKS.register("snapshot-age")
class SnapshotAge(Check):
    summary = "The snapshot is younger than readiness.max_snapshot_age."
    order = 10

    def run(self, ctx: CheckContext) -> Outcome:
        limit = ctx.readiness.max_snapshot_age
        if ctx.snapshot is None:
            return failed(f"no snapshot of {ctx.service} in the state store: run `failover inventory`",
                          max_age_s=limit)
        age = ctx.age_s(ctx.snapshot.taken_at)
        data = {"snapshot": ctx.snapshot.id, "taken_at": ctx.snapshot.taken_at, "age_s": round(age, 1),
                "max_age_s": limit, "counts": ctx.snapshot.counts}
        newest = ctx.store.snapshots(ctx.service)[-1]
        if newest.id != ctx.snapshot.id:
            data["newest"] = newest.id
        text = f"snapshot {ctx.snapshot.id} taken {approx_duration(age)} ago"
        if age > limit:
            return failed(f"{text}, older than readiness.max_snapshot_age ({approx_duration(limit)}): "
                          "run `failover inventory`", **data)
        return passed(f"{text} (max {approx_duration(limit)})", **data)
