"""Target firewalls made from the snapshot's security groups: what ``provision-nodes`` (the
firewalls its nodes are created in) and ``apply-firewall`` (the rest of their rules, and the
attachments a driver could not make at creation) share.

A group's rules are translated for the target: CIDR sources kept, a source that names a
group replaced by the private addresses of that group's members on the target. Before the
members exist only the rules of fixed sources can be written (``initial_rules``): a firewall
made then admits less, never more, until apply-firewall adds the others.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from failover.actions.base import ActionContext
from failover.cloudinit import comment_text, rule_problem
from failover.errors import Interrupted
from failover.manifest import Firewall, FirewallRule, LoadBalancer, Manifest, Node
from failover.naming import firewall_names
from failover.nodes import (
    RUN_LABEL,
    SOURCE_LABEL,
    check_adoptable,
    node_firewalls,
    recorded,
    run_labels,
    snapshot_groups,
)
from failover.ports import ComputeTarget, FirewallInfo, FirewallRuleInfo

NO_PORT = -1  # EC2's "every port" (and every ICMP type), written None on the target
STEP_LABEL = "failover-step"  # which step of the run made a resource (ActionContext.labels)


@dataclass(frozen=True)
class TargetNode:
    """A node provision-nodes put on the target."""

    source_id: str
    id: str
    name: str
    private_ip: str | None


def delete_firewalls(ctx: ActionContext, compute: ComputeTarget, groups: Sequence[Firewall]) -> None:
    """Delete the firewalls this step made: those it journaled, and those of the groups'
    names carrying this run's label and this step's (or no step label: made before the
    journal heard of it). A firewall ``provision-nodes`` made is left to its undo, which
    runs once its nodes are gone."""
    ids = {item["id"]: item.get("name", item["id"]) for item in ctx.created if item["kind"] == "firewall"}
    names = firewall_names(ctx.manifest, ctx.naming_service)
    for group in groups:
        found = compute.find_firewall(names[group.id])
        if found is not None and found.labels.get(RUN_LABEL) == ctx.run_id \
                and found.labels.get(STEP_LABEL, ctx.step_id) == ctx.step_id:
            ids.setdefault(found.id, found.name)
    for firewall_id, name in sorted(ids.items()):
        if compute.delete_firewall(firewall_id):
            ctx.info(f"deleted firewall {name} ({firewall_id})")


def translate_rules(
    group: Firewall, members: dict[str, list[Node]], on_target: dict[str, TargetNode]
) -> tuple[list[FirewallRuleInfo], list[str]]:
    """The group's rules for the target, and the rules dropped (with why)."""
    rules, dropped = [], []
    for rule in group.rules:
        sources: list[str] = []
        for source in rule.sources:
            if is_cidr(source):
                sources.append(source)
            else:
                peers = [on_target[node.id] for node in members.get(source, []) if node.id in on_target]
                sources += [host_network(peer.private_ip) for peer in peers if peer.private_ip]
        if sources:
            rules.append(FirewallRuleInfo(
                rule.direction, rule.protocol, rule_port(rule.port_from), rule_port(rule.port_to), tuple(sorted(set(sources)))
            ))
        else:
            groups = ", ".join(rule.sources)
            dropped.append(f"{group.id} ({group.name}): {describe_rule(rule)}: no member of {groups} is on the target")
    return rules, dropped


def describe_rule(rule: FirewallRule) -> str:
    if rule.port_from is None:
        ports = "all ports"
    elif rule.port_from == rule.port_to:
        ports = f"port {rule.port_from}"
    else:
        ports = f"ports {rule.port_from}-{rule.port_to}"
    protocol = "all protocols" if rule.protocol == "-1" else rule.protocol
    return f"{rule.direction} {protocol} {ports}"


# -- at node creation (provision-nodes) --------------------------------------------------------


def at_creation(compute: ComputeTarget) -> bool:
    """Whether the target's nodes can be created inside their firewalls."""
    return compute.supports_firewalls and getattr(compute, "firewalls_at_creation", False)


def initial_rules(group: Firewall) -> list[FirewallRuleInfo]:
    """The rules a firewall can hold before its group's members exist: those of fixed (CIDR)
    sources. The rules naming groups need the members' new addresses: apply-firewall adds them."""
    return translate_rules(group, {}, {})[0]


