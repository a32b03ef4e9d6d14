"""A DNS target over any libcloud ``DNSDriver``, in whole record sets.

libcloud models one record per value; failover moves record sets (name, type, ttl,
values), so writing a set means updating, creating and deleting single records until
the set is exactly what was asked. Names leave this module fully qualified with the
trailing dot, whatever the driver's own spelling (relative, ``@``, ``None`` for the apex).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any
from xml.etree import ElementTree

from libcloud.dns.base import Zone
from libcloud.dns.drivers.route53 import API_ROOT, NAMESPACE
from libcloud.dns.drivers.route53 import API_VERSION as ROUTE53_API_VERSION
from libcloud.dns.types import ZoneDoesNotExistError
from libcloud.utils.xml import findtext

from failover.config import DEFAULT_FILE, DnsSpec
from failover.errors import FailoverError, OperationFailed, TransientError
from failover.ports import RecordChange, RecordSet, ZoneInfo
from failover.retry import retry_requests
from providers.libcloud.drivers import ADAPTERS, DriverSession, retried

# Types whose first word libcloud drivers keep apart, in ``extra["priority"]``.
PRIORITY_TYPES = frozenset({"MX", "SRV"})
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def connect_dns(spec: DnsSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> LibcloudDns:
    """The DNS target of a profile (shared by every caller in this process)."""
    return ADAPTERS.get("dns", spec, file, field, lambda: LibcloudDns(spec, file=file, field=field))


class LibcloudDns:
    """Zones and record sets on any libcloud DNS driver."""

    def __init__(self, spec: DnsSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> None:
        self.spec = spec
        self.session = DriverSession("dns", spec, file=file, field=field)

    @property
    def dialect(self) -> LibcloudRecords:
        return dialect_for(self.session.driver)

    # -- zones ---------------------------------------------------------------------------

    @retried
    def list_zones(self) -> list[ZoneInfo]:
        with self.session.translating("list zones"):
            return [zone_info(zone) for zone in self.dialect.zones(self.session.driver)]

    @retried
    def find_zone(self, domain: str) -> ZoneInfo | None:
        wanted = fqdn(domain)
        with self.session.translating(f"find zone {wanted}"):
            zones = self.dialect.zones(self.session.driver)
        return next((zone_info(zone) for zone in zones if fqdn(zone.domain) == wanted), None)

    def create_zone(self, domain: str, ttl: int | None = None) -> ZoneInfo:
        wanted = fqdn(domain)
        if self.dialect.allows_duplicate_zones and self.find_zone(wanted) is not None:
            raise OperationFailed(f"zone {wanted} exists already", where=self.session.where)
        retry_requests(lambda: self._create_zone(wanted, ttl))
        # Read back rather than trust the answer (PowerDNS's carries a doubled trailing dot).
        created = self.find_zone(wanted)
        if created is None:
            raise OperationFailed(f"zone {wanted} was created but is not listed", where=self.session.where)
        return created

    def _create_zone(self, wanted: str, ttl: int | None) -> None:
        """One attempt. A zone there after a temporary failure is this request's own, executed
        but its answer lost (the caller found none before asking): not an error. After any
        other failure, it is someone else's."""
        try:
            with self.session.translating(f"create zone {wanted}"):
                driver, dialect = self.session.driver, self.dialect
                extra = dialect.zone_extra(self.spec.nameservers)
                driver.create_zone(dialect.zone_domain(wanted), ttl=ttl, extra=extra)
        except FailoverError as exc:
            if self.find_zone(wanted) is None:
                raise
            if not isinstance(exc, TransientError):
                raise OperationFailed(f"zone {wanted} exists already", where=self.session.where) from None

    @retried
    def delete_zone(self, zone: ZoneInfo) -> bool:
        if self.find_zone(zone.domain) is None:
            return False
        records = self._records(zone) if self.dialect.lists_before_zone_delete else []
        with self.session.translating(f"delete zone {zone.domain}"):
            try:
                self.dialect.delete_zone(self.session.driver, self._native_zone(zone), records)
            except ZoneDoesNotExistError:
                return False
        # Some drivers (PowerDNS) answer a failed delete with False rather than an error.
        if self.find_zone(zone.domain) is not None:
            raise OperationFailed(f"zone {zone.domain} is still there after deleting it", where=self.session.where)
        return True

    # -- record sets ---------------------------------------------------------------------

    def list_records(self, zone: ZoneInfo) -> list[RecordSet]:
        sets: dict[tuple[str, str], RecordSet] = {}
        for record in self._records(zone):
            name, kind = self.dialect.name_of(record, zone.domain), str(record.type)
            current = sets.get((name, kind))
            values = (current.values if current else ()) + (presentation(record),)
            ttl = current.ttl if current and current.ttl is not None else _ttl(record, zone)
            sets[(name, kind)] = RecordSet(name=name, type=kind, ttl=ttl, values=values)
        return list(sets.values())

    @retried
    def set_record(self, zone: ZoneInfo, name: str, type: str, ttl: int, values: Sequence[str]) -> RecordSet:
        name, type, values = absolute_name(name, zone.domain), type.upper(), list(values)
        relative_name(name, zone.domain)  # refuses a name outside the zone, before any call
        if not values:
            raise OperationFailed(f"record set {name} {type} needs at least one value (delete it instead)")
        existing = self._records_of(zone, name, type) if self.dialect.replaces_by_diff else []
        with self.session.translating(f"set {name} {type}"):
            self.dialect.replace(self.session.driver, self._native_zone(zone), name, type, ttl, values, existing)
        return RecordSet(name=name, type=type, ttl=ttl, values=tuple(values))

    def set_records(self, zone: ZoneInfo, changes: Sequence[RecordChange]) -> None:
        """Write ``changes`` in order (a set's values, or none: delete it): PowerDNS in one PATCH
        of the zone per ``WRITE_BATCH`` sets, Route53 in one change batch per ``WRITE_BATCH``
        (each applied whole by the provider); other drivers a set at a time. A batch is retried
        whole: what it says is the end state, so writing it again is harmless."""
        wanted = []
        for change in changes:
            name = absolute_name(change.name, zone.domain)
            relative_name(name, zone.domain)  # refuses a name outside the zone, before any call
            wanted.append(RecordChange(name=name, type=change.type.upper(), ttl=change.ttl, values=tuple(change.values)))
        if not self.dialect.writes_in_batches:
            for change in wanted:
                if change.values:
                    self.set_record(zone, change.name, change.type, change.ttl, change.values)
                else:
                    self.delete_record(zone, change.name, change.type)
            return
        for start in range(0, len(wanted), WRITE_BATCH):
            self._write_batch(zone, wanted[start:start + WRITE_BATCH])

    @retried
    def _write_batch(self, zone: ZoneInfo, changes: list[RecordChange]) -> None:
        native = self._native_zone(zone)
        # Read at each attempt: an earlier attempt may have been applied before its answer was lost.
        existing = self._records(zone) if self.dialect.replaces_by_diff else []
        with self.session.translating(f"write {len(changes)} record set(s) of {zone.domain}"):
            self.dialect.write_batch(self.session.driver, native, changes, existing)

    @retried
    def delete_record(self, zone: ZoneInfo, name: str, type: str) -> bool:
        name, type = absolute_name(name, zone.domain), type.upper()
        existing = self._records_of(zone, name, type)
        if not existing:
            return False
        with self.session.translating(f"delete {name} {type}"):
            self.dialect.delete(self.session.driver, self._native_zone(zone), name, type, existing)
        return True

    @retried
    def _records(self, zone: ZoneInfo) -> list[Any]:
        with self.session.translating(f"list records of {zone.domain}"):
            return self.dialect.records(self.session.driver, self._native_zone(zone))

    def _records_of(self, zone: ZoneInfo, name: str, type: str) -> list[Any]:
        dialect = self.dialect
        return [r for r in self._records(zone) if dialect.name_of(r, zone.domain) == name and str(r.type) == type]

    def _native_zone(self, zone: ZoneInfo) -> Any:
        driver = self.session.driver
        domain = self.dialect.zone_domain(zone.domain)
        return Zone(id=zone.id, domain=domain, type="master", ttl=zone.ttl, driver=driver)


