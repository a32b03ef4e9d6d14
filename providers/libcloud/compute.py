"""A compute target over any libcloud ``NodeDriver``."""

from __future__ import annotations

import inspect
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from libcloud.compute.base import NodeImage

from failover.config import DEFAULT_FILE, ComputeSpec
from failover.errors import ConfigError, FailoverError, Interrupted, OperationFailed, Problem, TransientError
from failover.ports import FirewallInfo, FirewallRuleInfo, ImageInfo, LocationInfo, NodeInfo, SizeInfo
from failover.retry import retry_requests
from providers.libcloud import ec2pages
from providers.libcloud.catalog import to_image_info, to_size_info
from providers.libcloud.drivers import ADAPTERS, DriverSession, retried
from providers.libcloud.firewalls import firewalls_for
from providers.libcloud.values import location_info, node_info, tag_strings

# Providers whose tags are plain strings, not key/value pairs: labels go as "key:value".
STRING_TAG_PROVIDERS = frozenset({"digitalocean", "linode", "scaleway"})
# create_node keywords that carry user data, in the spellings of the drivers that have one.
USER_DATA_KEYWORDS = ("ex_userdata", "ex_user_data", "ex_customdata", "cloud_init")
GONE_STATES = frozenset({"terminated"})
FAILED_STATES = frozenset({"error"})
POLL_INTERVAL = 5.0
# The first pause in waiting for a node to run; each next one doubles, up to POLL_INTERVAL.
FIRST_POLL_INTERVAL = 0.5
# How long a waiter sleeps at most while another thread reads for it, between looks at its cancel event.
READING_WAIT = 0.5
# Node ids per filtered listing: one answer page (moto pages DescribeInstances at 100 reservations).
IDS_PER_LISTING = 100
T = TypeVar("T")


