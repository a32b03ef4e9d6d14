"""``provision-load-balancers``: every load balancer of the snapshot gets a counterpart on the
target, in front of the new nodes.

- Through the profile's ``loadbalancer:`` driver (libcloud's balancer API: one balancer per
  listener, ``<name>-<port>``) when the profile names one and the balancer has no HTTPS
  listener (that API carries no certificates);
- otherwise as a load-balancer node on the target's compute: HAProxy from the distribution's
  packages, configured by cloud-init with the listeners, the backends (the new nodes' private
  addresses) and the health checks; HTTPS listeners get their certificate from the profile's
  ``tls:`` or by ACME on the node (see :mod:`failover.haproxy`).

A balancer's backends are the new nodes, in the outputs of the steps this one needs, that
replace its targets (``failover.frontdoor.backend_entries``). The node is named
``<service>-lb-<source name>``, carries the run's labels, and is adopted by that name after a
crash instead of being created twice. A listener that cannot be carried (UDP, an HTTPS
listener without a way to a certificate) is refused, named in ``refused``, and the rest goes
on. Certificates and keys are read when the node is built (``${env:NAME}`` or a file) and go
only into its user data: never into the journal, the outputs or a message.

The load-balancer node has a firewall of its own (``failover.firewalls.balancer_firewall``):
its listeners' ports, from anywhere or from the CIDRs its balancer's security groups admitted,
and port 80 when ACME is used. Where the target has a firewall API it is a target firewall of
the node's name, made (journaled) before the node and the node created inside it (attached
right after where the driver takes none at creation), adopted by name after a crash, deleted
by undo after the node; elsewhere an nftables firewall in the node's cloud-init.

The backends admit the balancer: each rule of the snapshot's security groups whose source was
one of the balancer's groups is added, with the node's private address as its source, to the
target firewall of that group (made by provision-nodes / apply-firewall, which run before),
journaled before it is written (``firewall_rules``) and removed by undo; a rule there already is
not added twice. Without a firewall API the backends' nftables were written at their first
boot, before the balancer existed: such a rule admits their own private networks there (see
:mod:`failover.cloudinit`), so the balancer node is admitted only from within those networks,
and nothing wider is opened; the plan says so.

Outputs::

    load_balancers: {<source balancer id>: {name, id, via, address, private_ip, dns_name,
                     dns_names, listeners: [{protocol, port, backend_port, tls, domains,
                     health_check, backends: [{source_id, address, port}]}], refused, adopted}}
    dns_names:      {<the source balancer's DNS name>: <the new balancer's address>}

and, for a load-balancer node, ``firewall: {via, id, name, rules, notes}`` and
``backend_rules: [{firewall, id, rules, added}]`` in its entry.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.cloudinit import cloud_config as render_cloud_config
from failover.cloudinit import comment_text, firewall_cloud_config, with_cloud_config
from failover.config import TargetProfile, resolve_secrets
from failover.errors import ConfigError, InputError, Interrupted, NothingToDo, OperationFailed, Problem
from failover.firewalls import (
    STEP_LABEL,
    BalancerFirewall,
    admitting,
    as_firewall,
    at_creation,
    balancer_firewall,
    balancer_sourced,
    balancer_sourced_refused,
    describe_rule,
    rule_set,
)
from failover.frontdoor import VIA_DRIVER, BalancerPlan, node_entries, plan_balancer, profile_certificate
from failover.haproxy import certificate_file_name
from failover.haproxy import cloud_config as balancer_cloud_config
from failover.manifest import LoadBalancer, Manifest, Node
from failover.naming import firewall_names, node_names, target_names
from failover.nodes import (
    RUN_LABEL,
    SOURCE_LABEL,
    VIA_API,
    VIA_CLOUD_INIT,
    NodePlan,
    check_adoptable,
    destroy_nodes,
    ensure_nodes,
    map_onto_target,
    node_change,
    recorded,
    run_labels,
)
from failover.ports import ComputeTarget, FirewallInfo, FirewallRuleInfo

LB_INSTANCE_TYPE = "t3.small"  # what a load-balancer node is sized like (2 vCPUs, 2 GiB), unless `size`


class ProvisionLoadBalancersParams(Params):
    select: list[str] = Field(
        default_factory=list, description="Only the load balancers of these names (or source ids); default: all."
    )
    size: str | None = Field(None, description="Target size id of a load-balancer node (default: mapped from t3.small).")
    image: str | None = Field(
        None, description="Target image id of a load-balancer node (default: the image of its first backend's node).",
    )
    wait: bool = Field(True, description="Wait until every load-balancer node runs (its address is known then).")
    timeout: float = Field(600, gt=0, le=86400, description="Seconds to wait for the load-balancer nodes to run.")


def selected(manifest: Manifest, params: ProvisionLoadBalancersParams) -> list[LoadBalancer]:
    balancers = manifest.of_kind("load_balancer")
    missing = [name for name in params.select if not any(name in (lb.name, lb.id) for lb in balancers)]
    if missing:
        raise InputError([Problem(file="playbook", field="with.select",
                                  message=f"no load balancer {name!r} in the snapshot") for name in missing])
    return [lb for lb in balancers if not params.select or lb.name in params.select or lb.id in params.select]


def balancer_names(manifest: Manifest, service: str) -> dict[str, str]:
    """Source balancer id -> its name on the target: ``<service>-lb-<name>``, never a node's name."""
    balancers = manifest.of_kind("load_balancer")
    named = [lb.model_copy(update={"name": f"lb-{lb.name}"}) for lb in balancers]
    names = target_names(service, named)
    taken = set(node_names(manifest, service).values())
    return {lb_id: name if name not in taken else target_names(service, [
        lb.model_copy(update={"name": f"lb-{lb.name}-{lb.id}"}) for lb in named if lb.id == lb_id])[lb_id]
        for lb_id, name in names.items()}