class LibcloudRecords:
    """libcloud's documented conventions: zones without the trailing dot, record names
    relative to the zone ("" for the apex), one record per value."""

    apex = ""
    replaces_by_diff = True  # replace() needs the set's current records (one zone listing per write)
    lists_before_zone_delete = False  # delete_zone() needs the zone's records
    allows_duplicate_zones = False  # the provider would create a second zone of the same name
    writes_in_batches = False  # write_batch() writes many sets in one request (set_records)

    def zone_domain(self, domain: str) -> str:
        return domain.rstrip(".")

    def zones(self, driver: Any) -> list[Any]:
        """Every zone (the drivers that page their listings follow the pages themselves)."""
        return list(driver.list_zones())

    def records(self, driver: Any, zone: Any) -> list[Any]:
        """Every record of ``zone``."""
        return list(driver.list_records(zone))

    def name_of(self, record: Any, zone_domain: str) -> str:
        """A listed record's name, fully qualified."""
        return absolute_name(record.name, zone_domain)

    def zone_extra(self, nameservers: list[str]) -> dict[str, Any] | None:
        return None

    def native_name(self, name: str, zone_domain: str) -> str:
        return relative_name(name, zone_domain) or self.apex

    def replace(
        self, driver: Any, zone: Any, name: str, type: str, ttl: int, values: list[str], existing: list[Any]
    ) -> None:
        unchanged = [r for r in existing if presentation(r) in values and r.ttl == ttl]
        stale = [r for r in existing if r not in unchanged]
        missing = [v for v in values if v not in {presentation(r) for r in unchanged}]
        native = self.native_name(name, zone.domain)
        # Update in place first, so the name never goes without an answer midway.
        for record, value in zip(stale, missing, strict=False):  # as many as both have
            data, extra = _split_priority(type, value)
            driver.update_record(record, native, type, data, {**extra, "ttl": ttl})
        for value in missing[len(stale):]:
            data, extra = _split_priority(type, value)
            driver.create_record(native, zone, type, data, {**extra, "ttl": ttl})
        for record in stale[len(missing):]:
            driver.delete_record(record)

    def delete(self, driver: Any, zone: Any, name: str, type: str, existing: list[Any]) -> None:
        for record in existing:
            driver.delete_record(record)

    def delete_zone(self, driver: Any, zone: Any, records: list[Any]) -> None:
        """``records``: the zone's records, read just before, for providers that delete only an empty zone."""
        driver.delete_zone(zone)


