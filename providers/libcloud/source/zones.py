"""A libcloud DNS driver as the source of ``replicate``'s zone mirrors: a snapshot zone's record
sets as the driver lists them now, read like the inventory reads them."""

from __future__ import annotations

from typing import Any

from failover.errors import ConfigError, Problem
from failover.manifest import DnsZone
from failover.ports import ZoneGone
from providers.libcloud.dns import LibcloudDns
from providers.libcloud.source.inventory import source_dns, zone_resource


class LibcloudZones:
    """A ``SourceZones`` over ``source.dns``."""

    def __init__(self, dns: LibcloudDns) -> None:
        self.dns = dns

    @classmethod
    def from_config(cls, config: Any) -> LibcloudZones:
        spec = config.source.dns
        if spec is None:
            raise ConfigError([Problem(file=str(config.path), field="source.dns", message=(
                "the snapshot has DNS zones and the source names no dns driver to read them from"))])
        return cls(source_dns(spec, str(config.path)))

    def read(self, zone: DnsZone) -> DnsZone:
        found = self.dns.find_zone(zone.name)
        if found is None:
            raise ZoneGone(f"zone {zone.name} is no longer on the source; run failover inventory")
        fresh = zone_resource(found, self.dns.list_records(found))
        return zone.model_copy(update={"records": fresh.records})
