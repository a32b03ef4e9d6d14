"""How a libcloud node is read into the manifest, per driver: where its tags live, where it
runs, what its size and image are, and what the driver can tell of its user data and firewalls.

:class:`NodeReader` reads what every driver's ``Node`` carries (tags from ``extra`` as a dict or
as ``key:value`` strings, the size and image, addresses). A driver that keeps something
elsewhere, or has an ``ex_`` API for user data or firewalls, gets a subclass in a module of its
own, registered here in :data:`NODE_READERS` by its libcloud provider name (``driver.type``) or
by an installed distribution in the entry-point group ``failover.libcloud_node_readers``.
Adding a source driver is that module and that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from failover.adapters import load_object
from failover.manifest import Firewall, Unsupported
from failover.retry import retry_requests
from providers.libcloud.catalog import to_image_info, to_size_info
from providers.libcloud.values import labels_of

# libcloud provider name -> "module:Class" of its reader; any other driver gets NodeReader.
NODE_READERS: dict[str, str] = {
    "ec2": "providers.libcloud.source.ec2:Ec2Nodes",
    "digitalocean": "providers.libcloud.source.digitalocean:DigitalOceanNodes",
    "vultr": "providers.libcloud.source.vultr:VultrNodes",
    "gce": "providers.libcloud.source.gce:GceNodes",
}
ENTRY_POINT_GROUP = "failover.libcloud_node_readers"

GLOBAL = "global"  # the region of what a driver does not place
# Where drivers keep a node's tags or labels in ``Node.extra``, most specific first.
LABEL_KEYS = ("labels", "tags", "metadata")
# Where drivers keep the place a node runs in, in ``Node.extra``.
LOCATION_KEYS = ("availability", "zone", "location", "region", "datacenter", "availability_zone")
# Where drivers keep a node's size id in ``Node.extra`` when ``Node.size`` is not set.
SIZE_KEYS = ("instance_type", "size_slug", "size", "plan", "flavorId", "machineType", "vm_size")
IMAGE_KEYS = ("image_id", "image", "imageId", "os_id")
UNKNOWN_SIZE = "unknown"  # the manifest's instance_type of a node whose driver names no size


@dataclass
class Firewalls:
    """What a reader found of the nodes' firewalls: the firewalls, and each node's ids.
    ``unknown`` says why the driver cannot tell (then both are empty)."""

    firewalls: list[Firewall] = field(default_factory=list)
    of_node: dict[str, list[str]] = field(default_factory=dict)
    unknown: str | None = None
    # rules that cannot be read (a port that is no number): left out of their firewall (the
    # node admits less) and listed in the manifest's ``unsupported``, each with why
    refused: list[Unsupported] = field(default_factory=list)


@dataclass(frozen=True)
class SizeFacts:
    instance_type: str
    vcpus: int | None
    memory_mib: int | None
    disk_gib: int | None
    architecture: str | None


@dataclass(frozen=True)
class ImageFacts:
    id: str | None
    name: str | None
    description: str | None
    architecture: str | None


class NodeReader:
    """Reads what every libcloud ``Node`` carries. ``name`` is the driver's name in messages."""

    # Why this driver tells no user data, or None where ``user_data`` reads it.
    user_data_unknown: str | None = "libcloud's driver has no call that reads a node's user data"
    firewalls_unknown: str | None = "libcloud's driver has no firewall API"

    def __init__(self, driver: Any, name: str) -> None:
        self.driver = driver
        self.name = name
        self._sizes: dict[str, Any] | None = None
        self._places: dict[str, str] | None = None
        self._images: dict[str, Any] = {}

    # -- what a node carries -------------------------------------------------------------

    def tags(self, node: Any) -> dict[str, str]:
        """The node's tags or labels as a dict; ``key:value`` strings split at the first colon,
        a string without one is a key whose value is empty."""
        extra = node.extra or {}
        # the first place that holds any (an OpenStack node lists empty ``tags`` beside its ``metadata``)
        found = next((key for key in LABEL_KEYS if extra.get(key)), None)
        return labels_of({found: extra[found]}) if found else {}

    def location(self, node: Any) -> str | None:
        """Where the node runs, as the driver writes it (an id or a name)."""
        extra = node.extra or {}
        for key in LOCATION_KEYS:
            value = extra.get(key)
            if value:
                return str(getattr(value, "name", None) or (value.get("slug") if isinstance(value, dict) else value))
        return None

    def region(self, node: Any) -> str:
        """The manifest's ``region`` of the node: its location's id (a driver that writes the name,
        as DigitalOcean does, is answered from ``list_locations``)."""
        written = self.location(node)
        return self.places().get(written or "", written or GLOBAL)

    def zone(self, node: Any) -> str | None:
        """The node's zone within its region, where the driver has both."""
        return None

    def addresses(self, node: Any) -> tuple[str | None, str | None]:
        """(private, public) IPv4 addresses: the first of each the driver lists."""
        private = next((str(ip) for ip in node.private_ips or () if ":" not in str(ip)), None)
        public = next((str(ip) for ip in node.public_ips or () if ":" not in str(ip)), None)
        return private, public

    def size(self, node: Any) -> SizeFacts:
        size_id = _id_of(node.size) or _first_id(node.extra or {}, SIZE_KEYS) or UNKNOWN_SIZE
        native = node.size if hasattr(node.size, "ram") else self.sizes().get(size_id)
        if native is None:  # GCE names a node's size where the size list is keyed by number
            native = next((size for size in self.sizes().values() if size.name == size_id), None)
        info = to_size_info(native, getattr(self.driver, "type", None)) if native is not None else None
        extra = node.extra or {}
        specs = extra.get("specs") if isinstance(extra.get("specs"), dict) else {}
        vcpus = info.vcpus if info and info.vcpus else _int(extra.get("vcpus") or specs.get("vcpus"))
        memory = info.ram_mib if info and info.ram_mib else _int(extra.get("memory") or specs.get("memory"))
        architecture = (info.extra.get("architecture") if info else None) or extra.get("architecture")
        return SizeFacts(size_id, vcpus, memory, info.disk_gib if info else None, architecture)

    def image(self, node: Any) -> ImageFacts:
        image_id = _id_of(node.image) or _first_id(node.extra or {}, IMAGE_KEYS)
        native = node.image if getattr(node.image, "name", None) else self.find_image(image_id)
        if native is None:
            return ImageFacts(image_id, None, None, None)
        info = to_image_info(native)
        return ImageFacts(image_id or info.id, info.name, info.description, info.extra.get("architecture"))

    def user_data(self, node: Any) -> str | None:
        return None

    def firewalls(self, nodes: list[Any], selector: dict[str, str], region: str) -> Firewalls:
        return Firewalls(unknown=self.firewalls_unknown)

    # -- catalogues ----------------------------------------------------------------------

    def sharing(self, other: NodeReader) -> NodeReader:
        """This reader with ``other``'s catalogues: sizes listed once, images looked up once (a
        reader per thread, each over its thread's driver)."""
        self._sizes = other.sizes()
        self._images = other._images
        return self

    def places(self) -> dict[str, str]:
        """Every way the driver names a location (id, name) -> its id, listed once."""
        if self._places is None:
            try:
                locations = retry_requests(self.driver.list_locations)
            except NotImplementedError:
                locations = []
            self._places = {str(name): str(location.id) for location in locations
                            for name in (location.name, location.id)}
        return self._places

    def sizes(self) -> dict[str, Any]:
        """The driver's sizes by id, listed once (a driver without a size list gives none)."""
        if self._sizes is None:
            try:
                self._sizes = {str(size.id): size for size in self.driver.list_sizes()}
            except NotImplementedError:
                self._sizes = {}
        return self._sizes

    def find_image(self, image_id: str | None) -> Any:
        """One image by id (``get_image``; never the whole catalogue: EC2's holds every public AMI)."""
        if not image_id:
            return None
        if image_id not in self._images:
            try:
                self._images[image_id] = self.driver.get_image(image_id)
            except NotImplementedError:
                self._images[image_id] = None
        return self._images[image_id]


@cache
def _registered() -> dict[str, str]:
    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}


def reader_for(driver: Any, name: str) -> NodeReader:
    """The reader registered for the driver's libcloud provider name, else the generic one."""
    provider = str(getattr(driver, "type", "") or "")
    path = _registered().get(provider) or NODE_READERS.get(provider)
    cls = load_object(path) if path else NodeReader
    return cls(driver, name)


def _id_of(item: Any) -> str | None:
    if item is None or item == "":
        return None
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return _first_id(item, ("id", "slug"))
    value = getattr(item, "id", None)
    return None if value in (None, "") else str(value)


def _first_id(extra: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = _id_of(extra.get(key))
        if value:
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
