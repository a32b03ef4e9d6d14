"""``copy-dns-zones``: the snapshot's DNS zones on the target, record set for record set.

The target is listed first and only the record sets that differ are written, so a copy
that is already there costs one listing per zone and no write. Records the target has
and the snapshot does not are left alone (a source that lost its records must not
empty the copy) and reported.

A Route53 alias has no portable equivalent: below the apex it becomes a CNAME to the
alias's target (which answers the same); at the apex it is not copied and is reported
(``cutover-dns`` rewrites aliases to moved load balancers as A records).

A record set that cannot be carried (a name or value with a character that does not print,
a TXT value that is not only quoted strings) or that the target refuses is not written and
is reported in ``refused``; the zone's other sets are written all the same.

Undo deletes the zones this step created and puts back, in the zones it adopted, every
record set it replaced, as journaled before the change.

In a drill (and without a ``prefix`` of its own) the zones are copied under the drill's
prefix: the real zones are never written.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.dnsnames import (
    TargetZone,
    ZoneRename,
    check_prefix,
    read_zone,
    read_zones,
    remember_before_change,
    replaced_sets,
    restore_replaced_sets,
    selected_zones,
)
from failover.errors import Interrupted, OperationFailed
from failover.keytext import shown
from failover.ports import DnsTarget, RecordSet
from failover.zonecopy import WantedSet, ZoneCopy, zone_copy

CREATED_ZONE = "dns_zone"  # journal kind


class CopyDnsZonesParams(Params):
    zones: list[str] | None = Field(
        None, min_length=1,
        description="Names of the snapshot's zones to copy (default: every public zone; private ones only by name).",
    )
    prefix: str | None = Field(
        None,
        description="Copy each zone under this label, for a drill: with 'drill', example.com. is copied as "
        "drill.example.com. (www.example.com. as www.drill.example.com., in-zone targets renamed alike).",
    )
    skip_types: list[str] = Field(
        default_factory=lambda: ["SOA", "NS"],
        description="Record types not copied at a zone's apex, where the target writes its own "
        "(NS records delegating a subdomain are copied).",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)

    @field_validator("skip_types")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [kind.strip().upper() for kind in value]


@ACTIONS.register("copy-dns-zones")
class CopyDnsZones(Action):
    """Create the snapshot's DNS zones on the target DNS (or adopt those that exist) and make
    every record set exactly as in the snapshot, writing only the sets that differ."""

    summary = "Copy the snapshot's DNS zones and record sets to the target DNS (only what differs is written)."
    Params = CopyDnsZonesParams
    example = {"zones": ["example.com."], "skip_types": ["SOA", "NS"]}

    def plan(self, ctx: ActionContext, params: CopyDnsZonesParams) -> list[Change]:
        copies = _wanted(ctx, params)
        changes: list[Change] = []
        targets = read_zones(ctx.targets.dns, [copy.domain for copy in copies])
        for copy, target in zip(copies, targets, strict=True):
            if target.zone is None:
                changes.append(Change("create", "dns_zone", copy.domain, _copied_from(copy)))
            for wanted in copy.sets.values():
                before = target.sets.get((wanted.name, wanted.type))
                if not wanted.matches(before):
                    changes.append(_set_change(wanted, before))
            for s in copy.skipped:
                changes.append(Change("none", "record", f"{s['name']} {s['type']}", f"not copied: {s['reason']}"))
            for s in copy.refused:
                changes.append(Change("none", "record", f"{shown(s['name'])} {s['type']}", f"refused: {s['reason']}"))
        return changes

    def apply(self, ctx: ActionContext, params: CopyDnsZonesParams) -> dict[str, Any]:
        dns: DnsTarget = ctx.targets.dns
        copies = _wanted(ctx, params)
        targets = read_zones(dns, [copy.domain for copy in copies])
        return {"zones": [_copy_zone(ctx, dns, copy, target) for copy, target in zip(copies, targets, strict=True)]}

    def undo(self, ctx: ActionContext, params: CopyDnsZonesParams) -> None:
        dns: DnsTarget = ctx.targets.dns
        created = [item["id"] for item in ctx.created if item["kind"] == CREATED_ZONE]
        adopted_sets = [item for item in replaced_sets(ctx.created) if item["zone"] not in created]
        restored = restore_replaced_sets(dns, adopted_sets)
        if restored:
            ctx.info(f"restored {len(restored)} record sets in adopted zones")
        for domain in created:
            zone = dns.find_zone(domain)
            if zone is not None and dns.delete_zone(zone):
                ctx.info(f"deleted zone {domain}")


def _wanted(ctx: ActionContext, params: CopyDnsZonesParams) -> list[ZoneCopy]:
    rename = ZoneRename(params.prefix or ctx.drill_prefix)
    return [zone_copy(zone, rename, params.skip_types) for zone in selected_zones(ctx.manifest, params.zones)]


def _copy_zone(ctx: ActionContext, dns: DnsTarget, copy: ZoneCopy, target: TargetZone) -> dict[str, Any]:
    if target.zone is None:
        # Journaled before it exists: whatever happens between the request and its answer,
        # a rollback knows the run made this zone (once: an earlier attempt may have journaled it).
        if not any(item["kind"] == CREATED_ZONE and item["id"] == copy.domain for item in ctx.created):
            ctx.record(CREATED_ZONE, copy.domain, source=copy.source)
        zone = dns.create_zone(copy.domain)
        ctx.info(f"created zone {zone.domain}")
        target = read_zone(dns, zone.domain)  # with the SOA (and NS) the target wrote
    zone, current = target.zone, target.sets
    created_by_run = any(item["kind"] == CREATED_ZONE and item["id"] == zone.domain for item in ctx.created)
    changed = []
    for wanted in copy.sets.values():
        before = current.get((wanted.name, wanted.type))
        if wanted.matches(before):
            continue
        if ctx.cancel.is_set():
            raise Interrupted(f"copy-dns-zones: cancelled while copying {zone.domain}")
        if not created_by_run:  # a zone the run created is deleted whole by undo
            remember_before_change(ctx, zone, wanted.name, wanted.type, before)
        try:
            dns.set_record(zone, wanted.name, wanted.type, wanted.ttl, wanted.values)
        except OperationFailed as exc:  # this set refused (not unreachable, not throttled): the others go on
            copy.refuse(wanted.name, wanted.type, f"the target refused it: {exc}")
            ctx.info(f"record set {shown(wanted.name)} {wanted.type} refused by the target: {exc}")
            continue
        changed.append(wanted.label)
    left_out = copy.left_out()
    extra = [
        f"{rs.name} {rs.type}" for key, rs in current.items()
        if key not in copy.sets and not copy.is_own(rs) and key not in left_out
    ]
    refused_by_target = sum(1 for item in copy.refused if (item["name"], item["type"]) in copy.sets)
    return {
        "zone": zone.domain,
        "source": copy.source,
        "created": created_by_run,
        "changed": changed,
        "unchanged": len(copy.sets) - len(changed) - refused_by_target,
        "skipped": copy.skipped,
        "refused": copy.refused,
        "not_in_snapshot": sorted(extra),
    }


def _copied_from(copy: ZoneCopy) -> str:
    origin = f" (a copy of {copy.source})" if copy.source != copy.domain else ""
    return f"{len(copy.sets)} record sets{origin}"


def _set_change(wanted: WantedSet, before: RecordSet | None) -> Change:
    after = f"{', '.join(wanted.values)} (ttl {wanted.ttl})"
    if before is None:
        return Change("create", "record", wanted.label, after)
    return Change("update", "record", wanted.label, f"{', '.join(before.values)} (ttl {before.ttl}) -> {after}")