def connect_compute(spec: ComputeSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> LibcloudCompute:
    """The compute target of a profile (shared by every caller in this process)."""
    return ADAPTERS.get("compute", spec, file, field, lambda: LibcloudCompute(spec, file=file, field=field))


class LibcloudCompute:
    """Nodes on any libcloud driver; catalogues (locations, sizes, images) listed once."""

    def __init__(self, spec: ComputeSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> None:
        self.spec = spec
        self.session = DriverSession("compute", spec, file=file, field=field)
        self._catalogues: dict[str, list[Any]] = {}
        # One lock per catalogue, so sizes and images are listed at the same time (each needs
        # the location first, whose lock is taken inside theirs: never the other way round).
        self._catalogue_locks = {kind: threading.Lock() for kind in ("locations", "sizes", "images")}
        self.poll_interval = POLL_INTERVAL  # the longest pause between two readings of a starting node
        self._states = NodeStates(self._read_states)

    # -- catalogues ----------------------------------------------------------------------

    def locations(self) -> list[LocationInfo]:
        return [location_info(item) for item in self._catalogue("locations", lambda d: d.list_locations())]

    def location(self) -> LocationInfo | None:
        native = self._native_location()
        return location_info(native) if native is not None else None

    def sizes(self) -> list[SizeInfo]:
        return [to_size_info(item) for item in self._catalogue("sizes", self._list_sizes)]

    def images(self) -> list[ImageInfo]:
        return [to_image_info(item) for item in self._catalogue("images", self._list_images)]

    def _list_sizes(self, driver: Any) -> list[Any]:
        return driver.list_sizes(**self._location_argument(driver.list_sizes))

    def _list_images(self, driver: Any) -> list[Any]:
        return driver.list_images(**self._location_argument(driver.list_images))

    def _location_argument(self, method: Any) -> dict[str, Any]:
        if self.spec.location is None or "location" not in inspect.signature(method).parameters:
            return {}
        return {"location": self._native_location()}

    @retried
    def _catalogue(self, kind: str, list_items: Any) -> list[Any]:
        with self._catalogue_locks[kind]:
            if kind not in self._catalogues:
                with self.session.translating(f"list {kind}"):
                    self._catalogues[kind] = list(list_items(self.session.driver))
            return self._catalogues[kind]

    def _native_location(self) -> Any:
        wanted = self.spec.location
        if wanted is None:
            return None
        known = self._catalogue("locations", lambda d: d.list_locations())
        found = next((loc for loc in known if wanted in (str(loc.id), loc.name)), None)
        if found is None:
            names = ", ".join(sorted(_spelled(loc) for loc in known)) or "none"
            raise ConfigError([Problem(
                file=self.session.file, field=f"{self.session.field}.location",
                message=f"{wanted!r} is not a location of {self.spec.driver} (it has: {names})",
            )])
        return found

    def _native_size(self, size_id: str) -> Any:
        sizes = self._catalogue("sizes", self._list_sizes)
        found = next((size for size in sizes if str(size.id) == size_id), None)
        if found is None:
            raise OperationFailed(f"no size {size_id!r} in {self.spec.driver}'s catalogue", where=self.session.where)
        return found

    def _native_image(self, image_id: str) -> Any:
        listed = self._catalogues.get("images")
        found = next((image for image in listed or () if str(image.id) == image_id), None)
        # Drivers read only the id of the image they are given; listing a big catalogue
        # (EC2 has every public AMI) just to find one would cost minutes.
        return found or NodeImage(id=image_id, name=None, driver=self.session.driver)

    # -- nodes ---------------------------------------------------------------------------

    @retried
    def list_nodes(self) -> list[NodeInfo]:
        with self.session.translating("list nodes"):
            return [node_info(node) for node in ec2pages.list_nodes(self.session.driver)]

    @retried
    def find_node(self, name: str) -> NodeInfo | None:
        with self.session.translating(f"find node {name}"):
            driver = self.session.driver
            # EC2 filters by the Name tag: one small answer rather than the account's every node.
            filters = {"tag:Name": name} if ec2pages.is_ec2(driver) else None
            nodes = ec2pages.list_nodes(driver, filters=filters)
        named = [node_info(node) for node in nodes if node.name == name]
        return next((node for node in named if node.state not in GONE_STATES), None)

    def create_node(
        self, name: str, size_id: str, image_id: str, user_data: str | None = None, labels: dict[str, str] | None = None,
        firewalls: Sequence[FirewallInfo] = (),
    ) -> NodeInfo:
        size, image, location = self._native_size(size_id), self._native_image(image_id), self._native_location()
        labels = labels or {}
        if firewalls and not self.firewalls_at_creation:
            raise OperationFailed(f"libcloud's {self.spec.driver} driver cannot create a node in a firewall")

        def attempt() -> NodeInfo:
            try:
                with self.session.translating(f"create node {name}"):
                    driver = self.session.driver
                    keywords = creation_keywords(driver, user_data, labels)
                    if firewalls:
                        keywords.update(self._firewalls().creation_keywords(firewalls))
                    arguments = {"name": name, "size": size, "image": image, **keywords}
                    if location is not None:
                        arguments["location"] = location
                    return node_info(driver.create_node(**arguments))
            except TransientError:
                # Executed, its answer lost? The node carries the labels it was created with.
                found = self.find_node(name) if labels else None
                if found is not None and labels.items() <= found.labels.items():
                    return found
                raise

        # Without labels, a node found after a failure could be anyone's: the caller decides.
        return retry_requests(attempt) if labels else attempt()

    def wait_running(self, node_id: str, timeout: float = 600, cancel: threading.Event | None = None) -> NodeInfo:
        """Poll until the node runs: at once, then after FIRST_POLL_INTERVAL, doubling up to
        ``poll_interval``. The nodes waited for at the same time are read together (see
        :class:`NodeStates`): one listing filtered by their ids answers every waiter."""
        cancel = cancel or threading.Event()
        deadline = time.monotonic() + timeout
        interval, reading = min(FIRST_POLL_INTERVAL, self.poll_interval), 0
        with self._states.watching(node_id):
            while True:
                reading, node = self._states.newer(node_id, than=reading, cancel=cancel)
                if node is None or node.state in GONE_STATES:
                    raise OperationFailed(f"node {node_id} disappeared while starting", where=self.session.where)
                if node.state in FAILED_STATES:
                    failed = f"node {node.name} ({node_id}) failed to start: state {node.state}"
                    raise OperationFailed(failed, where=self.session.where)
                if node.state == "running":
                    return node
                if time.monotonic() >= deadline:
                    late = f"node {node.name} ({node_id}) not running after {timeout:g}s (state {node.state})"
                    raise OperationFailed(late, where=self.session.where)
                if cancel.wait(min(interval, max(0.0, deadline - time.monotonic()))):
                    raise Interrupted(f"cancelled while waiting for node {node_id}")
                interval = min(2 * interval, self.poll_interval)

    def _read_states(self, node_ids: Sequence[str]) -> dict[str, NodeInfo | None]:
        """The nodes of ``node_ids`` as they are now (None: not found): one look-up for one
        node, else listings filtered by IDS_PER_LISTING ids at a time (EC2), or one listing of
        every node (drivers that cannot filter)."""
        if len(node_ids) == 1:
            return {node_ids[0]: self._node(node_ids[0])}
        found: dict[str, NodeInfo | None] = dict.fromkeys(node_ids)
        step = IDS_PER_LISTING if ec2pages.is_ec2(self.session.driver) else len(node_ids)
        for start in range(0, len(node_ids), step):
            found.update(self._listed(node_ids[start:start + step]))
        return found

    @retried
    def _listed(self, node_ids: Sequence[str]) -> dict[str, NodeInfo]:
        with self.session.translating(f"look up {len(node_ids)} nodes"):
            nodes = [node_info(node) for node in self._native_nodes(node_ids)]
        return {node.id: node for node in nodes if node.id in node_ids}

    @retried
    def destroy_node(self, node_id: str) -> bool:
        native = self._native_node(node_id)
        if native is None or node_info(native).state in GONE_STATES:
            return False
        with self.session.translating(f"destroy node {node_id}"):
            self.session.driver.destroy_node(native)
        return True

    @retried
    def _node(self, node_id: str) -> NodeInfo | None:
        native = self._native_node(node_id)
        return node_info(native) if native is not None else None

    def _native_node(self, node_id: str) -> Any:
        with self.session.translating(f"look up node {node_id}"):
            return next((node for node in self._native_nodes([node_id]) if str(node.id) == node_id), None)

    def _native_nodes(self, node_ids: Collection[str]) -> list[Any]:
        """The listing that holds these nodes: EC2 filters it by id (a miss is an empty answer,
        not an error), so a look-up costs one small answer, not the whole account's nodes."""
        driver = self.session.driver
        filters = {"instance-id": sorted(node_ids)} if ec2pages.is_ec2(driver) else None
        return ec2pages.list_nodes(driver, filters=filters)

    # -- firewalls -----------------------------------------------------------------------

    @property
    def supports_firewalls(self) -> bool:
        return self._firewalls().supported

    @property
    def firewalls_at_creation(self) -> bool:
        return self._firewalls().at_creation(self.session.driver)

    @retried
    def attached_firewalls(self, node_ids: Collection[str]) -> dict[str, frozenset[str]]:
        if not node_ids or not self.supports_firewalls:
            return {}
        wanted, firewalls = sorted(set(node_ids)), self._firewalls()
        nodes = []
        for start in range(0, len(wanted), IDS_PER_LISTING):
            chunk = wanted[start:start + IDS_PER_LISTING]
            with self.session.translating(f"list the firewalls of {len(chunk)} nodes"):
                nodes += self._native_nodes(chunk)
        return {str(node.id): firewalls.attached(node) for node in nodes if str(node.id) in node_ids}

    @retried
    def list_firewalls(self) -> list[FirewallInfo]:
        with self.session.translating("list firewalls"):
            return self._firewalls().list(self.session.driver)

    @retried
    def find_firewall(self, name: str) -> FirewallInfo | None:
        with self.session.translating(f"find firewall {name}"):
            return self._firewalls().find(self.session.driver, name)

    def create_firewall(
        self, name: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str] | None = None,
        on_created: Callable[[str], None] | None = None,
    ) -> FirewallInfo:
        labels = labels or {}
        firewall_id = retry_requests(lambda: self._create_firewall(name, labels))
        if on_created is not None:
            on_created(firewall_id)  # before any other request: whatever fails next, the caller knows it
        return self.set_firewall_rules(firewall_id, rules, labels=labels)

    def _create_firewall(self, name: str, labels: dict[str, str]) -> str:
        """One attempt: the new firewall's id. After a failure, a firewall of that name carrying
        ``labels`` is this request's own, executed but its answer lost: it is not made twice."""
        try:
            with self.session.translating(f"create firewall {name}"):
                return self._firewalls().create(self.session.driver, name, labels)
        except FailoverError:
            found = self.find_firewall(name) if labels else None
            if found is not None and labels.items() <= found.labels.items():
                return found.id
            raise

    def set_firewall_rules(
        self, firewall_id: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str] | None = None
    ) -> FirewallInfo:
        return self._firewalls().converge(self.session.driver, firewall_id, list(rules), labels or {}, self._request)

    def _request(self, what: str, call: Callable[[], T]) -> T:
        def attempt() -> T:
            with self.session.translating(what):
                return call()

        return retry_requests(attempt)

    @retried
    def attach_firewall(self, firewall_id: str, node_id: str) -> None:
        node = self._native_node(node_id)
        if node is None:
            raise OperationFailed(f"no node {node_id} to attach firewall {firewall_id} to", where=self.session.where)
        with self.session.translating(f"attach firewall {firewall_id} to node {node_id}"):
            self._firewalls().attach(self.session.driver, firewall_id, node)

    @retried
    def delete_firewall(self, firewall_id: str) -> bool:
        with self.session.translating(f"delete firewall {firewall_id}"):
            return self._firewalls().delete(self.session.driver, firewall_id)

    def _firewalls(self) -> Any:
        with self.session.translating("connect"):
            return firewalls_for(self.session.driver, self.spec.driver)


