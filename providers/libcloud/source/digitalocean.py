"""DigitalOcean (API v2): tags are ``key:value`` strings, a droplet's region is written as its
name (``San Francisco 3``; the reader's caller resolves it to the slug), user data is not
readable through the API, and firewalls come from ``GET /v2/firewalls`` over the driver's own
connection (libcloud has no ``ex_`` call for them): a firewall applies to a droplet by its id or
by one of its tags."""

from __future__ import annotations

from typing import Any

from failover.manifest import Firewall, FirewallRule, Unsupported
from providers.libcloud.source.readers import Firewalls, NodeReader

FIREWALLS_PATH = "/v2/firewalls"
PAGE_SIZE = 200
ALL_PORTS = ("", "0", "all")


class DigitalOceanNodes(NodeReader):
    user_data_unknown = "DigitalOcean's API gives a droplet's user data only to the droplet itself"
    firewalls_unknown = None

    def firewalls(self, nodes: list[Any], selector: dict[str, str], region: str) -> Firewalls:
        node_tags = {str(node.id): set((node.extra or {}).get("tags") or ()) for node in nodes}
        of_node: dict[str, list[str]] = {node_id: [] for node_id in node_tags}
        found, refused = [], []
        for item in self._all_firewalls():
            applies_to = {str(droplet) for droplet in item.get("droplet_ids") or ()}
            tags = set(item.get("tags") or ())
            nodes_of = sorted(node for node, carried in node_tags.items() if node in applies_to or carried & tags)
            if not nodes_of:
                continue
            for node in nodes_of:
                of_node[node].append(str(item["id"]))
            labels = dict(_split(tag) for tag in item.get("tags") or ())
            rules = []
            written = [("ingress", rule, "sources") for rule in item.get("inbound_rules") or ()]
            written += [("egress", rule, "destinations") for rule in item.get("outbound_rules") or ()]
            for direction, rule, peers in written:
                try:
                    rules.append(_rule(direction, rule, rule.get(peers)))
                except (TypeError, ValueError, AttributeError) as exc:
                    refused.append(Unsupported(
                        type="digitalocean:firewall-rule", id=str(item["id"]), name=str(item.get("name") or ""),
                        region=region, reason=f"{direction} rule left out (the node admits less): cannot read it: {exc}"))
            found.append(Firewall(
                id=str(item["id"]), name=str(item.get("name") or item["id"]), region=region, tags=labels,
                owned=all(labels.get(key) == value for key, value in selector.items()) if selector else False,
                rules=rules,
            ))
        return Firewalls(firewalls=found, of_node=of_node, refused=refused)

    def _all_firewalls(self) -> list[dict[str, Any]]:
        items, page = [], 1
        while True:
            answer = self.driver.connection.request(FIREWALLS_PATH, params={"page": page, "per_page": PAGE_SIZE}).object
            items += answer.get("firewalls") or []
            if not (answer.get("links") or {}).get("pages", {}).get("next"):
                return items
            page += 1


def _rule(direction: str, rule: dict[str, Any], peers: dict[str, Any] | None) -> FirewallRule:
    """A DigitalOcean rule: ``ports`` "80", "8000-9000", "all" or "0"; peers are addresses (CIDRs or
    single IPs), tags, droplet ids and load balancers; only addresses and droplet ids are sources
    the manifest can carry (a tag names droplets of the account, carried as ``tag:NAME``)."""
    protocol = str(rule.get("protocol") or "-1").lower()
    ports = str(rule.get("ports") or "").lower()
    if protocol == "icmp" or ports in ALL_PORTS:
        port_from = port_to = None
    else:
        first, _, last = ports.partition("-")
        port_from, port_to = int(first), int(last or first)
    peers = peers or {}
    sources = [_cidr(address) for address in peers.get("addresses") or ()]
    sources += [f"tag:{tag}" for tag in peers.get("tags") or ()]
    sources += [f"droplet:{droplet}" for droplet in peers.get("droplet_ids") or ()]
    sources += [f"load_balancer:{uid}" for uid in peers.get("load_balancer_uids") or ()]
    return FirewallRule(direction=direction, protocol=protocol, port_from=port_from, port_to=port_to, sources=sources)


def _cidr(address: str) -> str:
    if "/" in address:
        return address
    return f"{address}/128" if ":" in address else f"{address}/32"


def _split(tag: str) -> tuple[str, str]:
    key, _, value = str(tag).partition(":")
    return key, value
