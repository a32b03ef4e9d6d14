"""DNS names, record values, target zones and replaced record sets, as the DNS actions
(``copy-dns-zones``, ``cutover-dns``) compare and write them.

Values are written in zone-file presentation (``10 mail.example.com.``, ``"v=spf1 -all"``)
and compared by a key that ignores what providers spell differently: case, a missing
trailing dot, TXT quoting and string boundaries, IPv6 zero compression.

A record set is journaled with its previous values before an action replaces it, once
per run and step (the first value is the one to restore), so that ``undo`` puts back
exactly what was there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from failover.errors import InputError, Problem
from failover.keytext import shown
from failover.ports import DnsTarget, RecordChange, RecordSet, ZoneInfo

HOSTNAME_TYPES = frozenset({"CNAME", "NS", "PTR", "DNAME", "ALIAS"})
TEXT_TYPES = frozenset({"TXT", "SPF"})
DEFAULT_TTL = 300  # for a snapshot record without a TTL of its own
MAX_CHARACTER_STRING = 255  # bytes in one TXT string
QUOTED_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)  # one "string" of a TXT value
ESCAPED_TOKEN = re.compile(r"\\\d{3}|\\.|.", re.DOTALL)  # one byte of it: \DDD, \X or a character
LABELS = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

MAX_PARALLEL_READS = 4
REPLACED_SET = "dns_record_set"  # journal kind: a record set as it was before a step replaced it


# -- names ---------------------------------------------------------------------------------


def fqdn(name: str) -> str:
    """``WWW.Example.com`` -> ``www.example.com.``"""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def in_zone(name: str, zone: str) -> bool:
    name, zone = fqdn(name), fqdn(zone)
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True)
class ZoneRename:
    """Where a snapshot zone's names go on the target: the same names, or (for a drill)
    under ``prefix``: ``example.com.`` -> ``drill.example.com.``, ``www.example.com.`` ->
    ``www.drill.example.com.``. Names outside the zone keep their name."""

    prefix: str | None = None

    def zone(self, zone: str) -> str:
        return f"{self.prefix}.{fqdn(zone)}" if self.prefix else fqdn(zone)

    def name(self, name: str, zone: str) -> str:
        name, zone = fqdn(name), fqdn(zone)
        if not self.prefix or not in_zone(name, zone):
            return name
        return name[: len(name) - len(zone)] + self.zone(zone)

    def value(self, type: str, value: str, zone: str) -> str:
        """A presented value with the host it names renamed when that host is in the zone."""
        if not self.prefix:
            return value
        if type in HOSTNAME_TYPES:
            return self.name(value, zone)
        if type in ("MX", "SRV"):
            *fields, host = value.split(" ")
            return " ".join([*fields, self.name(host, zone)])
        return value


def check_prefix(value: str | None) -> str | None:
    """A drill prefix: one or more DNS labels, like ``drill`` or ``drill.eu``."""
    if value is None:
        return None
    value = value.strip().strip(".").lower()
    if not LABELS.match(value):
        raise ValueError("must be DNS labels (letters, digits, dashes) separated by dots, like 'drill'")
    return value


# -- values --------------------------------------------------------------------------------


def presentation(type: str, value: str) -> str:
    """A value as a zone file writes it: hosts absolute, TXT quoted, addresses canonical."""
    type, value = type.upper(), value.strip()
    if not value:
        return value
    if type in ("A", "AAAA"):
        return canonical_ip(value) or value
    if type in HOSTNAME_TYPES:
        return absolute_host(value)
    if type in ("MX", "SRV"):
        *fields, host = value.split()
        return " ".join([*fields, absolute_host(host)])
    if type in TEXT_TYPES:
        return quoted_strings(character_strings(value))
    if type == "CAA":
        return _caa(value)
    return " ".join(value.split())


def value_key(type: str, value: str) -> str:
    """What two spellings of one value share: compare these, never the raw text."""
    type = type.upper()
    if type in TEXT_TYPES:
        return "".join(character_strings(value))  # string boundaries do not change the meaning
    return presentation(type, value).lower()


def same_values(type: str, left: Iterable[str], right: Iterable[str]) -> bool:
    return {value_key(type, v) for v in left} == {value_key(type, v) for v in right}


def unique(values: Iterable[str], type: str) -> list[str]:
    """``values`` without repeats (by key), in their order."""
    seen: set[str] = set()
    out = []
    for value in values:
        key = value_key(type, value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def canonical_ip(value: str) -> str | None:
    """``2001:DB8:0::1`` -> ``2001:db8::1``; None when ``value`` is not an address (an alias's host)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def absolute_host(host: str) -> str:
    host = host.strip().lower()
    return host if host.endswith(".") else host + "."


def character_strings(value: str) -> list[str]:
    """The strings of a TXT value, their escapes kept as written: ``"a b" "c"`` -> ``["a b", "c"]``.
    A value that is not quoted (as some providers list it) is one string."""
    value = value.strip()
    if not value.startswith('"'):
        return [_escape(value)]
    return [match.group(1) for match in QUOTED_STRING.finditer(value)]


def quoted_strings(strings: Sequence[str]) -> str:
    """``["a b", "c"]`` -> ``"a b" "c"``, a string longer than 255 bytes cut in several."""
    return " ".join(f'"{chunk}"' for text in strings for chunk in _chunks(text))


def _chunks(text: str) -> list[str]:
    """Cut an escaped string at 255 bytes, never inside an escape (``\\DDD`` or ``\\X`` is one byte)."""
    chunks, current, size = [], "", 0
    for token in ESCAPED_TOKEN.findall(text):
        length = 1 if token.startswith("\\") else len(token.encode("utf-8"))
        if size + length > MAX_CHARACTER_STRING:
            chunks.append(current)
            current, size = "", 0
        current += token
        size += length
    return [*chunks, current]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _caa(value: str) -> str:
    flags, tag, rest = (value.split(None, 2) + ["", "", ""])[:3]
    return f'{flags} {tag.lower()} {quoted_strings(["".join(character_strings(rest))])}'


# -- what cannot be carried ------------------------------------------------------------------

TEXT_VALUE = re.compile(r'\s*"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*\s*', re.DOTALL)  # "a" "b c"


def record_problem(name: str, type: str, values: Iterable[str]) -> str | None:
    """Why a source's record set cannot be carried as it is, or None: a name or value with a
    character that does not print (a zone file would split its line there; a terminal obeys
    it), or a TXT value that is not only quoted strings (``"unterminated``, ``"x" ; rm -rf /``),
    which failover would otherwise have to rewrite. Such a set is refused and reported,
    never rewritten."""
    bad = next((char for char in name if not char.isprintable() or char.isspace()), None)
    if bad is not None:
        return f"a character that does not belong in a name ({shown(bad)})"
    for value in values:
        bad = next((char for char in value if not char.isprintable() and char != "\t"), None)  # tabs separate fields
        if bad is not None:
            return f"a character that does not print in a value ({shown(bad)})"
        if type.upper() in TEXT_TYPES and value.strip().startswith('"') and not TEXT_VALUE.fullmatch(value):
            return f"a text value that is not only quoted strings: {shown(value)}"
    return None


# -- the snapshot's zones ------------------------------------------------------------------


def selected_zones(manifest: Any, names: Sequence[str] | None) -> list[Any]:
    """The snapshot's ``dns_zone`` resources named in ``names``; by default every public
    zone (a private zone's names stay private unless it is asked for by name)."""
    zones = manifest.of_kind("dns_zone") if manifest is not None else []
    if names is None:
        return [zone for zone in zones if not zone.private]
    by_name = {fqdn(zone.name): zone for zone in zones}
    unknown = [name for name in names if fqdn(name) not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise InputError([
            Problem(file="snapshot", field="with.zones",
                    message=f"{fqdn(name)} is not a zone of the snapshot (zones: {known})")
            for name in unknown
        ])
    return [by_name[fqdn(name)] for name in dict.fromkeys(names)]


def is_alias(record: Any) -> bool:
    """A Route53 alias: an A or AAAA record whose value is a host name (the alias's target)."""
    return record.type.upper() in ("A", "AAAA") and any(canonical_ip(v) is None for v in record.values)


def alias_host(value: str) -> str:
    """The host an alias or CNAME names, for matching: ``dualstack.`` is how Route53 aliases
    an ALB that also answers over IPv6; it is the same load balancer."""
    return fqdn(value).removeprefix("dualstack.")


# -- the target's zones -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetZone:
    """A zone as the target has it now (``zone`` None: not there) and its record sets."""

    zone: ZoneInfo | None
    sets: dict[tuple[str, str], RecordSet]


def read_zone(dns: DnsTarget, domain: str) -> TargetZone:
    zone = dns.find_zone(domain)
    return TargetZone(zone, {} if zone is None else {(rs.name, rs.type): rs for rs in dns.list_records(zone)})


def read_zones(dns: DnsTarget, domains: Sequence[str]) -> list[TargetZone]:
    """Every zone read at once. Only reads go in parallel: some backends lock a whole
    database while one zone is written (PowerDNS over SQLite answers 500), so the
    actions write one record set at a time."""
    if len(domains) <= 1:
        return [read_zone(dns, domain) for domain in domains]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(domains)), thread_name_prefix="dns-read") as pool:
        return list(pool.map(lambda domain: read_zone(dns, domain), domains))