class DigitalOceanRecords(LibcloudRecords):
    """DigitalOcean's driver passes names through to an API that calls the apex "@"."""

    apex = "@"


class PowerDnsRecords(LibcloudRecords):
    """PowerDNS speaks in whole record sets (rrsets) and absolute names, which libcloud's
    driver can only write one value at a time: a set goes in one PATCH of the zone."""

    replaces_by_diff = False

    def zone_domain(self, domain: str) -> str:
        return domain

    def zone_extra(self, nameservers: list[str]) -> dict[str, Any]:
        return {"nameservers": list(nameservers)}  # required by the API (may be empty): the apex NS records

    def native_name(self, name: str, zone_domain: str) -> str:
        return name

    def replace(
        self, driver: Any, zone: Any, name: str, type: str, ttl: int, values: list[str], existing: list[Any]
    ) -> None:
        records = [{"content": value, "disabled": False} for value in values]
        self._patch(driver, zone, {"name": name, "type": type, "ttl": ttl, "changetype": "REPLACE", "records": records})

    def delete(self, driver: Any, zone: Any, name: str, type: str, existing: list[Any]) -> None:
        self._patch(driver, zone, {"name": name, "type": type, "changetype": "DELETE"})

    writes_in_batches = True

    def write_batch(self, driver: Any, zone: Any, changes: list[RecordChange], existing: list[Any]) -> None:
        """One PATCH of the zone: PowerDNS applies its rrsets in one transaction."""
        self._patch(driver, zone, *(
            {"name": c.name, "type": c.type, "ttl": c.ttl, "changetype": "REPLACE",
             "records": [{"content": value, "disabled": False} for value in c.values]}
            if c.values else {"name": c.name, "type": c.type, "changetype": "DELETE"}
            for c in changes
        ))

    @staticmethod
    def _patch(driver: Any, zone: Any, *rrsets: dict[str, Any]) -> None:
        action = f"{driver.api_root}/servers/{driver.ex_server}/zones/{zone.id}"
        driver.connection.request(action=action, data=json.dumps({"rrsets": list(rrsets)}), method="PATCH")


