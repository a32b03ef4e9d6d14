"""Google Compute Engine: labels are a dict (``extra["labels"]``; ``extra["tags"]`` are network
tags, used only to match firewalls), a node runs in a zone (its region is the zone's name),
sizes and images are named, user data is the ``user-data`` (else ``startup-script``) metadata
item, and firewalls are the network's (``firewalls.list``, every page: libcloud's
``ex_list_firewalls`` reads the first, 500) that target the node: every instance of the
network, or those carrying one of the firewall's target tags."""

from __future__ import annotations

from typing import Any

from failover.errors import OperationFailed
from failover.manifest import Firewall, FirewallRule, Unsupported
from providers.libcloud.source.readers import Firewalls, ImageFacts, NodeReader
from providers.libcloud.values import labels_of

USER_DATA_KEYS = ("user-data", "startup-script")
FIREWALLS = "/global/firewalls"
MAX_PAGES = 10_000  # a bound: a service handing out page tokens forever is an error, not a hang


def every_firewall(driver: Any) -> list[Any]:
    """The project's firewalls, page after page (``nextPageToken``), as ``ex_list_firewalls`` makes them."""
    firewalls, params, seen = [], {}, set()
    for _ in range(MAX_PAGES):
        answer = driver.connection.request(FIREWALLS, method="GET", params=params).object
        firewalls += [driver._to_firewall(item) for item in answer.get("items", [])]
        token = answer.get("nextPageToken")
        if not token:
            return firewalls
        if token in seen:
            raise OperationFailed("firewalls.list handed out the same page token twice: the listing would not end")
        seen.add(token)
        params = {"pageToken": token}
    raise OperationFailed(f"firewalls.list still had more after {MAX_PAGES} pages")


class GceNodes(NodeReader):
    user_data_unknown = None
    firewalls_unknown = None

    def tags(self, node: Any) -> dict[str, str]:
        return labels_of({"labels": (node.extra or {}).get("labels") or {}})

    def region(self, node: Any) -> str:
        zone = (node.extra or {}).get("zone")
        return str(getattr(zone, "name", None) or zone or "global")

    def image(self, node: Any) -> ImageFacts:
        name = str(node.image) if node.image else None
        native = self.find_image(name)
        if native is None:
            return ImageFacts(name, name, None, None)
        extra = native.extra or {}
        return ImageFacts(name, str(native.name), extra.get("description"), extra.get("architecture"))

    def find_image(self, image_id: str | None) -> Any:
        if not image_id:
            return None
        if image_id not in self._images:
            self._images[image_id] = self.driver.ex_get_image(image_id)
        return self._images[image_id]

    def user_data(self, node: Any) -> str | None:
        items = ((node.extra or {}).get("metadata") or {}).get("items") or []
        values = {item.get("key"): item.get("value") for item in items if isinstance(item, dict)}
        return next((str(values[key]) for key in USER_DATA_KEYS if values.get(key)), None)

    def firewalls(self, nodes: list[Any], selector: dict[str, str], region: str) -> Firewalls:
        of_node: dict[str, list[str]] = {str(node.id): [] for node in nodes}
        found, refused = [], []
        for firewall in every_firewall(self.driver):
            network = getattr(firewall.network, "name", firewall.network)
            targets = set(firewall.target_tags or ())
            applies = [node for node in nodes if network in _networks(node)
                       and (not targets or targets & set((node.extra or {}).get("tags") or ()))]
            if not applies:
                continue
            for node in applies:
                of_node[str(node.id)].append(str(firewall.id))
            try:
                rules = _rules(firewall)
            except (TypeError, ValueError, AttributeError) as exc:
                rules = []
                refused.append(Unsupported(type="gce:firewall-rule", id=str(firewall.id), name=str(firewall.name),
                                           region="global", reason=f"rules left out (the node admits less): {exc}"))
            found.append(Firewall(id=str(firewall.id), name=str(firewall.name), region="global", owned=False,
                                  description=(firewall.extra or {}).get("description") or None,
                                  network=str(network), rules=rules))
        return Firewalls(firewalls=found, of_node=of_node, refused=refused)


def _networks(node: Any) -> set[str]:
    interfaces = (node.extra or {}).get("networkInterfaces") or []
    return {str(item.get("network", "")).rsplit("/", 1)[-1] for item in interfaces if isinstance(item, dict)}


def _rules(firewall: Any) -> list[FirewallRule]:
    """GCE allows by protocol and port list (``"22"``, ``"8000-9000"``; none: every port); denied
    rules cannot be carried as allow rules and are left out (the node admits less)."""
    direction = "egress" if str(firewall.direction or "").upper() == "EGRESS" else "ingress"
    peers = firewall.destination_ranges if direction == "egress" else firewall.source_ranges
    sources = [*(peers or ()), *(f"tag:{tag}" for tag in firewall.source_tags or ())]
    rules = []
    for allowed in firewall.allowed or ():
        protocol = str(allowed.get("IPProtocol", "-1")).lower()
        protocol = "-1" if protocol == "all" else protocol
        for ports in allowed.get("ports") or [None]:
            first, _, last = str(ports or "").partition("-")
            port_from = int(first) if first else None
            rules.append(FirewallRule(direction=direction, protocol=protocol, port_from=port_from,
                                      port_to=int(last) if last else port_from, sources=list(sources)))
    return rules
