"""``dns-mirror`` and ``source-ttls``: DNS is ready to be served from the target.

``dns-mirror`` reads each zone ``copy-dns-zones`` would copy (the snapshot's public
zones) from the target DNS and compares it, record set by record set, with what the copy
would write (the same :func:`failover.actions.copy_dns_zones.zone_copy`; the apex SOA and
NS are the target's own). A set missing or holding other values fails; a differing TTL
only warns. It also reports the last mirror ``replicate`` recorded (``zone_mirrors``):
older than ``readiness.rpo``, or none, warns.

``source-ttls`` fails when a record set of those zones has a TTL over
``readiness.max_ttl``: resolvers would keep answering with the old address that long
after the cutover. Aliases have no TTL; the apex SOA and NS are not cut over.
"""

from __future__ import annotations

from typing import Any

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, some, summarize
from failover.clock import approx_duration
from failover.dnsnames import ZoneRename, fqdn, read_zone, same_values, selected_zones
from failover.keytext import shown
from failover.zonecopy import zone_copy

APEX_TYPES = ["SOA", "NS"]  # written by the target itself; copy-dns-zones skips them


@CHECKS.register("dns-mirror")
class DnsMirror(Check):
    summary = "The target DNS holds every record set of the snapshot's zones, mirrored within readiness.rpo."
    order = 70
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        zones = selected_zones(ctx.manifest, None)
        if not zones:
            return passed("no zones")
        if ctx.profile.dns is None:
            return ctx.no_capability("dns", f"the snapshot has {plural(len(zones), 'zone')} to serve from there")
        rows = [_zone(ctx, zone) for zone in zones]
        return summarize(rows, zones=rows, rpo_s=ctx.readiness.rpo)


def _zone(ctx: CheckContext, zone: Any) -> dict[str, Any]:
    copy = zone_copy(zone, ZoneRename(None), APEX_TYPES)
    target = read_zone(ctx.targets.dns, copy.domain)
    row: dict[str, Any] = {"zone": copy.domain, "exists": target.zone is not None, "record_sets": len(copy.sets),
                           "missing": [], "differing": [], "ttl_differing": [],
                           "not_copied": [f"{s['name']} {s['type']}" for s in copy.skipped],
                           "refused": [f"{shown(s['name'])} {s['type']} ({s['reason']})" for s in copy.refused]}
    mirror = _last_mirror(ctx, copy.domain)
    row["last_mirror"] = None if mirror is None else {"id": mirror.id, "read_at": mirror.read_at,
                                                      "finished_at": mirror.finished_at}
    age = ctx.age_s(mirror.read_at) if mirror is not None else None
    row["mirror_age_s"] = round(age, 1) if age is not None else None
    if target.zone is None:
        return {**row, "status": "fail", "detail": f"zone {copy.domain} is not on the target DNS: "
                                                   "run `failover replicate` (or a copy-dns-zones step)"}
    for wanted in copy.sets.values():
        current = target.sets.get((wanted.name, wanted.type))
        if current is None:
            row["missing"].append(wanted.label)
        elif not same_values(wanted.type, current.values, wanted.values):
            row["differing"].append(f"{wanted.label} ({', '.join(current.values)} instead of {', '.join(wanted.values)})")
        elif current.ttl != wanted.ttl:
            row["ttl_differing"].append(f"{wanted.label} (ttl {current.ttl} instead of {wanted.ttl})")
    problems = []
    if row["missing"]:
        problems.append(f"{len(row['missing'])} record set(s) missing: {some(row['missing'])}")
    if row["differing"]:
        problems.append(f"{len(row['differing'])} differing: {some(row['differing'], 3)}")
    if problems:
        return {**row, "status": "fail", "detail": f"zone {copy.domain}: {'; '.join(problems)}"}
    notes, status = [], "pass"
    if row["ttl_differing"]:
        status = "warn"
        notes.append(f"{len(row['ttl_differing'])} TTL(s) differ: {some(row['ttl_differing'], 3)}")
    if copy.refused:  # never written anywhere: the failover goes without them, and says so
        status = "warn"
        notes.append(f"{len(copy.refused)} record set(s) of the source cannot be carried: {some(row['refused'], 3)}")
    rpo = ctx.readiness.rpo
    if mirror is None:
        status = "warn"
        notes.append("no mirror recorded by `failover replicate`")
    elif age > rpo:
        status = "warn"
        notes.append(f"last mirrored {approx_duration(age)} ago, longer than readiness.rpo ({approx_duration(rpo)})")
    else:
        notes.append(f"last mirrored {approx_duration(age)} ago")
    text = f"zone {copy.domain}: {plural(len(copy.sets), 'record set')} as in the snapshot"
    return {**row, "status": status, "detail": f"{text}; {'; '.join(notes)}"}


def _last_mirror(ctx: CheckContext, domain: str) -> Any:
    for name in (domain, domain.rstrip(".")):
        mirror = ctx.store.last_zone_mirror(ctx.service, ctx.target_name, name)
        if mirror is not None:
            return mirror
    return None


@CHECKS.register("source-ttls")
class SourceTtls(Check):
    summary = "No record set to cut over has a TTL over readiness.max_ttl."
    order = 80
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        zones = selected_zones(ctx.manifest, None)
        limit = ctx.readiness.max_ttl
        if not zones:
            return passed("no zones", max_ttl=limit)
        long, checked, highest = [], 0, 0
        for zone in zones:
            apex = fqdn(zone.name)
            for record in zone.records:
                if record.ttl is None or (fqdn(record.name) == apex and record.type.upper() in APEX_TYPES):
                    continue
                checked += 1
                highest = max(highest, record.ttl)
                if record.ttl > limit:
                    long.append({"name": fqdn(record.name), "type": record.type.upper(), "ttl": record.ttl})
        data = {"max_ttl": limit, "record_sets": checked, "highest_ttl": highest, "over": long}
        if long:
            long.sort(key=lambda item: (-item["ttl"], item["name"], item["type"]))
            named = [f"{item['name']} {item['type']} ({item['ttl']}s)" for item in long]
            return failed(f"{plural(len(long), 'record set')} with a TTL over readiness.max_ttl ({limit}s): "
                          f"{some(named)}; resolvers would keep the old addresses up to {approx_duration(long[0]['ttl'])} "
                          "after the cutover", **data)
        return passed(f"{plural(checked, 'record set')} in {plural(len(zones), 'zone')}, the highest TTL {highest}s "
                      f"(max {limit}s)", **data)