@ACTIONS.register("provision-load-balancers")
class ProvisionLoadBalancers(Action):
    """Recreate the snapshot's load balancers in front of the new nodes (driver or HAProxy node)."""

    summary = ("Recreate the snapshot's load balancers on the target: listeners, health checks, backends (the new "
               "nodes), TLS from the profile or by ACME; through a libcloud balancer driver or a node running HAProxy.")
    Params = ProvisionLoadBalancersParams
    example = {"select": ["public web"], "wait": True, "timeout": 600}

    def plan(self, ctx: ActionContext, params: ProvisionLoadBalancersParams) -> list[Change]:
        plans = _plans(ctx, params)
        changes: list[Change] = []
        for plan in plans:
            listeners = "; ".join(_listener_text(lp) for lp in plan.listeners) or "no listener"
            if plan.via == VIA_DRIVER:
                balancers = ctx.targets.loadbalancer
                for lp in plan.listeners:
                    name = f"{plan.name}-{lp.port}"
                    existing = balancers.find_balancer(name)
                    operation, state = ("none", f"exists as {existing.id}: adopted") if existing else ("create", "")
                    changes.append(Change(operation, "load_balancer", name,
                                          f"through the loadbalancer driver: {_listener_text(lp)} {state}".strip()))
            else:
                node_plan = _node_plan(ctx, params, plan, user_data=None)
                change = node_change(ctx, node_plan, ctx.targets.compute.find_node(node_plan.name))
                changes.append(Change(change.operation, "load_balancer", plan.name,
                                      f"a load-balancer node (HAProxy): {listeners}; {change.detail}"))
                changes += _firewall_changes(ctx, plan)
            for lp in plan.listeners:
                if lp.tls is not None:
                    how = (f"from the profile's tls: ({', '.join(lp.domains)})" if lp.tls == "profile" else
                           f"by ACME on the load-balancer node once DNS points at it ({', '.join(lp.domains)})")
                    changes.append(Change("check", "certificate", f"{plan.name} {lp.label}", how))
            changes += [Change("none", "listener", plan.name, f"refused: {why}") for why in plan.refused]
            changes += [Change("check", "load_balancer", plan.name, note) for note in plan.notes]
        return changes

    def apply(self, ctx: ActionContext, params: ProvisionLoadBalancersParams) -> dict[str, Any]:
        entries = node_entries(ctx.outputs)
        plans = [plan.with_servers(entries, ctx.manifest) for plan in _plans(ctx, params)]
        if not entries and any(plan.lb.targets for plan in plans):
            raise OperationFailed("provision-load-balancers: no new nodes among the outputs of the steps it needs: "
                                  "it needs the provision-nodes step (list it in needs)")
        outputs: dict[str, Any] = {"load_balancers": {}, "dns_names": {}}
        node_plans = {plan.lb.id: _node_plan(ctx, params, plan, user_data=_user_data(ctx, plan))
                      for plan in plans if plan.via != VIA_DRIVER}
        firewalls = {plan.lb.id: _balancer_firewall(ctx, plan) for plan in plans if plan.via != VIA_DRIVER}
        made = {lb_id: _ensure_firewall(ctx, node_plans[lb_id], firewall) for lb_id, firewall in firewalls.items()}
        by_id = {plan.lb.id: plan for plan in plans}
        node_plans = {lb_id: _inside(ctx, by_id[lb_id], node_plan, firewalls[lb_id], made[lb_id])
                      for lb_id, node_plan in node_plans.items()}
        ready = ensure_nodes(ctx, list(node_plans.values()), wait=params.wait, timeout=params.timeout) if node_plans else {}
        inside = at_creation(ctx.targets.compute) if made else False  # then only an adopted node may lack it
        _attach_missing(ctx, {lb_id: (ready[lb_id][0].id, firewall) for lb_id, firewall in made.items()
                              if firewall is not None and not (inside and not ready[lb_id][1])})
        for plan in plans:
            if plan.via == VIA_DRIVER:
                entry = _through_driver(ctx, plan)
            else:
                node, adopted = ready[plan.lb.id]
                private_ip = node.private_ips[0] if node.private_ips else None
                entry = {"id": node.id, "address": node.public_ips[0] if node.public_ips else None,
                         "private_ip": private_ip, "adopted": adopted,
                         "firewall": _firewall_entry(ctx, firewalls[plan.lb.id], made[plan.lb.id]),
                         "backend_rules": _admit_balancer(ctx, plan, private_ip)}
            outputs["load_balancers"][plan.lb.id] = {
                "name": plan.name, "via": plan.via, **entry, "dns_name": plan.lb.dns_name,
                "dns_names": list(plan.dns_names), "listeners": [lp.to_dict() for lp in plan.listeners],
                "refused": list(plan.refused),
            }
            if plan.lb.dns_name and entry.get("address"):
                outputs["dns_names"][plan.lb.dns_name] = entry["address"]
            for why in plan.refused:
                ctx.info(f"{plan.name}: listener refused: {why}")
        return outputs

    def undo(self, ctx: ActionContext, params: ProvisionLoadBalancersParams) -> None:
        names = balancer_names(ctx.manifest, ctx.naming_service)
        balancers = selected(ctx.manifest, params)
        if ctx.targets.has("compute"):  # without compute, no load-balancer node was made
            compute = ctx.targets.compute
            if compute.supports_firewalls:
                _remove_backend_rules(ctx, compute)
            destroy_nodes(ctx, [names[lb.id] for lb in balancers])
            if compute.supports_firewalls:  # once the nodes in them are gone
                _delete_firewalls(ctx, compute, [_firewall_name(ctx, names[lb.id]) for lb in balancers])
        created = [item for item in ctx.created if item["kind"] == "load_balancer"]
        if created:
            _destroy_balancers(ctx, created)


