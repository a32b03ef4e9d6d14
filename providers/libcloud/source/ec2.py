"""EC2 (and EC2-compatible clouds) through libcloud's EC2 driver: tags are a dict, the driver is
bound to one region, user data comes from ``DescribeInstanceAttribute`` and firewalls are the
nodes' security groups (``DescribeSecurityGroups``, every page)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from libcloud.compute.drivers.ec2 import NAMESPACE
from libcloud.utils.xml import findtext

from failover.manifest import Firewall, FirewallRule
from providers.libcloud import ec2pages
from providers.libcloud.firewalls import _firewall_info
from providers.libcloud.source.readers import Firewalls, NodeReader


class Ec2Nodes(NodeReader):
    user_data_unknown = None
    firewalls_unknown = None

    def region(self, node: Any) -> str:
        return str(self.driver.region_name)

    def zone(self, node: Any) -> str | None:
        return (node.extra or {}).get("availability") or None

    def user_data(self, node: Any) -> str | None:
        params = {"Action": "DescribeInstanceAttribute", "InstanceId": node.id, "Attribute": "userData"}
        answer = self.driver.connection.request(self.driver.path, params=params).object
        encoded = findtext(element=answer, xpath="userData/value", namespace=NAMESPACE)
        if not encoded:
            return None
        try:
            return base64.b64decode(encoded).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return None

    def firewalls(self, nodes: list[Any], selector: dict[str, str], region: str) -> Firewalls:
        of_node = {
            str(node.id): sorted({group["group_id"] for group in (node.extra or {}).get("groups") or () if group.get("group_id")})
            for node in nodes
        }
        wanted = sorted({group for groups in of_node.values() for group in groups})
        groups = ec2pages.security_groups(self.driver, ids=wanted) if wanted else []
        found = []
        for group in groups:
            info = _firewall_info(group)
            owned = bool(selector) and all(info.labels.get(key) == value for key, value in selector.items())
            found.append(Firewall(
                id=info.id, name=info.name, region=region, tags=dict(info.labels), owned=owned,
                description=(group.extra or {}).get("description"), network=(group.extra or {}).get("vpc_id"),
                rules=[FirewallRule(direction=rule.direction, protocol=_protocol(rule.protocol), port_from=rule.port_from,
                                    port_to=rule.port_to, sources=list(rule.sources)) for rule in info.rules],
            ))
        return Firewalls(firewalls=found, of_node=of_node)


def _protocol(protocol: str) -> str:
    """EC2's "all protocols" is -1 in the manifest, whatever the driver parsed."""
    return "-1" if protocol in ("-1", "None", "") else protocol
