"""Firewalls through the ``ex_`` APIs of the drivers that have one.

libcloud has no common firewall API; each vendor's is its own. Supported here: the EC2
family's security groups (EC2 itself and EC2-compatible clouds), which a node can be
created in (``at_creation``) or have attached later. Every other driver gets
:class:`NoFirewalls`, which says so instead of pretending.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.drivers.ec2 import NAMESPACE, BaseEC2NodeDriver
from libcloud.utils.xml import findattr

from failover.errors import OperationFailed
from failover.ports import FirewallInfo, FirewallRuleInfo
from providers.libcloud import ec2pages

# EC2's spelling of "every port" (and of "every ICMP type").
ANY_PORT = -1
# EC2's error codes for a rule authorized twice, and for revoking a rule that is not there.
DUPLICATE = "InvalidPermission.Duplicate"
NOT_FOUND = "InvalidPermission.NotFound"
# The create_node keyword of libcloud's EC2 driver naming the security groups a node starts in.
CREATION_KEYWORD = "ex_security_groups"

T = TypeVar("T")
# request(what, call): one provider request, translated and retried by the caller.
Request = Callable[[str, Callable[[], T]], T]


class NoFirewalls:
    """The driver has no firewall API in libcloud."""

    supported = False

    def __init__(self, driver_name: str) -> None:
        self.driver_name = driver_name

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise OperationFailed(f"libcloud's {self.driver_name} driver has no firewall API")

    find = create = converge = attach = delete = _unsupported

    def list(self, driver: Any) -> list[FirewallInfo]:
        return []

    def at_creation(self, driver: Any) -> bool:
        return False

    def attached(self, node: Any) -> frozenset[str]:
        return frozenset()


class Ec2SecurityGroups:
    """Security groups of an EC2-family driver (in the account's default VPC)."""

    supported = True

    def list(self, driver: Any) -> list[FirewallInfo]:
        return [_firewall_info(group) for group in ec2pages.security_groups(driver)]

    def find(self, driver: Any, name: str) -> FirewallInfo | None:
        groups = ec2pages.security_groups(driver, filters={"group-name": name})
        return _firewall_info(groups[0]) if groups else None

    def create(self, driver: Any, name: str, labels: dict[str, str]) -> str:
        """Create an empty group (EC2 gives it the allow-all egress) carrying ``labels`` from
        its first instant (tags in the creating request): one request; the group's id."""
        params = {"Action": "CreateSecurityGroup", "GroupName": name, "GroupDescription": f"{name} (failover)"}
        if labels:
            params["TagSpecification.1.ResourceType"] = "security-group"
            params.update(_tag_params(labels, prefix="TagSpecification.1.Tag"))
        response = driver.connection.request(driver.path, params=params).object
        return findattr(element=response, xpath="groupId", namespace=NAMESPACE)

    def converge(
        self, driver: Any, firewall_id: str, rules: Sequence[FirewallRuleInfo], labels: dict[str, str], request: Request
    ) -> FirewallInfo:
        """Make the group hold exactly ``rules`` (and carry ``labels``) from whatever state it is
        in: the missing rules authorized, the others revoked. Each request goes through
        ``request(what, call)`` (retried there), and each is idempotent: a rule found there
        already (or gone already) is what was wanted, as after a request whose answer was lost."""
        group = _firewall_info(request(f"look up firewall {firewall_id}", lambda: self._group(driver, firewall_id)))
        missing_labels = {key: value for key, value in labels.items() if group.labels.get(key) != value}
        if missing_labels:
            request(f"tag firewall {firewall_id}", lambda: _tag(driver, firewall_id, missing_labels))
        have, want = _permissions(group.rules), _permissions(rules)
        for permission in sorted(set(have) - set(want), key=repr):
            sources = have[permission]
            request(f"revoke a rule of firewall {firewall_id}",
                    lambda p=permission, s=sources: _tolerating(NOT_FOUND, _revoke, driver, firewall_id, p, s))
        for permission in sorted(want, key=repr):
            current = have.get(permission, set())
            extra, lacking = current - want[permission], want[permission] - current
            if extra:
                request(f"revoke a rule of firewall {firewall_id}",
                        lambda p=permission, s=extra: _tolerating(NOT_FOUND, _revoke, driver, firewall_id, p, s))
            if lacking:
                request(f"authorize a rule of firewall {firewall_id}",
                        lambda p=permission, s=lacking: _tolerating(DUPLICATE, _authorize, driver, firewall_id, p, s))
        return _firewall_info(request(f"look up firewall {firewall_id}", lambda: self._group(driver, firewall_id)))

    def at_creation(self, driver: Any) -> bool:
        """Whether ``create_node`` takes security groups (by name: the groups failover makes are
        in the default VPC, where RunInstances accepts names without a subnet; libcloud sends
        ids only beside a subnet)."""
        return CREATION_KEYWORD in inspect.signature(driver.create_node).parameters

    @staticmethod
    def creation_keywords(firewalls: Sequence[FirewallInfo]) -> dict[str, Any]:
        return {CREATION_KEYWORD: [firewall.name for firewall in firewalls]}

    def attached(self, node: Any) -> frozenset[str]:
        return frozenset(group["group_id"] for group in node.extra.get("groups", []) if group.get("group_id"))

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
    params = {"Action": "CreateTags", "ResourceId.1": resource_id, **_tag_params(tags, prefix="Tag")}
    driver.connection.request(driver.path, params=params)


def _tag_params(tags: dict[str, str], *, prefix: str) -> dict[str, str]:
    params = {}
    for index, (key, value) in enumerate(tags.items(), start=1):
        params[f"{prefix}.{index}.Key"], params[f"{prefix}.{index}.Value"] = key, value
    return params


# (direction, protocol, from, to): one EC2 permission, whose sources are authorized or revoked together.
Permission = tuple[str, str, int | None, int | None]


def _permissions(rules: Sequence[FirewallRuleInfo]) -> dict[Permission, set[str]]:
    """Rules as permissions and their sources: providers group the same sources differently."""
    permissions: dict[Permission, set[str]] = {}
    for rule in rules:
        key = (rule.direction, str(rule.protocol).lower(), _port(rule.port_from), _port(rule.port_to))
        permissions.setdefault(key, set()).update(rule.sources)
    return permissions


def _tolerating(code: str, change: Callable[..., None], *args: Any) -> None:
    """``change(*args)``, an EC2 error ``code`` meaning that it was made already (by an
    earlier request whose answer was lost, or by another attempt)."""
    try:
        change(*args)
    except BaseHTTPError as exc:
        if not str(exc).startswith(code):
            raise


def _authorize(driver: Any, group_id: str, permission: Permission, sources: set[str]) -> None:
    ingress = permission[0] == "ingress"
    method = driver.ex_authorize_security_group_ingress if ingress else driver.ex_authorize_security_group_egress
    method(group_id, **_permission(permission, sources))


def _revoke(driver: Any, group_id: str, permission: Permission, sources: set[str]) -> None:
    ingress = permission[0] == "ingress"
    method = driver.ex_revoke_security_group_ingress if ingress else driver.ex_revoke_security_group_egress
    method(group_id, **_permission(permission, sources))


def _permission(permission: Permission, sources: set[str]) -> dict[str, Any]:
    _, protocol, port_from, port_to = permission
    cidrs = sorted(source for source in sources if "/" in source)
    groups = [{"group_id": source} for source in sorted(sources) if "/" not in source]
    return {
        "protocol": protocol,
        "from_port": ANY_PORT if port_from is None else port_from,
        "to_port": ANY_PORT if port_to is None else port_to,
        "cidr_ips": cidrs or None,
        "group_pairs": groups or None,
    }


def _firewall_info(group: Any) -> FirewallInfo:
    rules = [_rule("ingress", rule) for rule in group.ingress_rules]
    rules += [_rule("egress", rule) for rule in group.egress_rules]
    return FirewallInfo(id=group.id, name=group.name, rules=tuple(rules), labels=dict(group.extra.get("tags") or {}))


def _rule(direction: str, rule: dict[str, Any]) -> FirewallRuleInfo:
    groups = (pair["group_id"] for pair in rule.get("group_pairs", []) if pair.get("group_id"))
    sources = [*rule.get("cidr_ips", []), *groups]
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