def _plans(ctx: ActionContext, params: ProvisionLoadBalancersParams) -> list[BalancerPlan]:
    balancers = selected(ctx.manifest, params)
    if not balancers:
        raise NothingToDo("no load balancers in the snapshot")
    names = balancer_names(ctx.manifest, ctx.naming_service)
    return [plan_balancer(ctx.manifest, lb, ctx.targets.profile, names[lb.id]) for lb in balancers]


def _listener_text(lp: Any) -> str:
    health = f"HTTP {lp.health.path}" if lp.health and lp.health.path else "TCP connect"
    backends = ", ".join(lp.backend_ids) or "none"
    return f"{lp.label} -> port {lp.backend_port} of {backends} (health: {health})"


# -- a load-balancer node -------------------------------------------------------------------------


def _node_plan(ctx: ActionContext, params: ProvisionLoadBalancersParams, plan: BalancerPlan,
               user_data: str | None) -> NodePlan:
    node = _as_node(ctx.manifest, plan.lb)
    profile: TargetProfile = ctx.targets.profile
    overrides: dict[str, Any] = {}
    if params.size:
        overrides["sizes"] = {**profile.sizes, node.instance_type: params.size}
    if params.image:
        overrides["images"] = {**profile.images, node.image_id or node.id: params.image}
    if node.image_id is None and not params.image:
        raise ConfigError([Problem(file="playbook", field="with.image", message=(
            f"load balancer {plan.lb.name}: no node of the snapshot to take an image from; give image"))])
    mapping = map_onto_target(ctx, [node], profile.model_copy(update=overrides) if overrides else None)
    choice = mapping.for_node(node.id)
    return NodePlan(
        source_id=plan.lb.id, source_name=plan.lb.name, key=plan.lb.id, name=plan.name, size=choice.size,
        image=choice.image, user_data=user_data, labels={**run_labels(ctx), SOURCE_LABEL: _label_value(plan.lb)},
        firewall="none",
    )


