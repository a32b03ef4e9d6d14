"""``provision-nodes``: the snapshot's nodes recreated on the target: the mapped size and
image, the node's own user data, and (where the target has no firewall API) its security
groups as an nftables firewall in cloud-init, so the firewall exists from first boot.

Each node gets the deterministic name of ``failover.naming`` and the run's labels. Before
creating a node, ``apply`` looks for one of that name and adopts it, so a re-apply after
a crash (even one right after the provider created the node, before the journal heard
of it) never creates a node twice.

In a drill the names are made from ``<prefix>-<service>`` (``drill-social-app-web-1``) and
the nodes carry the label ``failover-drill``; a drill adopts only nodes of its own run,
never one it finds there from elsewhere (a drill measures a real creation, and its
teardown must leave whatever was there before).

A scaling group of the snapshot (``node_group``) becomes its ``desired`` nodes, built from its
launch specification and named ``<service>-<group>-<n>`` (:mod:`failover.nodegroups`); the
instances it ran are not copied. Source-only endpoints in user data are replaced by their target
counterparts (:mod:`failover.rewrite`) unless ``rewrite_endpoints`` is false.

Outputs, for the steps that need this one (DNS cutover, firewall, health checks)::

    nodes:     {<source name>: {id, name, source_id, source_name, public_ip, private_ip,
                                size, image, state, adopted, firewall, security_groups,
                                refused_rules}}
    addresses: {<source id>: <new public ip>}   (a group's members too: member k -> its node k)
    endpoints: {substitutions: {<old>: {to, kind, of, via, nodes}}, unresolved: {<old>: {kind, of, why, nodes}}}
    <source name>: the same entry as under nodes (``${steps.nodes.outputs.web-1.public_ip}``)

A group node's entry is keyed ``<group name>-<n>``, its ``source_id`` is ``<group id>#<n>``, and it
carries ``group`` (the node group's id).

An entry is keyed by the source node's name, or by its source id where two selected
nodes share a name (or the name is ``nodes`` or ``addresses``). ``firewall`` says how
the security groups ``security_groups`` (source ids) reach the node: ``cloud-init
nftables``, ``firewall API`` (apply-firewall's job) or ``none``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.manifest import Node
from failover.naming import node_names
from failover.nodegroups import group_changes, select_with_groups, selected_groups, with_group_outputs
from failover.nodes import NodeSelector, destroy_nodes, ensure_nodes, node_change, node_outputs, plan_nodes
from failover.rewrite import Rewritten, build_map, rewrite_all


class ProvisionNodesParams(Params):
    select: NodeSelector = Field(
        default_factory=NodeSelector,
        description="Which snapshot nodes to recreate; by default every node that was running or stopped.",
    )
    wait: bool = Field(True, description="Wait until every node runs (its addresses are known then).")
    timeout: float = Field(600, gt=0, le=86400, description="Seconds to wait for the nodes to run.")
    rewrite_endpoints: bool = Field(
        True, description="Replace the source-only endpoints user data names (the service's public IPs, RDS endpoints, "
        "load balancers, S3 bucket hosts) by their target counterparts; plan lists every substitution.",
    )


@ACTIONS.register("provision-nodes")
class ProvisionNodes(Action):
    """Create the snapshot's nodes on the target, mapped, labelled and idempotently."""

    summary = "Recreate the snapshot's nodes on the target: mapped sizes and images, their user data, their firewall."
    Params = ProvisionNodesParams
    example = {"select": {"tags": {"role": "web"}}, "wait": True, "timeout": 600}

    def plan(self, ctx: ActionContext, params: ProvisionNodesParams) -> list[Change]:
        nodes, rewritten = _with_endpoints_rewritten(ctx, params, planning=True)
        plans = plan_nodes(ctx, nodes)
        if not plans:
            return [Change("none", "node", ctx.step_id, "the selection matches no node of the snapshot")]
        compute = ctx.targets.compute
        changes = [node_change(ctx, plan, compute.find_node(plan.name)) for plan in plans]
        changes += group_changes(ctx, selected_groups(ctx.manifest, params.select),
                                 node_names(ctx.manifest, ctx.naming_service))
        if rewritten is not None:
            return changes + _rewrite_changes(rewritten)
        return changes + [warning for plan in plans for warning in _old_addresses_in_user_data(ctx, plan)]

    def apply(self, ctx: ActionContext, params: ProvisionNodesParams) -> dict[str, Any]:
        nodes, rewritten = _with_endpoints_rewritten(ctx, params, planning=False)
        if rewritten is not None:
            for change in _rewrite_changes(rewritten):
                ctx.info(f"user data: {change.name} {change.detail}")
        plans = plan_nodes(ctx, nodes)
        ready = ensure_nodes(ctx, plans, wait=params.wait, timeout=params.timeout)
        outputs = with_group_outputs(ctx.manifest, node_outputs(plans, ready))
        return {**outputs, "endpoints": rewritten.to_dict()} if rewritten is not None else outputs

    def undo(self, ctx: ActionContext, params: ProvisionNodesParams) -> None:
        names = node_names(ctx.manifest, ctx.naming_service)
        destroy_nodes(ctx, [names[node.id] for node in _selected(ctx, params)])


