"""The inventory of a service read through libcloud drivers: nodes from a compute driver
(selected by tags or name prefix, in the configured locations), buckets from a storage driver's
containers (by name or prefix, with their object count and bytes), zones from a DNS driver (by
name, with every record set). What a driver cannot tell is null in the manifest and named in
``source.unknown``; nothing is guessed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from failover.config import Config, DnsSpec, DriverSpec, Selector, SourceComputeSpec, StorageSpec
from failover.errors import ConfigError, Problem
from failover.manifest import Bucket, DnsZone, Manifest, Node, Record, SourceInfo, Unsupported, now_iso
from failover.ports import Progress, no_progress
from failover.retry import retry_requests
from providers.libcloud import ec2pages
from providers.libcloud.dns import LibcloudDns, fqdn
from providers.libcloud.drivers import DriverSession
from providers.libcloud.source.readers import UNKNOWN_SIZE, NodeReader, reader_for
from providers.libcloud.storage import LibcloudStorage

PROVIDER = "libcloud"
GONE_STATES = frozenset({"terminated"})
GLOBAL = "global"  # the region of what a driver does not place (containers of most providers, zones)
WORKERS = 8  # nodes read and containers counted in parallel (each thread has its own driver)


class LibcloudInventory:
    """A ``SourceInventory`` over the drivers of ``source.compute``, ``source.storage`` and ``source.dns``."""

    def __init__(
        self, service: str, select: Selector, *, compute: SourceComputeSpec | None = None,
        storage: DriverSpec | None = None, dns: DriverSpec | None = None, file: str = "failover.yaml",
    ) -> None:
        self.service = service
        self.select = select
        self.compute, self.storage, self.dns = compute, storage, dns
        self.file = file

    @classmethod
    def from_config(cls, config: Config) -> LibcloudInventory:
        source = config.source
        return cls(config.service, source.select, compute=source.compute, storage=source.storage, dns=source.dns,
                   file=str(config.path))

    def inventory(self, progress: Progress = no_progress) -> Manifest:
        resources: list[Any] = []
        unsupported: list[Unsupported] = []
        unknown: dict[str, str] = {}
        drivers: list[str] = []
        if self.compute is not None:
            progress("start", "nodes")
            nodes, node_unknown, refused = self._nodes(self.compute)
            resources += nodes
            unsupported += refused
            unknown.update(node_unknown)
            drivers.append(f"compute: {self.compute.driver}")
            progress("done", "nodes", len(nodes))
        if self.storage is not None:
            progress("start", "buckets")
            buckets = self._buckets(self.storage)
            resources += buckets
            drivers.append(f"storage: {self.storage.driver}")
            progress("done", "buckets", len(buckets))
        if self.dns is not None:
            progress("start", "zones")
            zones = self._zones(self.dns)
            resources += zones
            drivers.append(f"dns: {self.dns.driver}")
            progress("done", "zones", len(zones))
        regions = sorted({resource.region for resource in resources} - {GLOBAL})
        source = SourceInfo(provider=PROVIDER, account=", ".join(drivers), regions=regions, unknown=unknown)
        return Manifest(service=self.service, taken_at=now_iso(), source=source, resources=resources,
                        unsupported=unsupported).canonical()

    # -- nodes ---------------------------------------------------------------------------

    def _nodes(self, spec: SourceComputeSpec) -> tuple[list[Any], dict[str, str], list[Unsupported]]:
        session = source_session(DriverSession("compute", spec, file=self.file, field="source.compute"))
        reader = reader_for(session.driver, spec.driver)
        with session.translating("list nodes"):
            listed = retry_requests(lambda: ec2pages.list_nodes(session.driver))
        chosen = []
        with session.translating("list locations"):  # where a driver names a node's region by name
            for node in listed:
                state = str(getattr(node.state, "value", node.state) or "unknown").lower()
                if state in GONE_STATES or not self._selected(reader, node):
                    continue
                region = reader.region(node)
                if spec.locations and not ({region, reader.location(node)} & set(spec.locations)):
                    continue
                chosen.append((node, state, region))
        by_region: dict[str, list[Any]] = {}
        for node, _, region in chosen:
            by_region.setdefault(region, []).append(node)
        firewalls, of_node, firewalls_unknown, refused = [], {}, None, []
        with session.translating("read firewalls"):
            for region, nodes in by_region.items():
                found = retry_requests(lambda nodes=nodes, region=region: reader.firewalls(nodes, self.select.tags, region))
                firewalls += found.firewalls
                of_node.update(found.of_node)
                firewalls_unknown = found.unknown
                refused += found.refused
        seen = {}
        for firewall in firewalls:
            seen.setdefault(firewall.id, firewall)

        nodes = self._read_nodes(session, reader, chosen, of_node)
        unknown = {}
        if reader.user_data_unknown and nodes:
            unknown["node.user_data"] = f"{spec.driver}: {reader.user_data_unknown}"
        if firewalls_unknown and nodes:
            unknown["node.firewalls"] = f"{spec.driver}: {firewalls_unknown}"
        missing = sorted({field for node in nodes for field in ("vcpus", "memory_mib", "image_name", "architecture")
                          if getattr(node, field) is None})
        for field in missing:
            unknown[f"node.{field}"] = f"{spec.driver}: not stated for every node (null where it is not)"
        if any(node.instance_type == UNKNOWN_SIZE for node in nodes):
            unknown["node.instance_type"] = f"{spec.driver}: names no size for some nodes ({UNKNOWN_SIZE!r} there)"
        return [*nodes, *seen.values()], unknown, list({(item.id, item.reason): item for item in refused}.values())

    @staticmethod
    def _read_nodes(
        session: DriverSession, reader: NodeReader, chosen: list[tuple[Any, str, str]], of_node: dict[str, list[str]]
    ) -> list[Node]:
        """Each chosen node read in full (its user data, its image: a request or two each), in
        parallel: a reader per thread over that thread's own driver (a libcloud driver is not
        shared between threads), the catalogues listed once and shared."""
        if not chosen:
            return []
        with session.translating("list sizes"):
            retry_requests(reader.sizes)
        local = threading.local()

        def here() -> NodeReader:
            found = getattr(local, "reader", None)
            if found is None:
                found = local.reader = reader_for(session.driver, reader.name).sharing(reader)
            return found

        def read(item: tuple[Any, str, str]) -> Node:
            with session.translating(f"read node {item[0].id}"):
                return retry_requests(lambda: _node(here(), *item, of_node))

        with ThreadPoolExecutor(max_workers=min(WORKERS, len(chosen))) as pool:
            return list(pool.map(read, chosen))

    def _selected(self, reader: NodeReader, node: Any) -> bool:
        tags = reader.tags(node)
        if not all(tags.get(key) == value for key, value in self.select.tags.items()):
            return False
        return self.select.name_prefix is None or str(node.name or "").startswith(self.select.name_prefix)

    # -- buckets -------------------------------------------------------------------------

    def _buckets(self, spec: DriverSpec) -> list[Bucket]:
        storage = source_storage(spec, self.file)
        names = storage.list_containers()
        wanted = [name for name in names if name in self.select.containers
                  or (self.select.container_prefix and name.startswith(self.select.container_prefix))]
        missing = [name for name in self.select.containers if name not in names]
        if missing:
            raise ConfigError([Problem(file=self.file, field="source.select.containers", message=(
                f"no container {', '.join(map(repr, missing))} on the source (it has: {', '.join(sorted(names)) or 'none'})"
            ))])
        region = str(getattr(storage.driver, "region", None) or GLOBAL)

        def count(name: str) -> Bucket:
            objects = size = 0
            for item in storage.iter_objects(name):
                objects += 1
                size += item.size
            return Bucket(id=name, name=name, region=region, objects=objects, bytes=size, versioning=False)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return list(pool.map(count, sorted(wanted)))

    # -- zones ---------------------------------------------------------------------------

    def _zones(self, spec: DriverSpec) -> list[DnsZone]:
        dns = source_dns(spec, self.file)
        zones = {zone.domain: zone for zone in dns.list_zones()}
        missing = [name for name in self.select.zones if name not in zones]
        if missing:
            raise ConfigError([Problem(file=self.file, field="source.select.zones", message=(
                f"no zone {', '.join(map(repr, missing))} on the source (it has: {', '.join(sorted(zones)) or 'none'})"
            ))])
        return [zone_resource(zone, dns.list_records(zone)) for zone in (zones[name] for name in self.select.zones)]


def source_session(session: DriverSession) -> DriverSession:
    """A driver session whose errors say "source" (the adapters it comes from were made for targets)."""
    session.where = f"{session.capability} source ({session.spec.driver})"
    return session


def source_storage(spec: DriverSpec, file: str) -> LibcloudStorage:
    storage = LibcloudStorage(StorageSpec(driver=spec.driver, options=spec.options), file=file, field="source.storage")
    source_session(storage.session)
    return storage


def source_dns(spec: DriverSpec, file: str) -> LibcloudDns:
    dns = LibcloudDns(DnsSpec(driver=spec.driver, options=spec.options), file=file, field="source.dns")
    source_session(dns.session)
    return dns


def zone_resource(zone: Any, record_sets: list[Any]) -> DnsZone:
    records = [Record(name=item.name, type=item.type, ttl=item.ttl, values=list(item.values)) for item in record_sets]
    return DnsZone(id=zone.id, name=fqdn(zone.domain), region=GLOBAL, records=records)


def _node(reader: NodeReader, node: Any, state: str, region: str, of_node: dict[str, list[str]]) -> Node:
    size, image = reader.size(node), reader.image(node)
    private, public = reader.addresses(node)
    tags = reader.tags(node)
    return Node(
        id=str(node.id), name=str(node.name or tags.get("Name") or node.id), region=region, tags=tags,
        instance_type=size.instance_type, vcpus=size.vcpus, memory_mib=size.memory_mib,
        image_id=image.id, image_name=image.name, image_description=image.description,
        architecture=image.architecture or size.architecture,
        private_ip=private, public_ip=public if state == "running" else None,
        firewalls=of_node.get(str(node.id), []), volumes=[], root_volume_gib=size.disk_gib,
        user_data=reader.user_data(node), state=state, zone=reader.zone(node),
    )