class NodeStates:
    """The states of the nodes being waited for, read for all their waiters at once.

    A waiter registers its node (``watching``), then asks for a reading newer than the last it
    had (``newer``). When there is none and nobody is reading, it reads every registered node
    (``read(ids)``: one listing filtered by their ids), so the waiters sleeping meanwhile find
    theirs fresh when they wake and ask the provider nothing; when someone is reading, it waits
    for that reading, and reads itself if that one did not cover its node. A failed reading
    raises in the thread that made it; the others read again themselves.
    """

    def __init__(self, read: Callable[[Sequence[str]], dict[str, NodeInfo | None]]) -> None:
        self._read = read
        self._changed = threading.Condition()
        self._waiters: Counter[str] = Counter()
        self._readings: dict[str, tuple[int, NodeInfo | None]] = {}  # node id -> (reading number, state)
        self._count = 0
        self._reading = False

    @contextmanager
    def watching(self, node_id: str) -> Iterator[None]:
        with self._changed:
            self._waiters[node_id] += 1
        try:
            yield
        finally:
            with self._changed:
                self._waiters[node_id] -= 1
                if not self._waiters[node_id]:
                    del self._waiters[node_id]
                    self._readings.pop(node_id, None)

    def newer(self, node_id: str, *, than: int, cancel: threading.Event) -> tuple[int, NodeInfo | None]:
        """(reading number, the node as read then) from a reading numbered above ``than``."""
        with self._changed:
            while True:
                reading = self._readings.get(node_id)
                if reading is not None and reading[0] > than:
                    return reading
                if not self._reading:
                    break
                self._changed.wait(READING_WAIT)
                if cancel.is_set():
                    raise Interrupted(f"cancelled while waiting for node {node_id}")
            self._reading = True
            node_ids = sorted(self._waiters)
        try:
            found = self._read(node_ids)
        except BaseException:
            with self._changed:
                self._reading = False
                self._changed.notify_all()
            raise
        with self._changed:  # the reading stored and the next one allowed at the same instant
            self._count += 1
            for read_id in node_ids:
                if read_id in self._waiters:
                    self._readings[read_id] = (self._count, found.get(read_id))
            self._reading = False
            self._changed.notify_all()
            return self._readings[node_id]