def _label_value(lb: LoadBalancer) -> str:
    """A classic balancer's id is its name; an ARN is too long and too colourful for some labels."""
    return lb.id.rsplit("/", 2)[-2] if lb.id.startswith("arn:") and lb.id.count("/") >= 2 else lb.id


def _as_node(manifest: Manifest, lb: LoadBalancer) -> Node:
    """The load-balancer node as the mapping sees a node: a small one, with the image of the first
    node behind the balancer (else of the snapshot's first node)."""
    nodes = {node.id: node for node in manifest.of_kind("node")}
    reference = next((nodes[i] for i in lb.targets if i in nodes), None) or next(iter(nodes.values()), None)
    return Node(
        id=f"lb:{lb.id}", name=f"lb-{lb.name}", region=lb.region, tags={}, instance_type=LB_INSTANCE_TYPE, vcpus=2,
        memory_mib=2048, image_id=reference.image_id if reference else None,
        image_name=reference.image_name if reference else None,
        image_description=reference.image_description if reference else None,
        architecture=reference.architecture if reference else "x86_64", private_ip=None, public_ip=None,
        user_data=None, state="running", root_volume_gib=8,
    )


def _user_data(ctx: ActionContext, plan: BalancerPlan) -> str:
    profile: TargetProfile = ctx.targets.profile
    certificates = {}
    for domain in plan.profile_domains:
        key = profile_certificate(profile, domain)
        if key is not None and certificate_file_name(key) not in certificates:
            certificates[certificate_file_name(key)] = _pem(ctx, key)
    acme = profile.acme
    config = balancer_cloud_config(plan, certificates, acme.email if acme else None,
                                   acme.directory if acme else "")
    return render_cloud_config(config)


def _pem(ctx: ActionContext, domain: str) -> str:
    """The certificate and key of ``tls: {domain}``, read now from the environment or files."""
    spec = ctx.targets.profile.tls[domain]
    file = str(ctx.config.path) if ctx.config is not None else "failover.yaml"
    parts = []
    for field, kind in (("certificate", "CERTIFICATE"), ("key", "PRIVATE KEY")):
        where = f"targets.{ctx.target_name}.tls.{domain}.{field}"
        value = getattr(spec, field)
        if value.startswith("${env:"):
            text = resolve_secrets(value, file=file, field=where)
        else:
            path = Path(value) if Path(value).is_absolute() else Path(file).parent / value
            try:
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not ASCII PEM text"
                raise ConfigError([Problem(file=file, field=where, message=f"cannot read {value}: {reason}")]) from None
        if "-----BEGIN " not in text or kind not in text:
            raise ConfigError([Problem(file=file, field=where, message=f"not a PEM {kind.lower()}")])
        parts.append(text.strip() + "\n")
    return "".join(parts)


# -- the load-balancer node's firewall, and the backends admitting it -------------------------------


def _firewall_name(ctx: ActionContext, node_name: str) -> str:
    """The node's name, unless a source security group's target firewall is called so."""
    taken = set(firewall_names(ctx.manifest, ctx.naming_service).values())
    return node_name if node_name not in taken else f"{node_name}-balancer"