# -- replaced record sets ------------------------------------------------------------------


def set_id(zone: str, name: str, type: str) -> str:
    return f"{zone} {name} {type}"


def remember_before_change(ctx: Any, zone: ZoneInfo, name: str, type: str, current: RecordSet | None) -> None:
    """Journal the set as it is now, unless an earlier attempt of this step journaled it
    already: that first value is what ``undo`` restores."""
    journal_id = set_id(zone.domain, name, type)
    if any(item["kind"] == REPLACED_SET and item["id"] == journal_id for item in ctx.created):
        return
    before = None if current is None else {"ttl": current.ttl, "values": list(current.values)}
    ctx.record(REPLACED_SET, journal_id, zone=zone.domain, name=name, type=type, before=before)


def replaced_sets(created: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in created if item["kind"] == REPLACED_SET]


def restore_replaced_sets(dns: DnsTarget, items: Iterable[dict[str, Any]]) -> list[str]:
    """Put every journaled set back as it was (deleting the sets that did not exist);
    returns ``name TYPE`` of those written. Sets already as they were are left alone."""
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_zone.setdefault(item["zone"], []).append(item)
    restored = []
    for domain, zone_items in by_zone.items():
        target = read_zone(dns, domain)
        if target.zone is None:
            continue  # the zone is gone, and its records with it
        # Deletions first: a CNAME can only come back once the set that replaced it is gone.
        changes = [change for item in sorted(zone_items, key=lambda i: i["before"] is not None)
                   if (change := _restoring(item, target.sets.get((item["name"], item["type"])))) is not None]
        set_records = getattr(dns, "set_records", None)
        if set_records is not None and changes:
            set_records(target.zone, changes)  # a request per batch of sets, not per set
        for change in changes:
            if set_records is None:
                if change.values:
                    dns.set_record(target.zone, change.name, change.type, change.ttl, change.values)
                elif not dns.delete_record(target.zone, change.name, change.type):
                    continue
            restored.append(f"{change.name} {change.type}")
    return restored


def _restoring(item: dict[str, Any], current: RecordSet | None) -> RecordChange | None:
    """The write that puts the journaled set back, or None when it is as it was."""
    before, name, type = item["before"], item["name"], item["type"]
    if before is None:
        return RecordChange(name, type, DEFAULT_TTL) if current is not None else None
    ttl = before["ttl"] if before["ttl"] is not None else DEFAULT_TTL
    if current is not None and current.ttl == ttl and same_values(type, current.values, before["values"]):
        return None
    return RecordChange(name, type, ttl, tuple(before["values"]))
