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

Outputs::

    load_balancers: {<source balancer id>: {name, id, via, address, private_ip, dns_name,
                     dns_names, listeners: [{protocol, port, backend_port, tls, domains,
                     health_check, backends: [{source_id, address, port}]}], refused, adopted}}
    dns_names:      {<the source balancer's DNS name>: <the new balancer's address>}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.cloudinit import cloud_config as render_cloud_config
from failover.config import TargetProfile, resolve_secrets
from failover.errors import ConfigError, InputError, NothingToDo, OperationFailed, Problem
from failover.frontdoor import VIA_DRIVER, BalancerPlan, node_entries, plan_balancer, profile_certificate
from failover.haproxy import certificate_file_name
from failover.haproxy import cloud_config as balancer_cloud_config
from failover.manifest import LoadBalancer, Manifest, Node
from failover.naming import node_names, target_names
from failover.nodes import SOURCE_LABEL, NodePlan, destroy_nodes, ensure_nodes, map_onto_target, node_change, run_labels

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
        ready = ensure_nodes(ctx, list(node_plans.values()), wait=params.wait, timeout=params.timeout) if node_plans else {}
        for plan in plans:
            if plan.via == VIA_DRIVER:
                entry = _through_driver(ctx, plan)
            else:
                node, adopted = ready[plan.lb.id]
                entry = {"id": node.id, "address": node.public_ips[0] if node.public_ips else None,
                         "private_ip": node.private_ips[0] if node.private_ips else None, "adopted": adopted}
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
            destroy_nodes(ctx, [names[lb.id] for lb in balancers])
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
