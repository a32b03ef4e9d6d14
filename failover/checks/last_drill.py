"""``last-drill``: a recent drill of this target succeeded within the RTO.

The newest finished drill (``failover drill``) of the service onto this target: none
warns (never proven), one older than ``readiness.max_drill_age`` warns (no longer
proves much); a failed drill, one that did not leave the target clean, or one whose
measured recovery time exceeded ``readiness.rto`` fails.
"""

from __future__ import annotations

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, warned
from failover.clock import approx_duration


@CHECKS.register("last-drill")
class LastDrill(Check):
    summary = "The newest drill of this target succeeded, cleanly, within readiness.rto and readiness.max_drill_age."
    order = 100

    def run(self, ctx: CheckContext) -> Outcome:
        readiness = ctx.readiness
        drills = ctx.store.drills(ctx.service, ctx.target_name)
        finished = [drill for drill in drills if drill.status != "running"]
        limits = {"rto_s": readiness.rto, "max_drill_age_s": readiness.max_drill_age}
        if not finished:
            running = f" ({drills[0].id} is running)" if drills else ""
            return warned(f"never drilled onto {ctx.target_name}{running}: run `failover drill`", drill=None, **limits)
        drill = finished[0]
        age = ctx.age_s(drill.ended_at or drill.started_at)
        data = {"drill": drill.id, "status": drill.status, "ended_at": drill.ended_at, "age_s": round(age, 1),
                "rto_measured_s": drill.rto_s, "clean": drill.clean, "run_id": drill.run_id, **limits}
        name = f"drill {drill.id} ({approx_duration(age)} ago)"
        if drill.status != "succeeded":
            why = f": {drill.error}" if drill.error else ""
            return failed(f"{name} {drill.status.replace('_', ' ')}{why}", **data)
        if drill.clean is False:
            return failed(f"{name} left resources on the target (not clean)", **data)
        if drill.rto_s is not None and drill.rto_s > readiness.rto:
            return failed(f"{name} took {approx_duration(drill.rto_s)} to recover, over readiness.rto "
                          f"({approx_duration(readiness.rto)})", **data)
        took = f"recovered in {approx_duration(drill.rto_s)}" if drill.rto_s is not None else "recovery time not measured"
        if age > readiness.max_drill_age:
            return warned(f"{name} succeeded ({took}), but is older than readiness.max_drill_age "
                          f"({approx_duration(readiness.max_drill_age)}): run `failover drill`", **data)
        return passed(f"{name} succeeded, {took} (rto {approx_duration(readiness.rto)})", **data)