def _balancer_firewall(ctx: ActionContext, plan: BalancerPlan) -> BalancerFirewall:
    api = ctx.targets.compute.supports_firewalls
    return balancer_firewall(ctx.manifest, plan.lb, _firewall_name(ctx, plan.name), [lp.port for lp in plan.listeners],
                             acme=bool(plan.acme_domains), ipv6=not api)


def _firewall_changes(ctx: ActionContext, plan: BalancerPlan) -> list[Change]:
    compute = ctx.targets.compute
    firewall = _balancer_firewall(ctx, plan)
    admits = "; ".join(firewall.describe())
    if compute.supports_firewalls:
        existing = compute.find_firewall(firewall.name)
        how = "the node is created inside it" if at_creation(compute) else "attached right after the node is created"
        state = f"; exists as {existing.id}: adopted when it is this run's or holds these rules" if existing else ""
        changes = [Change("none" if existing else "create", "firewall", firewall.name,
                          f"{VIA_API}, made before the load-balancer node ({how}): {admits}{state}")]
    else:
        changes = [Change("create", "firewall", firewall.name,
                          f"{VIA_CLOUD_INIT} in the load-balancer node's cloud-init: {admits}")]
    changes += [Change("check", "firewall", firewall.name, note) for note in firewall.notes]
    names = firewall_names(ctx.manifest, ctx.naming_service)
    for group, rule in balancer_sourced(ctx.manifest, plan.lb):
        source = ", ".join(comment_text(g) for g in plan.lb.security_groups if g in rule.sources)
        if compute.supports_firewalls:
            detail = (f"{describe_rule(rule)} from the load-balancer node's private address (the source was the "
                      f"balancer's group {source}), added once the node exists; removed by undo")
            changes.append(Change("create", "firewall_rule", names[group.id], detail))
        else:
            detail = (f"{VIA_CLOUD_INIT}: {describe_rule(rule)} from the balancer's group {source} was written at the "
                      "backends' first boot as their own private networks: the load-balancer node is admitted only "
                      "from within those networks; nothing wider is opened")
            changes.append(Change("check", "firewall_rule", names[group.id], detail))
    changes += [Change("none", "firewall_rule", plan.name, f"refused: {why}")
                for why in balancer_sourced_refused(ctx.manifest, plan.lb)]
    return changes


def _ensure_firewall(ctx: ActionContext, node_plan: NodePlan, firewall: BalancerFirewall) -> FirewallInfo | None:
    """The node's target firewall, found or made (journaled the moment it exists); None without
    a firewall API. One of that name this run did not make is adopted only when it holds exactly
    these rules."""
    compute = ctx.targets.compute
    if not compute.supports_firewalls:
        return None
    labels = {**run_labels(ctx), SOURCE_LABEL: node_plan.labels[SOURCE_LABEL]}
    existing = compute.find_firewall(firewall.name)
    if existing is None:
        if ctx.cancel.is_set():
            raise Interrupted(f"cancelled before creating firewall {firewall.name}")

        def journal(firewall_id: str) -> None:
            ctx.record("firewall", firewall_id, name=firewall.name, source_id=node_plan.source_id)

        created = compute.create_firewall(firewall.name, firewall.rules, labels=labels, on_created=journal)
        ctx.info(f"created firewall {firewall.name} ({created.id}) for the load-balancer node, before it")
        return created
    check_adoptable(ctx, "firewall", firewall.name, existing.id, existing.labels)
    ours = existing.labels.get(RUN_LABEL) == ctx.run_id or recorded(ctx, existing.id)
    if ours and not recorded(ctx, existing.id):
        # Created by this run, which crashed before the journal heard of it: it is ours to undo.
        ctx.record("firewall", existing.id, name=firewall.name, source_id=node_plan.source_id)
    if rule_set(existing.rules) == rule_set(firewall.rules):
        return existing
    if not ours:
        raise OperationFailed(f"firewall {firewall.name} ({existing.id}) exists on the target with other rules, and "
                              "this run did not create it: delete or rename it, then run again")
    ctx.info(f"firewall {firewall.name} ({existing.id}): converging its rules (made by an earlier attempt)")
    return compute.set_firewall_rules(existing.id, firewall.rules, labels=labels)


