"""DNS zones mirrored onto the target by ``failover replicate``, and how a mirror stands.

A pass over one zone:

1. reads the zone's record sets from the source now (not from the snapshot, which may be
   hours old): the snapshot says which zones, the source what they hold;
2. turns them into the record sets ``copy-dns-zones`` would write (:func:`zone_copy`, no
   prefix): the apex SOA and NS stay the target's own, a Route53 alias below the apex
   becomes a CNAME, an alias at the apex is skipped and reported;
3. creates the zone on the target if it is missing, lists it once, and writes only the
   record sets that differ, so a pass over an unchanged zone writes nothing; a set that
   cannot be carried (``failover.dnsnames.record_problem``) or that the target refuses is
   refused, reported and counted, and the others are written all the same;
4. leaves the record sets the target has and the source does not alone, unless asked to
   delete them; then refuses a mass deletion (the source listing no record set, or more
   than a tenth of the mirror's sets going) unless forced, before writing anything;
5. records the pass (``StateStore.save_zone_mirror``): the record sets the mirror was made
   to hold, in a canonical form (:func:`canonical_sets`), and their SHA-256
   (:func:`digest`). ``read_at``, when the source was read, is the mirror's age.

Reading the source goes through the source provider's ``SourceZones`` reader
(``failover.adapters.source_zones``), so this module never imports boto3.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from failover.dnsnames import TargetZone, ZoneRename, fqdn, read_zone, value_key
from failover.errors import OperationFailed
from failover.manifest import DnsZone, now_iso
from failover.ports import DnsTarget, RecordSet
from failover.replicate.buckets import MASS_DELETION_SHARE
from failover.state import StateStore, ZoneMirrorRecord, new_id
from failover.zonecopy import ZoneCopy, zone_copy

DEFAULT_SKIP_TYPES = ("SOA", "NS")  # at the apex: the target's own


# -- canonical record sets -------------------------------------------------------------------


def canonical_sets(sets: Iterable[Any]) -> list[dict[str, Any]]:
    """Record sets (anything with ``name``, ``type``, ``ttl`` and ``values``, or such dicts)
    as ``[{name, type, ttl, values}]``: names fully qualified and lowercase, types uppercase,
    values without repeats in the order of their comparison key, sorted by (name, type)."""
    out = []
    for item in sets:
        get = item.get if isinstance(item, dict) else lambda key, item=item: getattr(item, key)
        type = str(get("type")).upper()
        values: dict[str, str] = {}
        for value in get("values"):
            values.setdefault(value_key(type, value), value)
        ttl = get("ttl")
        out.append({
            "name": fqdn(get("name")), "type": type, "ttl": None if ttl is None else int(ttl),
            "values": [values[key] for key in sorted(values)],
        })
    return sorted(out, key=lambda entry: (entry["name"], entry["type"]))


def sets_json(sets: list[dict[str, Any]]) -> str:
    """The canonical sets as the one JSON text that is stored and hashed."""
    return json.dumps(sets, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(sets: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the canonical sets' JSON (:func:`sets_json`)."""
    return hashlib.sha256(sets_json(sets).encode("utf-8")).hexdigest()


def label(name: str, type: str) -> str:
    """``www.example.com. A``: how a record set is named in reports."""
    return f"{name} {type}"


# -- reading the source ----------------------------------------------------------------------


# -- one zone's pass -------------------------------------------------------------------------


class MirrorRefused(OperationFailed):
    """A mass deletion refused; nothing was written. ``refused``: the record sets kept."""

    def __init__(self, message: str, refused: int) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class ZonePass:
    """What a pass did to one zone. ``record_sets``: the sets the mirror holds (the source's,
    apex SOA and NS aside); ``extra``: the target's sets the source does not have, left alone."""

    zone: str
    read_at: str
    record_sets: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    created_zone: bool = False
    written_sets: list[str] = field(default_factory=list)
    deleted_sets: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    refused_sets: list[dict[str, Any]] = field(default_factory=list)  # {name, type, reason}: not written
    digest: str = ""


