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

Outputs, for the steps that need this one (DNS cutover, firewall, health checks)::

    nodes:     {<source name>: {id, name, source_id, source_name, public_ip, private_ip,
                                size, image, state, adopted, firewall, security_groups,
                                refused_rules}}
    addresses: {<source id>: <new public ip>}
    <source name>: the same entry as under nodes (``${steps.nodes.outputs.web-1.public_ip}``)

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
from failover.errors import NothingToDo
from failover.naming import node_names
from failover.nodes import (
    NodeSelector,
    destroy_nodes,
    ensure_nodes,
    node_change,
    node_outputs,
    plan_nodes,
    select_nodes,
)


class ProvisionNodesParams(Params):
    select: NodeSelector = Field(
        default_factory=NodeSelector,
        description="Which snapshot nodes to recreate; by default every node that was running or stopped.",
    )
    wait: bool = Field(True, description="Wait until every node runs (its addresses are known then).")
    timeout: float = Field(600, gt=0, le=86400, description="Seconds to wait for the nodes to run.")


@ACTIONS.register("provision-nodes")
class ProvisionNodes(Action):
    """Create the snapshot's nodes on the target, mapped, labelled and idempotently."""

    summary = "Recreate the snapshot's nodes on the target: mapped sizes and images, their user data, their firewall."
    Params = ProvisionNodesParams
    example = {"select": {"tags": {"role": "web"}}, "wait": True, "timeout": 600}

    def plan(self, ctx: ActionContext, params: ProvisionNodesParams) -> list[Change]:
        plans = _planned_or_skip(ctx, params)
        compute = ctx.targets.compute
        changes = [node_change(ctx, plan, compute.find_node(plan.name)) for plan in plans]
        return changes + [warning for plan in plans for warning in _old_addresses_in_user_data(ctx, plan)]

    def apply(self, ctx: ActionContext, params: ProvisionNodesParams) -> dict[str, Any]:
        plans = _planned_or_skip(ctx, params)
        ready = ensure_nodes(ctx, plans, wait=params.wait, timeout=params.timeout)
        return node_outputs(plans, ready)

    def undo(self, ctx: ActionContext, params: ProvisionNodesParams) -> None:
        names = node_names(ctx.manifest, ctx.naming_service)
        destroy_nodes(ctx, [names[node.id] for node in select_nodes(ctx.manifest, params.select)])


def _planned_or_skip(ctx: ActionContext, params: ProvisionNodesParams) -> list[Any]:
    """The nodes to create; a step with none is skipped with its reason, in plan and run alike."""
    plans = plan_nodes(ctx, select_nodes(ctx.manifest, params.select))
    if not plans:
        raise NothingToDo("the selection matches no node of the snapshot" if ctx.manifest.of_kind("node")
                          else "no nodes in the snapshot")
    return plans


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