def creation_firewalls(ctx: ActionContext, nodes: Sequence[Node]) -> dict[str, FirewallInfo]:
    """Source group id -> the target firewall the nodes of that group are created in, each made
    (or found, when this run made it) before the nodes, holding its ``initial_rules``.

    A firewall of that name that this run did not make is left to apply-firewall, which
    adopts it when its rules are the group's, else stops; the nodes are not created in it."""
    compute = ctx.targets.compute
    names = firewall_names(ctx.manifest, ctx.naming_service)
    groups = groups_of(ctx.manifest, nodes)

    def ensure(group: Firewall) -> FirewallInfo | None:
        name, rules = names[group.id], initial_rules(group)
        labels = {**run_labels(ctx), SOURCE_LABEL: group.id}
        existing = compute.find_firewall(name)
        if existing is None:
            if ctx.cancel.is_set():
                raise Interrupted(f"cancelled before creating firewall {name}")

            def journal(firewall_id: str) -> None:
                ctx.record("firewall", firewall_id, name=name, source_id=group.id)

            created = compute.create_firewall(name, rules, labels=labels, on_created=journal)
            ctx.info(f"created firewall {name} ({created.id}) from {group.id} before its nodes, "
                     f"with its {len(rules)} rules of fixed sources")
            return created
        check_adoptable(ctx, "firewall", name, existing.id, existing.labels)
        if existing.labels.get(RUN_LABEL) != ctx.run_id and not recorded(ctx, existing.id):
            ctx.info(f"firewall {name} ({existing.id}) exists, not made by this run: its nodes are created "
                     f"without it, and apply-firewall adopts it (when its rules are {group.id}'s) and attaches it")
            return None
        if not recorded(ctx, existing.id):
            ctx.record("firewall", existing.id, name=name, source_id=group.id)
        if not _holds_initial(existing, group, rules):
            return compute.set_firewall_rules(existing.id, rules, labels=labels)
        return existing

    made = {group.id: ensure(group) for group in groups}  # a few requests each, before any node
    return {group_id: firewall for group_id, firewall in made.items() if firewall is not None}


def _holds_initial(existing: FirewallInfo, group: Firewall, rules: Sequence[FirewallRuleInfo]) -> bool:
    """Whether a firewall of this run holds the initial rules and nothing else but rules that
    apply-firewall adds (host addresses on a rule that names a group): then it is left as it is."""
    have, want = rule_set(existing.rules), rule_set(rules)
    shapes = {(rule.direction, str(rule.protocol).lower(), rule_port(rule.port_from), rule_port(rule.port_to))
              for rule in group.rules if any(not is_cidr(source) for source in rule.sources)}
    return want <= have and all(fact[:4] in shapes and _is_host(fact[4]) for fact in have - want)


def _is_host(source: str) -> bool:
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return network.prefixlen == network.max_prefixlen


def groups_of(manifest: Manifest, nodes: Sequence[Node]) -> list[Firewall]:
    """The security groups of ``nodes``, each once (ManifestError when the snapshot lacks one)."""
    groups = {group.id: group for node in nodes for group in node_firewalls(manifest, node)}
    return [groups[group_id] for group_id in sorted(groups)]


def rule_set(rules: Sequence[FirewallRuleInfo]) -> set[tuple]:
    """Rules as (direction, protocol, from, to, source) facts: providers group sources differently."""
    return {
        (rule.direction, str(rule.protocol).lower(), rule_port(rule.port_from), rule_port(rule.port_to), source)
        for rule in rules
        for source in rule.sources
    }


def rule_port(port: int | None) -> int | None:
    return None if port is None or port == NO_PORT else port


def is_cidr(source: str) -> bool:
    try:
        ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return True


