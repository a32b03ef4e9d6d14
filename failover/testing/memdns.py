"""A libcloud DNS driver whose zones and records live in a JSON file (test and demo support).

It stands in for a DNS provider where none can run (``failover demo`` on a fresh ``pip
install``): a real :class:`libcloud.dns.base.DNSDriver`, following libcloud's documented
conventions (zone domains without the trailing dot, record names relative to the zone,
``""`` for the apex, one record per value, MX and SRV priorities in ``extra["priority"]``,
the TTL in ``extra["ttl"]``). Like a provider, a new zone gets its own SOA and NS records.

A target profile names it with the file to keep::

    dns: {driver: "failover.testing.memdns:FileDNSDriver", options: {path: /tmp/dns.json}}

Every call reads the file and every change rewrites it whole (atomically, under a lock
shared by the drivers of one process), so a driver per thread, as failover keeps them,
sees the others' changes. One process at a time may write a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from libcloud.dns.base import DNSDriver, Record, Zone
from libcloud.dns.types import (
    RecordDoesNotExistError,
    RecordError,
    RecordType,
    ZoneAlreadyExistsError,
    ZoneDoesNotExistError,
)

NAMESERVERS = ("ns1.memdns.invalid.", "ns2.memdns.invalid.")
DEFAULT_TTL = 3600
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.Lock())


class FileDNSDriver(DNSDriver):
    """Zones and records in one JSON file: ``{"zones": {domain: {"ttl", "records": {id: {...}}}}, "next_id"}``."""

    type = "memdns"
    name = "File DNS (failover test support)"
    website = "https://libcloud.apache.org/"

    def __init__(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(key="memdns", **kwargs)
        self.path = Path(path).absolute()
        self._lock = _lock_for(self.path)

    def list_record_types(self) -> list[str]:
        return [RecordType.A, RecordType.AAAA, RecordType.CNAME, RecordType.MX, RecordType.NS, RecordType.PTR,
                RecordType.SOA, RecordType.SRV, RecordType.TXT, RecordType.CAA]

    # -- zones ---------------------------------------------------------------------------

    def iterate_zones(self) -> Iterator[Zone]:
        zones = self._read()["zones"]
        return iter([self._zone(domain, entry) for domain, entry in sorted(zones.items())])

    def get_zone(self, zone_id: str) -> Zone:
        zones = self._read()["zones"]
        if zone_id not in zones:
            raise ZoneDoesNotExistError(value="", driver=self, zone_id=zone_id)
        return self._zone(zone_id, zones[zone_id])

    def create_zone(self, domain: str, type: str = "master", ttl: int | None = None, extra: dict | None = None) -> Zone:
        domain = _bare(domain)
        with self._changing() as data:
            if domain in data["zones"]:
                raise ZoneAlreadyExistsError(value="", driver=self, zone_id=domain)
            entry = data["zones"][domain] = {"ttl": ttl or DEFAULT_TTL, "records": {}}
            _add(data, entry, "", RecordType.SOA, _soa(domain), entry["ttl"])
            for nameserver in NAMESERVERS:
                _add(data, entry, "", RecordType.NS, nameserver, entry["ttl"])
        return self._zone(domain, entry)

    def delete_zone(self, zone: Zone) -> bool:
        with self._changing() as data:
            if data["zones"].pop(zone.id, None) is None:
                raise ZoneDoesNotExistError(value="", driver=self, zone_id=zone.id)
        return True

    # -- records -------------------------------------------------------------------------

    def iterate_records(self, zone: Zone) -> Iterator[Record]:
        entry = self._zone_entry(self._read(), zone.id)
        return iter([self._record(record_id, fields, zone) for record_id, fields in entry["records"].items()])

    def get_record(self, zone_id: str, record_id: str) -> Record:
        entry = self._zone_entry(self._read(), zone_id)
        if record_id not in entry["records"]:
            raise RecordDoesNotExistError(value="", driver=self, record_id=record_id)
        return self._record(record_id, entry["records"][record_id], self.get_zone(zone_id))

    def create_record(self, name: str, zone: Zone, type: str, data: str, extra: dict | None = None) -> Record:
        self._check_printable(name, data)
        extra = dict(extra or {})
        with self._changing() as content:
            entry = self._zone_entry(content, zone.id)
            record_id = _add(content, entry, name or "", str(type), data, extra.pop("ttl", None), extra)
            fields = entry["records"][record_id]
        return self._record(record_id, fields, zone)

    def update_record(self, record: Record, name: str | None, type: str | None, data: str | None,
                      extra: dict | None = None) -> Record:
        self._check_printable(name, data)
        extra = dict(extra or {})
        with self._changing() as content:
            fields = self._record_fields(content, record)
            if name is not None:
                fields["name"] = name
            if type is not None:
                fields["type"] = str(type)
            if data is not None:
                fields["data"] = data
            if "ttl" in extra:
                fields["ttl"] = extra.pop("ttl")
            fields["extra"] = {**fields["extra"], **extra}
        return self._record(record.id, fields, record.zone)

    def delete_record(self, record: Record) -> bool:
        with self._changing() as content:
            self._record_fields(content, record)
            del content["zones"][record.zone.id]["records"][record.id]
        return True

    def _check_printable(self, name: str | None, data: str | None) -> None:
        """Refuse what a zone file cannot hold on one line, as a provider refuses an invalid name:
        a name with a control character or a space, data with a control character."""
        if any(not char.isprintable() or char.isspace() for char in name or ""):
            raise RecordError(value=f"invalid record name {name!r}: a control character or space", driver=self,
                              record_id=None)
        if any(not char.isprintable() for char in data or ""):
            raise RecordError(value=f"invalid record data {data!r}: a control character", driver=self, record_id=None)

    # -- the file ------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        with self._lock:
            return self._load()

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"zones": {}, "next_id": 1}
        return json.loads(self.path.read_text(encoding="utf-8"))

    @contextmanager
    def _changing(self) -> Iterator[dict[str, Any]]:
        """The file's content to change in place; written back (atomically) unless an error is raised."""
        with self._lock:
            data = self._load()
            yield data
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".memdns-", dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
        os.replace(temporary, self.path)

    def _zone_entry(self, data: dict[str, Any], zone_id: str) -> dict[str, Any]:
        entry = data["zones"].get(zone_id)
        if entry is None:
            raise ZoneDoesNotExistError(value="", driver=self, zone_id=zone_id)
        return entry

    def _record_fields(self, data: dict[str, Any], record: Record) -> dict[str, Any]:
        fields = self._zone_entry(data, record.zone.id)["records"].get(record.id)
        if fields is None:
            raise RecordDoesNotExistError(value="", driver=self, record_id=record.id)
        return fields

    def _zone(self, domain: str, entry: dict[str, Any]) -> Zone:
        return Zone(id=domain, domain=domain, type="master", ttl=entry["ttl"], driver=self)

    def _record(self, record_id: str, fields: dict[str, Any], zone: Zone) -> Record:
        return Record(id=record_id, name=fields["name"], type=fields["type"], data=fields["data"], zone=zone,
                      driver=self, ttl=fields["ttl"], extra=dict(fields["extra"]))


def read_records(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Every zone of a file and its records ``{name, type, ttl, data}`` (``name`` relative), for reports and tests."""
    driver = FileDNSDriver(path)
    return {
        zone.domain: [{"name": r.name, "type": r.type, "ttl": r.ttl, "data": r.data} for r in driver.list_records(zone)]
        for zone in driver.list_zones()
    }


def _add(data: dict[str, Any], entry: dict[str, Any], name: str, type: str, value: str, ttl: int | None,
         extra: dict[str, Any] | None = None) -> str:
    record_id = str(data["next_id"])
    data["next_id"] += 1
    entry["records"][record_id] = {"name": name, "type": type, "data": value, "ttl": ttl or entry["ttl"],
                                   "extra": dict(extra or {})}
    return record_id


def _bare(domain: str) -> str:
    return domain.lower().rstrip(".")


def _soa(domain: str) -> str:
    return f"{NAMESERVERS[0]} hostmaster.{domain}. 1 10800 3600 604800 3600"
