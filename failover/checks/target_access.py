"""``target-credentials`` and ``target-location``: the target can be used right now.

``target-credentials`` takes every capability the profile configures (compute, storage,
dns, loadbalancer), checks that its ``${env:NAME}`` secrets are set, builds its driver and makes
one read-only call (compute: the locations; storage: whether a container exists; dns: the
zones; loadbalancer: the balancers). An unreachable provider or refused credentials fail the check (``failover check``
exits 1, not 4); the message names the capability and the variable or the provider's
error, never a secret's value.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, some, unset_secrets
from failover.errors import FailoverError
from failover.naming import DUMPS_BUCKET
from failover.retry import in_context

CAPABILITIES = ("compute", "storage", "dns", "loadbalancer")
PROBE_ZONE = "failover-check.invalid."  # asked for when the snapshot has no zone: found or not, the call is the test


@CHECKS.register("target-credentials")
class TargetCredentials(Check):
    summary = "Every capability of the target profile has its secrets set and answers a read-only call."
    order = 30

    def run(self, ctx: CheckContext) -> Outcome:
        configured = [capability for capability in CAPABILITIES if ctx.targets.has(capability)]
        if not configured:
            return failed(f"the target profile {ctx.target_name} configures no compute, storage or dns")
        # At once: a provider that never answers must not hold up the others' verdicts.
        with ThreadPoolExecutor(max_workers=len(configured), thread_name_prefix="failover-probe") as pool:
            futures = [pool.submit(in_context(_probe), ctx, capability) for capability in configured]
        probes = {capability: future.result() for capability, future in zip(configured, futures, strict=True)}
        bad = [f"{capability}: {why}" for capability, (ok, why) in probes.items() if not ok]
        data = {capability: {"ok": ok, "detail": why, "driver": getattr(ctx.profile, capability).driver}
                for capability, (ok, why) in probes.items()}
        good = [f"{capability} ok" for capability, (ok, _) in probes.items() if ok]
        if bad:
            return failed("; ".join(bad + good), **data)
        return passed(", ".join(f"{capability} ok ({why})" for capability, (_, why) in probes.items()), **data)


def _probe(ctx: CheckContext, capability: str) -> tuple[bool, str]:
    """(answered, what it said or why not)."""
    unset = unset_secrets(ctx, capability)
    if unset:
        return False, "; ".join(f"environment variable {name} is not set ({where})" for where, name in unset)
    try:
        return True, PROBES[capability](ctx)
    except FailoverError as exc:
        return False, "; ".join(exc.lines())


def _compute(ctx: CheckContext) -> str:
    return plural(len(ctx.targets.compute.locations()), "location")


def _storage(ctx: CheckContext) -> str:
    buckets = [item.id for item in ctx.manifest.of_kind("bucket")] if ctx.manifest is not None else []
    bucket = buckets[0] if buckets else DUMPS_BUCKET
    storage = ctx.targets.storage
    exists = storage.container_exists(bucket)
    return f"container {storage.container_name(bucket)} {'exists' if exists else 'absent'}"


def _dns(ctx: CheckContext) -> str:
    zones = [zone.name for zone in ctx.manifest.of_kind("dns_zone")] if ctx.manifest is not None else []
    zone = zones[0] if zones else PROBE_ZONE
    found = ctx.targets.dns.find_zone(zone)
    return f"zone {zone} {'found' if found is not None else 'absent'}" if zones else "zones listed"


def _loadbalancer(ctx: CheckContext) -> str:
    return plural(len(ctx.targets.loadbalancer.list_balancers()), "load balancer") + " listed"


PROBES: dict[str, Any] = {"compute": _compute, "storage": _storage, "dns": _dns, "loadbalancer": _loadbalancer}


@CHECKS.register("target-location")
class TargetLocation(Check):
    summary = "The compute profile's location is one of the target's locations."
    order = 40

    def run(self, ctx: CheckContext) -> Outcome:
        spec = ctx.profile.compute
        if spec is None:
            return passed("no compute target in the profile: no location to check")
        locations = ctx.targets.compute.locations()
        ids = sorted(location.id for location in locations)
        if spec.location is None:
            return passed(f"no compute.location set: {spec.driver}'s default ({plural(len(ids), 'location')})",
                          location=None, known=ids)
        found = next((location for location in locations if spec.location in (location.id, location.name)), None)
        if found is None:
            return failed(f"{ctx.field('compute', 'location')}: {spec.location!r} is not a location of {spec.driver} "
                          f"(it has: {some(ids, 10) or 'none'})", location=spec.location, known=ids)
        named = f" ({found.name})" if found.name and found.name != found.id else ""
        return passed(f"{found.id}{named}, one of {plural(len(ids), 'location')} of {spec.driver}",
                      location=found.id, name=found.name, country=found.country)
