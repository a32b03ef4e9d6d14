"""Firewalls through the ``ex_`` APIs of the drivers that have one.

libcloud has no common firewall API; each vendor's is its own. Supported here: the EC2
family's security groups (EC2 itself and EC2-compatible clouds). Every other driver
gets :class:`NoFirewalls`, which says so instead of pretending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libcloud.compute.drivers.ec2 import BaseEC2NodeDriver

from failover.errors import OperationFailed
from failover.ports import FirewallInfo, FirewallRuleInfo

ALL_PROTOCOLS = "-1"
# EC2's spelling of "every port" (and of "every ICMP type").
ANY_PORT = -1
_DEFAULT_EGRESS = FirewallRuleInfo("egress", ALL_PROTOCOLS, None, None, ("0.0.0.0/0",))


class NoFirewalls:
    """The driver has no firewall API in libcloud."""

    supported = False

    def __init__(self, driver_name: str) -> None:
        self.driver_name = driver_name

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise OperationFailed(f"libcloud's {self.driver_name} driver has no firewall API")

    find = create = attach = delete = _unsupported

    def list(self, driver: Any) -> list[FirewallInfo]:
        return []


class Ec2SecurityGroups:
    """Security groups of an EC2-family driver (in the account's default VPC)."""

    supported = True

    def list(self, driver: Any) -> list[FirewallInfo]:
        return [_firewall_info(group) for group in driver.ex_get_security_groups()]

    def find(self, driver: Any, name: str) -> FirewallInfo | None:
        groups = driver.ex_get_security_groups(filters={"group-name": name})
        return _firewall_info(groups[0]) if groups else None

    def create(self, driver: Any, name: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str]) -> FirewallInfo:
        group_id = driver.ex_create_security_group(name, f"{name} (failover)")["group_id"]
        if labels:
            _tag(driver, group_id, labels)
        if _DEFAULT_EGRESS not in rules:
            _revoke(driver, group_id, _DEFAULT_EGRESS)  # EC2 adds it to every new group
        for rule in rules:
            if rule != _DEFAULT_EGRESS:
                _authorize(driver, group_id, rule)
        return _firewall_info(self._group(driver, group_id))

    def attach(self, driver: Any, firewall_id: str, node: Any) -> None:
        current = [group["group_id"] for group in node.extra.get("groups", [])]
        wanted = current if firewall_id in current else [*current, firewall_id]
        attributes = {f"GroupId.{index}": group_id for index, group_id in enumerate(wanted, start=1)}
        driver.ex_modify_instance_attribute(node, attributes)

    def delete(self, driver: Any, firewall_id: str) -> bool:
        if not driver.ex_get_security_groups(filters={"group-id": firewall_id}):
            return False
        # Failures raise; the boolean libcloud returns reads an optional <return> element.
        driver.ex_delete_security_group_by_id(firewall_id)
        return True

    @staticmethod
    def _group(driver: Any, group_id: str) -> Any:
        return driver.ex_get_security_groups(group_ids=[group_id])[0]


def firewalls_for(driver: Any, driver_name: str) -> NoFirewalls | Ec2SecurityGroups:
    return Ec2SecurityGroups() if isinstance(driver, BaseEC2NodeDriver) else NoFirewalls(driver_name)


def _tag(driver: Any, resource_id: str, tags: dict[str, str]) -> None:
    # Not ex_create_tags: it numbers parameters from 0 where the API documents 1, and
    # EC2-compatible services (moto among them) then find no resource id.
    params = {"Action": "CreateTags", "ResourceId.1": resource_id}
    for index, (key, value) in enumerate(tags.items(), start=1):
        params[f"Tag.{index}.Key"], params[f"Tag.{index}.Value"] = key, value
    driver.connection.request(driver.path, params=params)


def _authorize(driver: Any, group_id: str, rule: FirewallRuleInfo) -> None:
    method = driver.ex_authorize_security_group_ingress if rule.direction == "ingress" else driver.ex_authorize_security_group_egress
    method(group_id, **_permission(rule))


def _revoke(driver: Any, group_id: str, rule: FirewallRuleInfo) -> None:
    method = driver.ex_revoke_security_group_ingress if rule.direction == "ingress" else driver.ex_revoke_security_group_egress
    method(group_id, **_permission(rule))


def _permission(rule: FirewallRuleInfo) -> dict[str, Any]:
    cidrs = [source for source in rule.sources if "/" in source]
    groups = [{"group_id": source} for source in rule.sources if "/" not in source]
    return {
        "protocol": rule.protocol,
        "from_port": ANY_PORT if rule.port_from is None else rule.port_from,
        "to_port": ANY_PORT if rule.port_to is None else rule.port_to,
        "cidr_ips": cidrs or None,
        "group_pairs": groups or None,
    }


def _firewall_info(group: Any) -> FirewallInfo:
    rules = [_rule("ingress", rule) for rule in group.ingress_rules] + [_rule("egress", rule) for rule in group.egress_rules]
    return FirewallInfo(id=group.id, name=group.name, rules=tuple(rules), labels=dict(group.extra.get("tags") or {}))


def _rule(direction: str, rule: dict[str, Any]) -> FirewallRuleInfo:
    sources = [*rule.get("cidr_ips", []), *(pair["group_id"] for pair in rule.get("group_pairs", []) if pair.get("group_id"))]
    return FirewallRuleInfo(
        direction=direction,
        protocol=str(rule.get("protocol")),
        port_from=_port(rule.get("from_port")),
        port_to=_port(rule.get("to_port")),
        sources=tuple(sources),
    )


def _port(value: Any) -> int | None:
    if value in (None, ""):
        return None
    port = int(value)
    return None if port == ANY_PORT else port