def _inside(ctx: ActionContext, plan: BalancerPlan, node_plan: NodePlan, firewall: BalancerFirewall,
            made: FirewallInfo | None) -> NodePlan:
    """The node plan inside its firewall: at creation, or (no firewall API) in its cloud-init."""
    if made is None:
        nftables = firewall_cloud_config([as_firewall(plan.lb, firewall)])
        return replace(node_plan, user_data=with_cloud_config(node_plan.user_data, nftables), firewall=VIA_CLOUD_INIT)
    inside = (made,) if at_creation(ctx.targets.compute) else ()
    return replace(node_plan, firewall=VIA_API, firewalls=inside)


def _attach_missing(ctx: ActionContext, nodes: dict[str, tuple[str, FirewallInfo]]) -> None:
    """Attach each node's firewall where it is not in it (a driver taking none at creation, or a
    node adopted from before): one listing says which."""
    if not nodes:
        return
    compute = ctx.targets.compute
    current = compute.attached_firewalls({node_id for node_id, _ in nodes.values()})
    for node_id, firewall in sorted(nodes.values(), key=lambda pair: pair[0]):
        if firewall.id not in current.get(node_id, ()):
            compute.attach_firewall(firewall.id, node_id)
            ctx.info(f"attached firewall {firewall.name} ({firewall.id}) to the load-balancer node {node_id}")


def _firewall_entry(ctx: ActionContext, firewall: BalancerFirewall, made: FirewallInfo | None) -> dict[str, Any]:
    return {"via": VIA_API if made is not None else VIA_CLOUD_INIT, "id": made.id if made is not None else None,
            "name": firewall.name, "rules": firewall.describe(), "notes": list(firewall.notes)}


def _admit_balancer(ctx: ActionContext, plan: BalancerPlan, private_ip: str | None) -> list[dict[str, Any]]:
    """Add to the backends' target firewalls the rules whose source was the balancer's group,
    from the node's private address: journaled before each change, a rule there already not
    added again (a rerun after a crash or a refused request finds them)."""
    compute = ctx.targets.compute
    for why in balancer_sourced_refused(ctx.manifest, plan.lb):
        ctx.info(f"{plan.name}: a backend's rule refused (left out, so the backends admit less): {why}")
    sourced = balancer_sourced(ctx.manifest, plan.lb)
    if not sourced:
        return []
    names = firewall_names(ctx.manifest, ctx.naming_service)
    by_group: dict[str, list[FirewallRuleInfo]] = {}
    described: dict[str, list[str]] = {}
    for group, rule in sourced:
        described.setdefault(group.id, []).append(describe_rule(rule))
        if private_ip is not None:
            by_group.setdefault(group.id, []).append(admitting(rule, private_ip))
    if not compute.supports_firewalls or private_ip is None:
        why = (f"{VIA_CLOUD_INIT}: admitted from the backends' private networks only" if not compute.supports_firewalls
               else "the load-balancer node's private address is not known: run again with wait")
        ctx.info(f"{plan.name}: the backends' rules from the balancer's groups: {why}")
        return [{"firewall": names[group_id], "id": None, "rules": rules, "added": 0, "note": why}
                for group_id, rules in described.items()]
    entries = []
    for group_id, wanted in by_group.items():
        name = names[group_id]
        existing = compute.find_firewall(name)
        if existing is None:
            ctx.info(f"{plan.name}: firewall {name} is not on the target (apply-firewall did not make it): "
                     "nothing to add to it")
            entries.append({"firewall": name, "id": None, "rules": [], "added": 0, "note": "not on the target"})
            continue
        missing = rule_set(wanted) - rule_set(existing.rules)
        if missing:
            journaled = {tuple(fact) for item in ctx.created if item["kind"] == BACKEND_RULES
                         and item["id"] == existing.id for fact in item.get("rules", [])}
            ctx.record(BACKEND_RULES, existing.id, name=name,
                       rules=[list(fact) for fact in sorted(journaled | missing, key=repr)])
            compute.set_firewall_rules(existing.id, [*existing.rules, *wanted])
            ctx.info(f"firewall {name} ({existing.id}): admits the load-balancer node {private_ip} "
                     f"({len(missing)} rules added)")
        entries.append({"firewall": name, "id": existing.id, "rules": [_fact_text(fact) for fact in rule_set(wanted)],
                        "added": len(missing)})
    return entries