def host_network(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


# -- a load-balancer node's firewall, and the backends admitting it (provision-load-balancers) --

ANYWHERE = ("0.0.0.0/0", "::/0")
_TCP = frozenset({"tcp", "6", "-1", "all"})


@dataclass(frozen=True)
class BalancerFirewall:
    """The firewall of a load-balancer node: its listeners' ports (and port 80 for ACME), from
    anywhere or from the CIDRs the balancer's own security groups admitted; egress to anywhere
    (its backends, the distribution's mirrors, ACME). ``notes`` says what was left out, and why."""

    name: str
    rules: tuple[FirewallRuleInfo, ...]
    notes: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        return [f"{rule.direction} {rule.protocol} "
                f"{'all ports' if rule.port_from is None else f'port {rule.port_from}'} from {', '.join(rule.sources)}"
                for rule in self.rules]


def balancer_groups(manifest: Manifest, balancer: LoadBalancer) -> list[Firewall]:
    """The snapshot's security groups of a balancer; ManifestError when the snapshot lacks one
    (its rules are unknown: admitting from anywhere instead would open what the source closed)."""
    return snapshot_groups(manifest, balancer.security_groups, field=f"{balancer.id}.security_groups",
                           owner=f"load balancer {balancer.name!r}",
                           hint="take a new snapshot (inventory brings a balancer's groups in)")


def balancer_firewall(
    manifest: Manifest, balancer: LoadBalancer, name: str, ports: Sequence[int], *, acme: bool, ipv6: bool
) -> BalancerFirewall:
    """What the load-balancer node admits. Without security groups in the snapshot (a classic
    or network balancer without any), each listener port from anywhere; with them, from the
    CIDRs of their ingress rules covering the port (a rule naming a group is left out: no node
    of the target is that group's). ``ipv6`` False: the target's firewall API takes IPv4 only."""
    groups = balancer_groups(manifest, balancer)
    notes: list[str] = []
    by_port: dict[int, set[str]] = {}
    for port in sorted(set(ports)):
        if not groups:
            by_port[port] = set(ANYWHERE)
            continue
        sources: set[str] = set()
        for group in groups:
            for rule in group.rules:
                if rule.direction != "ingress" or str(rule.protocol).lower() not in _TCP or not _covers(rule, port):
                    continue
                for source in rule.sources:
                    if is_cidr(source):
                        sources.add(str(ipaddress.ip_network(source, strict=False)))
                    else:
                        notes.append(f"port {port}: a rule of the balancer's group {comment_text(group.id)} admits "
                                     f"the group {comment_text(source)}, which no node of the target is: left out")
        if not sources:
            notes.append(f"port {port}: the balancer's security groups admit it from no address: closed")
        by_port[port] = sources
    if acme:
        by_port[80] = by_port.get(80, set()) | set(ANYWHERE)  # ACME's HTTP-01 validators come from anywhere
    if not ipv6 and any(":" in source for sources in by_port.values() for source in sources):
        notes.append("IPv6 sources left out: the target's firewall API takes IPv4 addresses only")
    rules = [
        FirewallRuleInfo("ingress", "tcp", port, port, tuple(sorted(s for s in sources if ipv6 or ":" not in s)))
        for port, sources in sorted(by_port.items())
    ]
    rules = [rule for rule in rules if rule.sources]
    egress = ANYWHERE if ipv6 else ANYWHERE[:1]
    rules.append(FirewallRuleInfo("egress", "-1", None, None, egress))
    return BalancerFirewall(name, tuple(rules), tuple(dict.fromkeys(notes)))


def _covers(rule: FirewallRule, port: int) -> bool:
    low, high = rule_port(rule.port_from), rule_port(rule.port_to)
    if low is None:
        return True
    return low <= port <= (high if high is not None else low)


def as_firewall(balancer: LoadBalancer, firewall: BalancerFirewall) -> Firewall:
    """The balancer's firewall as a security group, for the cloud-init nftables renderer."""
    rules = [FirewallRule(direction=rule.direction, protocol=rule.protocol, port_from=rule.port_from,
                          port_to=rule.port_to, sources=list(rule.sources)) for rule in firewall.rules]
    return Firewall(id=firewall.name, name=firewall.name, region=balancer.region, tags={}, rules=rules)


def balancer_sourced(manifest: Manifest, balancer: LoadBalancer) -> list[tuple[Firewall, FirewallRule]]:
    """The ingress rules of the snapshot's other security groups whose source is one of the
    balancer's: the backends admitting the balancer's traffic (AWS's samples write them so).
    A rule whose protocol or ports are not plain data is left out (see ``balancer_sourced_refused``)."""
    return [(group, rule) for group, rule in _sourced(manifest, balancer) if rule_problem(rule) is None]


def balancer_sourced_refused(manifest: Manifest, balancer: LoadBalancer) -> list[str]:
    """Those rules left out, each "<group>: <rule>: <why>" (the backends admit less, never more)."""
    return [f"{comment_text(group.id)}: a rule from the balancer's group: {why}"
            for group, rule in _sourced(manifest, balancer) if (why := rule_problem(rule)) is not None]


def _sourced(manifest: Manifest, balancer: LoadBalancer) -> list[tuple[Firewall, FirewallRule]]:
    own = set(balancer.security_groups)
    return [
        (group, rule) for group in manifest.of_kind("firewall") if group.id not in own
        for rule in group.rules if rule.direction == "ingress" and own.intersection(rule.sources)
    ]


def admitting(rule: FirewallRule, address: str) -> FirewallRuleInfo:
    """``rule`` with the load-balancer node's (private) address as its only source."""
    return FirewallRuleInfo(rule.direction, rule.protocol, rule_port(rule.port_from), rule_port(rule.port_to),
                            (host_network(address),))
