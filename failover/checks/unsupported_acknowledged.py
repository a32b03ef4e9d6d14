"""``unsupported-acknowledged``: every kind of resource the failover leaves behind is one the
config has accepted (``readiness.accept_unsupported``), so nobody finds out on the day."""

from __future__ import annotations

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, some


@CHECKS.register("unsupported-acknowledged")
class UnsupportedAcknowledged(Check):
    summary = "Every unsupported resource type in the snapshot is listed in readiness.accept_unsupported."
    order = 15
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        left_behind = ctx.manifest.left_behind()
        accepted = ctx.readiness.accept_unsupported
        unacknowledged = {kind: count for kind, count in left_behind.items() if kind not in accepted}
        data = {"left_behind": left_behind, "accepted": sorted(accepted), "unacknowledged": unacknowledged}
        total = sum(left_behind.values())
        if not left_behind:
            return passed("nothing tagged is left behind: every resource in the snapshot is supported", **data)
        if unacknowledged:
            listed = [f"{kind} ({count})" for kind, count in unacknowledged.items()]
            return failed(
                f"{plural(sum(unacknowledged.values()), 'resource')} of {plural(len(unacknowledged), 'type')} "
                f"would be left behind unacknowledged: {some(listed)}; move them by hand or add the types to "
                "readiness.accept_unsupported in the config", **data)
        return passed(f"{plural(total, 'resource')} left behind, every type accepted", **data)