def _selected(ctx: ActionContext, params: ProvisionNodesParams) -> list[Node]:
    """The selected nodes no scaling group ran, and the selected groups' nodes."""
    return select_with_groups(ctx.manifest, params.select)


def _with_endpoints_rewritten(
    ctx: ActionContext, params: ProvisionNodesParams, *, planning: bool
) -> tuple[list[Node], Rewritten | None]:
    """The nodes to build, their user data rewritten (unless ``rewrite_endpoints`` is off), and what was."""
    nodes = _selected(ctx, params)
    if not params.rewrite_endpoints:
        return nodes, None
    has_storage = ctx.manifest.of_kind("bucket") and getattr(ctx.targets, "has", lambda _: False)("storage")
    storage = ctx.targets.storage if has_storage else None
    mapping = build_map(ctx.manifest, ctx.outputs, ctx.needs, planning=planning, storage=storage)
    names = node_names(ctx.manifest, ctx.naming_service)
    texts, rewritten = rewrite_all(mapping, [(names[node.id], node.user_data) for node in nodes])
    return [node.model_copy(update={"user_data": text}) for node, text in zip(nodes, texts, strict=True)], rewritten


def _rewrite_changes(rewritten: Rewritten) -> list[Change]:
    """The substitution map as plan lines: one per endpoint the user data names."""
    changes = [
        Change("update", "user_data", old, f"-> {entry['to'] or '(' + entry['via'] + ')'}: {entry['kind']} {entry['of']}"
               + (f", via {entry['via']}" if entry["to"] else "") + f"; in {', '.join(entry['nodes'])}")
        for old, entry in rewritten.substitutions.items()
    ]
    return changes + [
        Change("check", "user_data", old, f"warning: {entry['kind']} {entry['of']} has no counterpart on the target "
               f"({entry['why']}); left unchanged in {', '.join(entry['nodes'])}")
        for old, entry in rewritten.unresolved.items()
    ]


def _old_addresses_in_user_data(ctx: ActionContext, plan: Any) -> list[Change]:
    """A warning where a node's user data names the service's public addresses at the source (its
    Elastic IPs, its nodes' public IPs): it is copied unchanged, and those addresses stay behind."""
    node = ctx.manifest.find("node", plan.source_id)
    if node is None or not node.user_data:
        return []
    old = {n.public_ip for n in ctx.manifest.of_kind("node") if n.public_ip}
    old |= {address.ip for address in ctx.manifest.of_kind("address")}
    named = sorted(ip for ip in old if re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d.])", node.user_data))
    if not named:
        return []
    return [Change("check", "user_data", plan.name, f"warning: the user data names the source's address "
                   f"{', '.join(named)}; it is copied unchanged and will not point at the target")]