class Route53Records(LibcloudRecords):
    """Route53 keeps record sets whole: libcloud's driver writes one value per change (a
    second value of a name is refused, or on moto stored as a second set), so a set is
    written by one change batch, applied atomically: ``UPSERT`` where the connection speaks
    an API version that has it (2013-04-01 on), else ``DELETE`` of the current set (its
    values and TTL, as the API asks) and ``CREATE`` of the new one (libcloud's driver speaks
    2012-02-29). The zone keeps its trailing dot: the driver cuts record names by the zone
    name's length."""

    replaces_by_diff = True  # the current set is named in the DELETE
    lists_before_zone_delete = True
    allows_duplicate_zones = True  # hosted zones are told apart by id (and CallerReference), not by name

    def zone_domain(self, domain: str) -> str:
        return fqdn(domain)

    def zones(self, driver: Any) -> list[Any]:
        """Every hosted zone, page after page. libcloud's driver asks for the next page by
        ``NextRecordName``, which ListHostedZones does not answer (it answers ``NextMarker``):
        past 100 zones it asked for the first page again, for ever."""
        zones = []
        for answer in _route53_pages(driver, f"{API_ROOT}hostedzone", {"NextMarker": "marker"}):
            zones += driver._to_zones(answer)
        return zones

    def records(self, driver: Any, zone: Any) -> list[Any]:
        """Every record of the zone, page after page, each set once. libcloud's driver asks for
        the next page by name alone, so a name whose sets straddle two pages came twice (its
        sets of types before the page's end listed again): values doubled in their sets."""
        driver.connection.set_context({"zone_id": zone.id})
        follow = {"NextRecordName": "name", "NextRecordType": "type", "NextRecordIdentifier": "identifier"}
        records = []
        for answer in _route53_pages(driver, f"{API_ROOT}hostedzone/{zone.id}/rrset", follow):
            records += driver._to_records(data=answer, zone=zone)
        return records

    def name_of(self, record: Any, zone_domain: str) -> str:
        # Route53 lists a wildcard's "*" (and other characters outside a-z0-9-_.) as an octal escape: "\052".
        return absolute_name(_OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), record.name or ""), zone_domain)

    def native_name(self, name: str, zone_domain: str) -> str:
        return name

    def replace(
        self, driver: Any, zone: Any, name: str, type: str, ttl: int, values: list[str], existing: list[Any]
    ) -> None:
        if existing and _holds(existing, ttl, values):
            return  # as wanted already
        if existing and _api_version(driver) >= ROUTE53_UPSERT_SINCE:
            self._change(driver, zone, [("UPSERT", name, type, ttl, values)])
            return
        current = [("DELETE", name, type, existing[0].ttl, [presentation(r) for r in existing])] if existing else []
        self._change(driver, zone, [*current, ("CREATE", name, type, ttl, values)])

    def delete(self, driver: Any, zone: Any, name: str, type: str, existing: list[Any]) -> None:
        self._change(driver, zone, [("DELETE", name, type, existing[0].ttl, [presentation(r) for r in existing])])

    writes_in_batches = True

    def write_batch(self, driver: Any, zone: Any, changes: list[RecordChange], existing: list[Any]) -> None:
        """One change batch (Route53 applies it whole, in order), made against the zone's
        records as they are now: a set already gone is not deleted again."""
        current: dict[tuple[str, str], list[Any]] = {}
        for record in existing:
            current.setdefault((self.name_of(record, zone.domain), str(record.type)), []).append(record)
        upsert = _api_version(driver) >= ROUTE53_UPSERT_SINCE
        batch: list[tuple[str, str, str, int | None, list[str]]] = []
        for change in changes:
            there = current.pop((change.name, change.type), [])
            if there and _holds(there, change.ttl, change.values):
                continue  # as wanted already (a batch sent again): Route53 refuses to replace a set by itself
            if there and (not change.values or not upsert):
                batch.append(("DELETE", change.name, change.type, there[0].ttl, [presentation(r) for r in there]))
            if change.values:
                batch.append(("UPSERT" if there and upsert else "CREATE", change.name, change.type, change.ttl,
                              list(change.values)))
        if batch:
            self._change(driver, zone, batch)

    def delete_zone(self, driver: Any, zone: Any, records: list[Any]) -> None:
        """Route53 deletes only an empty zone: every set but the apex SOA and NS goes first, in one change."""
        apex = fqdn(zone.domain)
        sets: dict[tuple[str, str], list[Any]] = {}
        for record in records:
            name = self.name_of(record, zone.domain)
            if not (name == apex and str(record.type) in ("SOA", "NS")):
                sets.setdefault((name, str(record.type)), []).append(record)
        changes = [("DELETE", name, type, rs[0].ttl, [presentation(r) for r in rs]) for (name, type), rs in sets.items()]
        if changes:
            self._change(driver, zone, changes)
        driver.delete_zone(zone)

    @staticmethod
    def _change(driver: Any, zone: Any, changes: list[tuple[str, str, str, int | None, list[str]]]) -> None:
        request = ElementTree.Element("ChangeResourceRecordSetsRequest", {"xmlns": NAMESPACE})
        batch = ElementTree.SubElement(ElementTree.SubElement(request, "ChangeBatch"), "Changes")
        for action, name, type, ttl, values in changes:
            change = ElementTree.SubElement(batch, "Change")
            ElementTree.SubElement(change, "Action").text = action
            rrset = ElementTree.SubElement(change, "ResourceRecordSet")
            ElementTree.SubElement(rrset, "Name").text = name
            ElementTree.SubElement(rrset, "Type").text = type
            ElementTree.SubElement(rrset, "TTL").text = str(ttl if ttl is not None else 300)
            records = ElementTree.SubElement(rrset, "ResourceRecords")
            for value in values:
                ElementTree.SubElement(ElementTree.SubElement(records, "ResourceRecord"), "Value").text = value
        driver.connection.set_context({"zone_id": zone.id})
        driver.connection.request(f"{API_ROOT}hostedzone/{zone.id}/rrset", method="POST",
                                  data=ElementTree.tostring(request))


