"""The ports: the small protocols every adapter implements, and the value objects they return.

The core (``failover/``) talks to providers only through these; it never imports boto3 or
libcloud. Adapters live in ``providers/`` and depend on the core, never the other way
round; ``failover.adapters`` is the one place that names them (lazily).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from failover.errors import OperationFailed
from failover.manifest import DnsZone, Manifest

# A progress callback: (event, label, detail). Events: "total" (detail: how many),
# "start", "done" (detail: how many items).
Progress = Callable[[str, str, Any], None]


def no_progress(event: str, label: str, detail: Any = None) -> None:
    return None


class SourceInventory(Protocol):
    """Reads a service's resources from the source provider into a manifest."""

    def inventory(self, progress: Progress = no_progress) -> Manifest: ...




# -- targets -----------------------------------------------------------------------------
# Provider-neutral value objects the libcloud adapters return (the core never sees libcloud).

@dataclass(frozen=True)
class SizeInfo:
    """A target machine size; ``price_hourly`` is None where the driver gives no prices."""

    id: str
    name: str
    vcpus: int | None
    ram_mib: int | None
    disk_gib: int | None
    price_hourly: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ImageInfo:
    """A target image; ``description`` and ``extra`` help match an OS family and version."""

    id: str
    name: str
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class LocationInfo:
    """A target region or zone nodes can be created in."""

    id: str
    name: str
    country: str | None = None


@dataclass(frozen=True)
class NodeInfo:
    """A node on the target; ``state`` is libcloud's vocabulary: pending, running, stopped, terminated, ..."""

    id: str
    name: str
    state: str
    public_ips: tuple[str, ...] = ()
    private_ips: tuple[str, ...] = ()
    size_id: str | None = None
    image_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class FirewallRuleInfo:
    """One rule, as in the manifest: ``protocol`` tcp|udp|icmp|-1 (all); ``sources`` CIDRs or firewall ids."""

    direction: str  # "ingress" or "egress"
    protocol: str
    port_from: int | None
    port_to: int | None
    sources: tuple[str, ...]


@dataclass(frozen=True)
class FirewallInfo:
    """A firewall (security group) on the target and its rules."""

    id: str
    name: str
    rules: tuple[FirewallRuleInfo, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class ComputeTarget(Protocol):
    """Nodes (and, where the driver has an API for them, firewalls) on the target provider."""

    supports_firewalls: bool  # False: the firewall methods raise OperationFailed
    # True: ``create_node(firewalls=...)`` puts the node in those firewalls from its first instant;
    # False: they are attached after (``attach_firewall``). Read with getattr(..., False): additive.
    firewalls_at_creation: bool

    def locations(self) -> list[LocationInfo]:
        """Every location the target offers (cached)."""

    def location(self) -> LocationInfo | None:
        """The profile's ``compute.location`` as the target knows it; None when the profile sets none."""

    def sizes(self) -> list[SizeInfo]:
        """Node sizes, in the profile's location when it sets one (cached)."""

    def images(self) -> list[ImageInfo]:
        """Node images, in the profile's location when it sets one (cached)."""

    def list_nodes(self) -> list[NodeInfo]:
        """Every node the account holds, terminated ones included (drills compare these)."""

    def find_node(self, name: str) -> NodeInfo | None:
        """The node of that name that is not terminated, if any."""

    def create_node(
        self, name: str, size_id: str, image_id: str, user_data: str | None = None, labels: dict[str, str] | None = None,
        firewalls: Sequence[FirewallInfo] = (),
    ) -> NodeInfo:
        """Create a node in the profile's location; returns at once (see ``wait_running``).
        ``firewalls`` (only where ``firewalls_at_creation``): the firewalls it is created in."""

    def wait_running(self, node_id: str, timeout: float = 600, cancel: threading.Event | None = None) -> NodeInfo:
        """Poll until the node runs; OperationFailed on error state or timeout, Interrupted when cancelled."""

    def destroy_node(self, node_id: str) -> bool:
        """Destroy a node; False when it was already gone (idempotent)."""

    def list_firewalls(self) -> list[FirewallInfo]:
        """Every firewall with its rules (an empty list where the driver has no firewall API)."""

    def find_firewall(self, name: str) -> FirewallInfo | None:
        """The firewall of that name, if any."""

    def create_firewall(
        self, name: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str] | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> FirewallInfo:
        """Create a firewall holding exactly ``rules``, carrying ``labels`` where the provider has
        them (in the creating request where it can). ``on_created(id)`` is called the moment the
        firewall exists, before its rules are written: a failure after that leaves a firewall
        the caller knows (``set_firewall_rules`` finishes it)."""

    def set_firewall_rules(
        self, firewall_id: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str] | None = None
    ) -> FirewallInfo:
        """Make a firewall hold exactly ``rules`` (adding the missing ones, removing the others)
        and carry ``labels``, from whatever state a failed attempt left it in (idempotent)."""

    def attach_firewall(self, firewall_id: str, node_id: str) -> None:
        """Apply a firewall to a node, keeping the node's other firewalls."""

    def attached_firewalls(self, node_ids: Collection[str]) -> dict[str, frozenset[str]]:
        """Node id -> the ids of the firewalls applied to it, for the nodes of ``node_ids`` that
        exist, read in one listing (an empty mapping where the driver has no firewall API)."""

    def delete_firewall(self, firewall_id: str) -> bool:
        """Delete a firewall; False when it was already gone (idempotent)."""