def _spelled(location: Any) -> str:
    """Both ways a profile may name a location: "nyc1 (New York 1)", "0 (us-east-1a)"."""
    return str(location.id) if location.name in (None, "", str(location.id)) else f"{location.id} ({location.name})"


def creation_keywords(driver: Any, user_data: str | None, labels: dict[str, str]) -> dict[str, Any]:
    """The vendor-specific ``create_node`` keywords that carry user data and labels."""
    accepted = inspect.signature(driver.create_node).parameters
    keywords: dict[str, Any] = {}
    if user_data is not None:
        keyword = next((k for k in USER_DATA_KEYWORDS if k in accepted), None)
        if keyword is not None:
            keywords[keyword] = user_data
        elif "ex_metadata" in accepted and "ex_labels" in accepted:  # GCE: cloud-init reads "user-data"
            keywords["ex_metadata"] = {"user-data": user_data}
        else:
            raise OperationFailed(f"libcloud's {type(driver).__name__} cannot pass user data to a new node")
    if labels:
        keywords.update(_label_keywords(driver, accepted, labels, metadata_taken="ex_metadata" in keywords))
    if "root_pass" in accepted:
        # Linode refuses an image without a root password. Nobody is meant to use it (access is
        # by the keys the user data installs): a random one, never stored, logged or returned.
        keywords["root_pass"] = secrets.token_urlsafe(24) + "-Aa1"
    return keywords


def _label_keywords(driver: Any, accepted: Any, labels: dict[str, str], metadata_taken: bool) -> dict[str, Any]:
    string_tags = str(getattr(driver, "type", "")) in STRING_TAG_PROVIDERS
    if "ex_create_attr" in accepted:  # DigitalOcean: tags travel in the request body
        return {"ex_create_attr": {"tags": tag_strings(labels)}}
    if "ex_labels" in accepted:
        return {"ex_labels": labels}
    if "ex_metadata" in accepted and not metadata_taken:
        return {"ex_metadata": labels}
    if "ex_tags" in accepted:
        return {"ex_tags": tag_strings(labels) if string_tags else labels}
    return {}  # no way to label: nodes are still found again by their deterministic names