WRITE_BATCH = 100  # record sets per PowerDNS PATCH or Route53 change batch (Route53 takes up to 1,000 changes)
ROUTE53_UPSERT_SINCE = "2013-04-01"  # the Route53 API version that brought the UPSERT action
# A bound on one Route53 listing: a service handing out markers forever is an error, not a hang.
ROUTE53_MAX_PAGES = 10_000


def _holds(records: list[Any], ttl: int | None, values: Sequence[str]) -> bool:
    """The records are the set of exactly ``values`` at ``ttl``."""
    return all(r.ttl == ttl for r in records) and sorted(presentation(r) for r in records) == sorted(values)


def _route53_pages(driver: Any, path: str, follow: dict[str, str]) -> Iterator[Any]:
    """Each answer of a Route53 listing while ``IsTruncated``; ``follow`` maps the answer's
    elements naming the next page to the query parameters that ask for it."""
    params: dict[str, str] = {}
    for _ in range(ROUTE53_MAX_PAGES):
        answer = driver.connection.request(path, params=params).object
        yield answer
        if findtext(element=answer, xpath="IsTruncated", namespace=NAMESPACE) != "true":
            return
        following = {parameter: findtext(element=answer, xpath=element, namespace=NAMESPACE)
                     for element, parameter in follow.items()}
        following = {parameter: value for parameter, value in following.items() if value}
        if not following or following == params:
            raise OperationFailed(f"Route53 said {path} goes on but named no next page")
        params = following
    raise OperationFailed(f"Route53 still had more of {path} after {ROUTE53_MAX_PAGES} pages")


def _api_version(driver: Any) -> str:
    return str(getattr(driver.connection, "version", None) or ROUTE53_API_VERSION)


# libcloud provider name -> how its driver wants names and record sets
DIALECTS: dict[str, type[LibcloudRecords]] = {
    "powerdns": PowerDnsRecords, "digitalocean": DigitalOceanRecords, "route53": Route53Records,
}


def dialect_for(driver: Any) -> LibcloudRecords:
    return DIALECTS.get(str(getattr(driver, "type", "")), LibcloudRecords)()


def zone_info(zone: Any) -> ZoneInfo:
    return ZoneInfo(id=str(zone.id), domain=fqdn(zone.domain), ttl=zone.ttl)


def fqdn(domain: str) -> str:
    return domain.lower().rstrip(".") + "."


def absolute_name(name: str | None, zone_domain: str) -> str:
    """A record name as a driver spells it (relative, absolute, ``@``, empty) -> ``www.example.com.``"""
    zone = fqdn(zone_domain)
    if not name or name == "@":
        return zone
    name = name.lower()
    if name.endswith("."):
        return name
    bare_zone = zone.rstrip(".")
    if name == bare_zone or name.endswith(f".{bare_zone}"):
        return f"{name}."
    return f"{name}.{zone}"


def relative_name(name: str, zone_domain: str) -> str:
    zone = fqdn(zone_domain)
    if name == zone:
        return ""
    if not name.endswith(f".{zone}"):
        raise OperationFailed(f"{name} is not a name in zone {zone}")
    return name[: -len(zone) - 1]


def presentation(record: Any) -> str:
    """A record's value as a zone file writes it: MX and SRV with their priority in front."""
    extra = record.extra or {}
    priority = extra.get("priority")
    data = str(record.data)
    if str(record.type) in PRIORITY_TYPES and priority is not None and not data.split(" ", 1)[0].isdigit():
        if str(record.type) == "SRV" and extra.get("weight") is not None and extra.get("port") is not None:
            return f"{priority} {extra['weight']} {extra['port']} {data}"  # Route53 and DigitalOcean split all three
        return f"{priority} {data}"
    return data


def _split_priority(type: str, value: str) -> tuple[str, dict[str, Any]]:
    first, _, rest = value.partition(" ")
    if type in PRIORITY_TYPES and first.isdigit() and rest:
        return rest, {"priority": int(first)}
    return value, {}


def _ttl(record: Any, zone: ZoneInfo) -> int | None:
    return int(record.ttl) if record.ttl is not None else zone.ttl