@dataclass(frozen=True)
class BalancerInfo:
    """A load balancer of a target's balancer service (one listener: ``port``)."""

    id: str
    name: str
    address: str | None
    port: int | None
    members: tuple[tuple[str, int], ...] = ()


class LoadBalancerTarget(Protocol):
    """A target's load-balancer service (libcloud's ``Driver`` of ``libcloud.loadbalancer``)."""

    def list_balancers(self) -> list[BalancerInfo]: ...

    def find_balancer(self, name: str) -> BalancerInfo | None: ...

    def create_balancer(self, name: str, port: int, protocol: str, members: Sequence[tuple[str, int]]) -> BalancerInfo:
        ...

    def destroy_balancer(self, balancer_id: str) -> bool:
        """True when destroyed, False when it was gone already."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object. ``hash`` is the provider's (ETag); ``md5`` the content's MD5 in hex where
    known (from the provider, or computed while uploading). Listings of some providers (S3)
    carry no ``content_type`` or ``meta``: ``get_object`` has them. ``modified``: when the
    object was last written (an aware datetime), where the provider lists it."""

    key: str
    size: int
    hash: str | None = None
    md5: str | None = None
    content_type: str | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    modified: datetime | None = field(default=None, compare=False, hash=False)


class StorageTarget(Protocol):
    """Object storage on the target. ``bucket`` is the source bucket's name; the adapter
    stores it in the container ``container_prefix + bucket``."""

    keeps_metadata: bool  # False: the provider drops content types and metadata (local disk)

    def container_name(self, bucket: str) -> str:
        """The target container holding ``bucket``."""

    def list_containers(self) -> list[str]:
        """The names of every container the account holds, whatever their prefix."""

    def container_exists(self, bucket: str) -> bool:
        """Whether the bucket's container exists."""

    def ensure_container(self, bucket: str) -> str:
        """Create the bucket's container unless it exists; returns its name."""

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object in the container, paged lazily."""

    def get_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """One object's size, checksums, content type and metadata; None when absent."""

    def upload_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str | None = None,
        meta: dict[str, str] | None = None, *, size: int | None = None, md5: str | None = None,
    ) -> ObjectInfo:
        """Store an object from an iterable of byte chunks, never holding it whole; ``md5`` of the
        result is of what was sent. ``size`` and ``md5`` (hex), when the caller knows them, let
        the adapter send the object in one streamed request that the service verifies."""

    def key_problem(self, bucket: str, key: str) -> str | None:
        """Why this target cannot hold ``key`` under that very name in the bucket's container
        (a character its listings cannot carry, a name it would store as another, a length it
        refuses), or None. Asked before any upload: such a key is refused, never sent."""

    def key_collisions(self, bucket: str, keys: Collection[str], stored: Collection[str]) -> dict[str, str]:
        """Of ``keys`` (one listing of the source), those that cannot be held beside another
        key of ``keys`` or of ``stored`` (the container's listing), each with why: on local
        disk, ``a`` and ``a/b`` cannot both be files. Which one gives way is decided from the
        two listings alone, so every pass refuses the same key."""

    def download_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        """An object's content as byte chunks."""

    def object_url(self, bucket: str, key: str, expires_s: float) -> str | None:
        """A time-limited GET URL of an object, where the provider signs them; else None."""

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete an object; False when it was already gone (idempotent)."""

    def delete_container(self, bucket: str) -> bool:
        """Delete the bucket's container and every object in it; False when it was already gone."""


@dataclass(frozen=True)
class ZoneInfo:
    """A DNS zone on the target; ``domain`` fully qualified, with the trailing dot."""

    id: str
    domain: str
    ttl: int | None = None


@dataclass(frozen=True)
class RecordSet:
    """All records of one name and type; ``name`` fully qualified with the trailing dot,
    ``values`` in zone-file presentation (``10 mail.example.com.`` for MX)."""

    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class RecordChange:
    """One record set to write: ``values`` it should hold exactly (at ``ttl``), or none to
    delete it. ``name`` fully qualified, as in RecordSet."""

    name: str
    type: str
    ttl: int
    values: tuple[str, ...] = ()