def mirror_zone(
    dns: DnsTarget,
    store: StateStore,
    zone: DnsZone,
    *,
    service: str,
    target_name: str,
    read_at: str,
    delete: bool = False,
    force: bool = False,
    skip_types: Sequence[str] = DEFAULT_SKIP_TYPES,
) -> ZonePass:
    """Make the target's copy of ``zone`` (its records as read from the source at ``read_at``)
    hold the same record sets, writing only those that differ; record the pass.

    MirrorRefused (nothing written) for a mass deletion asked without ``force``."""
    copy = zone_copy(zone, ZoneRename(None), [kind.upper() for kind in skip_types])
    wanted = canonical_sets(copy.sets.values())
    result = ZonePass(zone=copy.domain, read_at=read_at, record_sets=len(copy.sets), skipped=copy.skipped,
                      digest=digest(wanted))
    target = read_zone(dns, copy.domain)
    extra = _extra_sets(copy, target)
    result.extra = [label(*key) for key in sorted(extra)]
    refused_as_data = len(copy.refused)  # before any write: sets that were never in copy.sets
    if delete and extra and not force:
        check_deletions(copy.domain, len(extra), len(copy.sets), len(extra) + _kept(copy, target))
    if target.zone is None:
        zone_info = dns.create_zone(copy.domain)
        result.created_zone = True
        current: dict[tuple[str, str], RecordSet] = {}  # a new zone holds only its own SOA and NS
    else:
        zone_info, current = target.zone, target.sets
    for want in copy.sets.values():
        if want.matches(current.get((want.name, want.type))):
            continue
        try:
            dns.set_record(zone_info, want.name, want.type, want.ttl, want.values)
        except OperationFailed as exc:  # this set refused (not unreachable, not throttled): the others go on
            copy.refuse(want.name, want.type, f"the target refused it: {exc}")
            continue
        result.written_sets.append(want.label)
    result.refused_sets = list(copy.refused)
    if delete:
        for name, type in sorted(extra):
            dns.delete_record(zone_info, name, type)
            result.deleted_sets.append(label(name, type))
    result.written, result.deleted = len(result.written_sets), len(result.deleted_sets)
    result.unchanged = len(copy.sets) - result.written - (len(copy.refused) - refused_as_data)
    store.save_zone_mirror(ZoneMirrorRecord(
        id=new_id("zm"), service=service, target=target_name, zone=copy.domain, read_at=read_at,
        finished_at=now_iso(), record_sets=len(copy.sets), written=result.written, deleted=result.deleted,
        digest=result.digest, sets=sets_json(wanted),
    ))
    return result


def _extra_sets(copy: ZoneCopy, target: TargetZone) -> set[tuple[str, str]]:
    """The target's record sets the source does not have: not the target's own apex SOA and
    NS, and not a set the copy skipped (an apex alias, which ``cutover-dns`` may have written)
    or refused."""
    left_out = copy.left_out()
    return {
        key for key, current in target.sets.items()
        if key not in copy.sets and not copy.is_own(current) and (fqdn(key[0]), key[1]) not in left_out
    }


def _kept(copy: ZoneCopy, target: TargetZone) -> int:
    """The mirror's sets that stay: those of the source the target has already."""
    return sum(1 for key in copy.sets if key in target.sets)


def check_deletions(zone: str, deleting: int, source_sets: int, mirror_sets: int) -> None:
    """Refuse a mass deletion, as for buckets: the source listing no record set, or more than
    a tenth of the mirror's record sets going."""
    if source_sets == 0:
        raise MirrorRefused(
            f"refusing to delete all {deleting} record sets of zone {zone} on the target: the zone lists no"
            " record sets on the source (force to delete them anyway)", deleting,
        )
    if deleting > MASS_DELETION_SHARE * mirror_sets:
        raise MirrorRefused(
            f"refusing to delete {deleting} of the {mirror_sets} record sets of zone {zone} on the target, more than"
            f" {MASS_DELETION_SHARE:.0%}, gone from the zone on the source (force to delete them anyway)", deleting,
        )
