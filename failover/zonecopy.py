"""What a snapshot zone becomes on a target DNS: the record sets to write (renamed under a
drill prefix where asked), the apex SOA and NS left to the target, and Route53 aliases turned
into CNAMEs where that answers the same (or skipped, with the reason).

``copy-dns-zones`` writes these; ``replicate``'s zone mirror and the ``dns-mirror`` check
compare against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from failover.dnsnames import DEFAULT_TTL, ZoneRename, fqdn, is_alias, presentation, record_problem, same_values, unique
from failover.ports import RecordSet

ALIAS_TTL = 60  # an alias has no TTL of its own; AWS load balancers answer with 60 s


@dataclass(frozen=True)
class WantedSet:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.type}"

    def matches(self, current: RecordSet | None) -> bool:
        return current is not None and current.ttl == self.ttl and same_values(self.type, current.values, self.values)


@dataclass
class ZoneCopy:
    """What one snapshot zone becomes on the target."""

    source: str
    domain: str
    sets: dict[tuple[str, str], WantedSet] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # what cannot be carried (record_problem)
    apex_skips: frozenset[str] = frozenset()

    def add(self, name: str, type: str, ttl: int, values: list[str]) -> None:
        known = self.sets.get((name, type))
        if known is not None:  # several snapshot records of one set (weighted, latency-routed): one set here
            ttl, values = min(ttl, known.ttl), [*known.values, *values]
        self.sets[(name, type)] = WantedSet(name, type, ttl, tuple(unique(values, type)))

    def skip(self, record: Any, reason: str) -> None:
        entry = {"name": record.name, "type": record.type.upper(), "values": list(record.values)}
        self.skipped.append({**entry, "reason": reason})

    def refuse(self, name: str, type: str, reason: str) -> None:
        """A record set not written, and why: it cannot be carried, or the target refused it."""
        self.refused.append({"name": name, "type": type.upper(), "reason": reason})

    def left_out(self) -> set[tuple[str, str]]:
        """The record sets of the source not copied (skipped or refused): never extra on the target."""
        return {(fqdn(entry["name"]), entry["type"]) for entry in [*self.skipped, *self.refused]}

    def is_own(self, current: RecordSet) -> bool:
        """The target's own apex records (its SOA and NS), never reported as extra."""
        return current.name == self.domain and current.type in self.apex_skips


def zone_copy(zone: Any, rename: ZoneRename, skip_types: list[str]) -> ZoneCopy:
    apex = fqdn(zone.name)
    copy = ZoneCopy(source=apex, domain=rename.zone(apex), apex_skips=frozenset(skip_types))
    aliases = []
    for record in zone.records:
        type = record.type.upper()
        if fqdn(record.name) == apex and type in skip_types:
            continue
        problem = record_problem(record.name, type, record.values)
        if problem is not None:
            copy.refuse(rename.name(record.name, apex), type, problem)
            continue
        if is_alias(record):
            aliases.append(record)
            continue
        values = [rename.value(type, presentation(type, value), apex) for value in record.values]
        ttl = record.ttl if record.ttl is not None else DEFAULT_TTL
        copy.add(rename.name(record.name, apex), type, ttl, values)
    for record in aliases:
        _copy_alias(copy, record, rename, apex)
    return copy


def _copy_alias(copy: ZoneCopy, record: Any, rename: ZoneRename, apex: str) -> None:
    name = rename.name(record.name, apex)
    target = rename.value("CNAME", presentation("CNAME", record.values[0]), apex)
    existing = copy.sets.get((name, "CNAME"))
    if fqdn(record.name) == apex:
        copy.skip(record, "an alias at the zone apex has no portable equivalent "
                          "(cutover-dns rewrites one to a moved load balancer)")
    elif any(key[0] == name and key[1] != "CNAME" for key in copy.sets):
        copy.skip(record, "an alias beside other records of its name cannot become a CNAME")
    elif existing is not None and not same_values("CNAME", existing.values, [target]):
        copy.skip(record, f"another alias of this name points elsewhere ({existing.values[0]})")
    else:
        copy.add(name, "CNAME", ALIAS_TTL, [target])