class DnsTarget(Protocol):
    """DNS zones and record sets on the target. An adapter may also offer
    ``set_records(zone, changes: Sequence[RecordChange]) -> None``: the changes written in as
    few requests as the provider takes (each request applied whole, retrying it harmless), in
    their order; callers use it where present and fall back to ``set_record``/``delete_record``."""

    def list_zones(self) -> list[ZoneInfo]:
        """Every zone the account holds."""

    def find_zone(self, domain: str) -> ZoneInfo | None:
        """The zone of that domain (with or without the trailing dot), if any."""

    def create_zone(self, domain: str, ttl: int | None = None) -> ZoneInfo:
        """Create a zone; OperationFailed when it exists already."""

    def list_records(self, zone: ZoneInfo) -> list[RecordSet]:
        """Every record set of the zone, SOA and NS included."""

    def set_record(self, zone: ZoneInfo, name: str, type: str, ttl: int, values: Sequence[str]) -> RecordSet:
        """Make the record set of ``name`` and ``type`` exactly ``values``, replacing what was there."""

    def delete_record(self, zone: ZoneInfo, name: str, type: str) -> bool:
        """Delete the record set; False when there was none (idempotent)."""

    def delete_zone(self, zone: ZoneInfo) -> bool:
        """Delete the zone and its records; False when it was already gone (idempotent)."""




# -- source object storage ------------------------------------------------------------
# What replication reads from; only ``replicate`` and a ``sync-buckets`` with the source
# still reachable use it.

@dataclass
class SourceObject:
    """An object opened for reading on the source: its size, ETag (``hash``), content MD5
    where the ETag is one, content type and metadata, and its content as byte chunks.
    A context manager: leaving it closes the stream."""

    info: ObjectInfo
    chunks: Iterator[bytes]
    close: Callable[[], None]

    def __enter__(self) -> SourceObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SourceStorage(Protocol):
    """Object storage on the source, read-only. Listed ``ObjectInfo`` carry the size and the
    ETag (``hash``), and ``md5`` where the ETag is the content's MD5; no content type or metadata."""

    def probe(self, bucket: str) -> str | None:
        """Why the source cannot serve ``bucket`` now, or None when it can: one request with a
        short timeout and no retries, so an account that is gone costs seconds, not minutes."""

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        """The current version of every object, paged lazily."""

    def open(self, bucket: str, key: str) -> SourceObject | None:
        """An object's content as a stream, with its content type and metadata; None when it is gone."""


# -- source DNS -------------------------------------------------------------------------------


class ZoneGone(OperationFailed):
    """A snapshot zone the source no longer has."""


class SourceZones(Protocol):
    """The source's DNS, read-only: a snapshot zone's record sets as they are now."""

    def read(self, zone: DnsZone) -> DnsZone:
        """``zone`` with its records read now; ZoneGone when the source no longer has it;
        ProviderError when the source cannot be reached or refuses the credentials."""


# -- source secrets and parameters (the escrow) --------------------------------------------------


@dataclass(frozen=True)
class SecretItem:
    """One SSM parameter (``kind`` "parameter") or Secrets Manager secret ("secret") as read from the
    source, with its value: ``text``, or ``binary`` for a binary secret. Its ``repr`` shows no value:
    an item that reaches a log or a traceback by mistake still carries none."""

    kind: str
    region: str
    name: str
    text: str | None = field(default=None, repr=False)
    binary: bytes | None = field(default=None, repr=False)
    type: str | None = None  # SSM: String, StringList, SecureString
    version: str | None = None


@dataclass(frozen=True)
class SecretsRead:
    """What a ``SourceSecrets.read`` found; ``missing``: names asked for by name that the source does not have."""

    items: list[SecretItem]
    missing: list[str] = field(default_factory=list)


class SourceSecrets(Protocol):
    """The service's parameters and secrets on the source, read with their values (for the escrow only:
    the caller encrypts them at once and never writes them in the clear)."""

    def read(self, ssm_paths: Sequence[str], secrets: Sequence[str]) -> SecretsRead:
        """Every parameter under each of ``ssm_paths`` (recursively; or the parameter of that very name),
        decrypted, and every secret named in ``secrets`` (a name, or a prefix ending in ``*``), in every
        configured region. ProviderError when the source cannot be reached or refuses the credentials."""


# -- a source provider, whole -----------------------------------------------------------------


class SourceProvider(Protocol):
    """What a source provider offers, each capability built from a loaded ``Config``.
    Registered by name in ``failover.adapters``; the config's ``source.provider`` picks one."""

    def inventory(self, config: Any) -> SourceInventory:
        """The reader that snapshots the service into a manifest."""

    def storage(self, config: Any, bucket_regions: dict[str, str], workers: int) -> SourceStorage:
        """The source's object storage; ``bucket_regions`` maps each bucket to its region (from the
        snapshot); ``workers`` is how many threads will read."""

    def zones(self, config: Any) -> SourceZones:
        """The source's DNS reader."""

    # Optional (the escrow): ``secrets(config) -> SourceSecrets``; a provider without it cannot escrow.

    def discover(self, *, regions: list[str] | None, endpoint_url: str | None, profile: str | None) -> Any:
        """For ``failover init``: the tagged resources the account holds (a
        ``failover.initconfig.Discovery``), read with the provider's standard configuration."""