BACKEND_RULES = "firewall_rules"  # the journal's kind for rules added to a backend's firewall


def _fact_text(fact: tuple) -> str:
    direction, protocol, low, high, source = fact
    ports = "all ports" if low is None else f"port {low}" if low == high else f"ports {low}-{high}"
    return f"{direction} {protocol} {ports} from {source}"


def _remove_backend_rules(ctx: ActionContext, compute: ComputeTarget) -> None:
    """Take out of the backends' firewalls the rules this step journaled adding."""
    journaled: dict[str, tuple[str, set[tuple]]] = {}
    for item in ctx.created:
        if item["kind"] == BACKEND_RULES:
            name, facts = journaled.setdefault(item["id"], (item.get("name", item["id"]), set()))
            facts |= {tuple(fact) for fact in item.get("rules", [])}
    for firewall_id, (name, facts) in sorted(journaled.items()):
        existing = compute.find_firewall(name)
        if existing is None or existing.id != firewall_id:
            continue  # gone already (provision-nodes' undo deletes it)
        have = rule_set(existing.rules)
        if have & facts:
            keep = [FirewallRuleInfo(d, p, low, high, (source,)) for d, p, low, high, source in sorted(have - facts, key=repr)]
            compute.set_firewall_rules(existing.id, keep)
            ctx.info(f"firewall {name} ({firewall_id}): removed the {len(have & facts)} rules admitting the "
                     "load-balancer node")


def _delete_firewalls(ctx: ActionContext, compute: ComputeTarget, names: list[str]) -> None:
    """The load-balancer nodes' firewalls this step made: journaled, or of their names carrying
    this run's and this step's labels (made right before a crash, never journaled)."""
    ids = {item["id"]: item.get("name", item["id"]) for item in ctx.created if item["kind"] == "firewall"}
    for name in names:
        found = compute.find_firewall(name)
        if found is not None and found.labels.get(RUN_LABEL) == ctx.run_id \
                and found.labels.get(STEP_LABEL) == ctx.step_id:
            ids.setdefault(found.id, found.name)
    for firewall_id, name in sorted(ids.items()):
        if compute.delete_firewall(firewall_id):
            ctx.info(f"deleted firewall {name} ({firewall_id})")


# -- through a libcloud balancer driver -------------------------------------------------------------


def _through_driver(ctx: ActionContext, plan: BalancerPlan) -> dict[str, Any]:
    balancers = ctx.targets.loadbalancer
    found = []
    for lp in plan.listeners:
        name = f"{plan.name}-{lp.port}"
        members = [(server.address, server.port) for server in lp.servers]
        balancer, adopted = balancers.find_balancer(name), True
        if balancer is None:
            balancer, adopted = balancers.create_balancer(name, lp.port, lp.protocol.lower(), members), False
            ctx.record("load_balancer", balancer.id, name=name, source_id=plan.lb.id)
            ctx.info(f"created load balancer {name} ({balancer.id})")
        elif not any(item["id"] == balancer.id for item in ctx.created):
            ctx.info(f"load balancer {name} exists ({balancer.id}): adopted")
        found.append((balancer, adopted))
    address = next((balancer.address for balancer, _ in found if balancer.address), None)
    return {"id": ",".join(balancer.id for balancer, _ in found), "address": address, "private_ip": None,
            "adopted": all(adopted for _, adopted in found) if found else False}


def _destroy_balancers(ctx: ActionContext, created: list[dict[str, Any]]) -> None:
    """The balancers this step journaled. libcloud's balancers carry no labels: one found by name
    but never journaled may be someone else's, so it is adopted by apply but never destroyed."""
    balancers = ctx.targets.loadbalancer
    for item in sorted(created, key=lambda item: item["id"]):
        if balancers.destroy_balancer(item["id"]):
            ctx.info(f"destroyed load balancer {item.get('name', item['id'])} ({item['id']})")
