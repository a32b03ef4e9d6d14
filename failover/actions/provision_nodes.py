"""``provision-nodes``: the snapshot's nodes recreated on the target: the mapped size and
image, the node's own user data, and its security groups from first boot: where the target
has no firewall API, as an nftables firewall in cloud-init; where its driver takes firewalls
at node creation (EC2), each group's target firewall is made first (its rules of fixed
sources; apply-firewall adds those naming groups) and the node is created inside it
(``firewall_at_creation``, default true). Elsewhere apply-firewall attaches them afterwards.

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
                                refused_rules, firewall_ids}}
    addresses: {<source id>: <new public ip>}   (a group's members too: member k -> its node k)
    endpoints: {substitutions: {<old>: {to, kind, of, via, nodes}}, unresolved: {<old>: {kind, of, why, nodes}}}
    <source name>: the same entry as under nodes (``${steps.nodes.outputs.web-1.public_ip}``)

A group node's entry is keyed ``<group name>-<n>``, its ``source_id`` is ``<group id>#<n>``, and it
carries ``group`` (the node group's id).

An entry is keyed by the source node's name, or by its source id where two selected
nodes share a name (or the name is ``nodes`` or ``addresses``). ``firewall`` says how
the security groups ``security_groups`` (source ids) reach the node: ``cloud-init
nftables``, ``firewall API`` (apply-firewall finishes them) or ``none``; ``firewall_ids``
are the target firewalls the node was created in (empty when adopted or attached later).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import NothingToDo
from failover.firewalls import at_creation, creation_firewalls, delete_firewalls, initial_rules
from failover.manifest import Node
from failover.naming import firewall_names, node_names
from failover.nodegroups import group_changes, select_with_groups, selected_groups, with_group_outputs
from failover.nodes import (
    RUN_LABEL,
    VIA_API,
    NodeSelector,
    destroy_nodes,
    ensure_nodes,
    node_change,
    node_firewalls,
    node_outputs,
    plan_nodes,
)
from failover.rewrite import Rewritten, build_map, rewrite_all


class ProvisionNodesParams(Params):
    select: NodeSelector = Field(
        default_factory=NodeSelector,
        description="Which snapshot nodes to recreate; by default every node that was running or stopped.",
    )
    wait: bool = Field(True, description="Wait until every node runs (its addresses are known then).")
    timeout: float = Field(600, gt=0, le=86400, description="Seconds to wait for the nodes to run.")
    firewall_at_creation: bool = Field(
        True,
        description="Where the target's driver takes firewalls at node creation (EC2), make the nodes' firewalls "
        "first (their rules of fixed sources) and create each node inside them; false: apply-firewall attaches "
        "them after the nodes exist.",
    )
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
        nodes, rewritten, plans = _planned_or_skip(ctx, params, planning=True)
        compute = ctx.targets.compute
        firewalls = _firewall_changes(ctx, nodes) if _firewalls_first(ctx, params) else []
        changes = [node_change(ctx, plan, compute.find_node(plan.name)) for plan in plans]
        changes += group_changes(ctx, selected_groups(ctx.manifest, params.select),
                                 node_names(ctx.manifest, ctx.naming_service))
        if rewritten is not None:
            return firewalls + changes + _rewrite_changes(rewritten)
        return firewalls + changes + [warning for plan in plans for warning in _old_addresses_in_user_data(ctx, plan)]

    def apply(self, ctx: ActionContext, params: ProvisionNodesParams) -> dict[str, Any]:
        nodes, rewritten, plans = _planned_or_skip(ctx, params, planning=False)
        if rewritten is not None:
            for change in _rewrite_changes(rewritten):
                ctx.info(f"user data: {change.name} {change.detail}")
        if _firewalls_first(ctx, params):
            made = creation_firewalls(ctx, [node for node in nodes if node.firewalls])
            plans = [
                replace(plan, firewalls=tuple(made[group] for group in plan.security_groups if group in made))
                for plan in plans
            ]
        ready = ensure_nodes(ctx, plans, wait=params.wait, timeout=params.timeout)
        outputs = with_group_outputs(ctx.manifest, node_outputs(plans, ready))
        return {**outputs, "endpoints": rewritten.to_dict()} if rewritten is not None else outputs

    def undo(self, ctx: ActionContext, params: ProvisionNodesParams) -> None:
        names = node_names(ctx.manifest, ctx.naming_service)
        nodes = _selected(ctx, params)
        destroy_nodes(ctx, [names[node.id] for node in nodes])
        compute = ctx.targets.compute
        if compute.supports_firewalls:  # the firewalls made before the nodes, once the nodes are gone
            groups = {group.id: group for node in nodes for group in node_firewalls(ctx.manifest, node)}
            delete_firewalls(ctx, compute, [groups[group_id] for group_id in sorted(groups)])


def _firewalls_first(ctx: ActionContext, params: ProvisionNodesParams) -> bool:
    return params.firewall_at_creation and at_creation(ctx.targets.compute)


def _firewall_changes(ctx: ActionContext, nodes: Sequence[Node]) -> list[Change]:
    """The firewalls made before the nodes, in the plan: one line per security group."""
    compute = ctx.targets.compute
    names, node_names_ = firewall_names(ctx.manifest, ctx.naming_service), node_names(ctx.manifest, ctx.naming_service)
    groups = {group.id: group for node in nodes for group in node_firewalls(ctx.manifest, node)}
    changes = []
    for group_id in sorted(groups):
        name, group = names[group_id], groups[group_id]
        members = ", ".join(node_names_[node.id] for node in nodes if group_id in node.firewalls)
        existing = compute.find_firewall(name)
        if existing is not None and ctx.drill_prefix and existing.labels.get(RUN_LABEL) != ctx.run_id:
            detail = (f"exists as {existing.id}, not made by this drill: the drill would stop here "
                      "(remove it, or drill under another --prefix)")
            changes.append(Change("check", "firewall", name, detail))
            continue
        if existing is not None and existing.labels.get(RUN_LABEL) == ctx.run_id:
            detail = f"{VIA_API}, at node creation: made by this run as {existing.id}; created in it: {members}"
            changes.append(Change("none", "firewall", name, detail))
            continue
        if existing is not None:
            detail = (f"{VIA_API}, attached after: exists as {existing.id}, not made by this run, so {members} are "
                      f"created without it; apply-firewall adopts it (when its rules are {group_id}'s) and attaches it")
            changes.append(Change("none", "firewall", name, detail))
            continue
        detail = (f"{VIA_API}, at node creation: from {group_id} ({group.name}), made before the nodes with its "
                  f"{len(initial_rules(group))} rules of fixed sources (apply-firewall adds the rules naming groups); "
                  f"created in it: {members}")
        changes.append(Change("create", "firewall", name, detail))
    return changes


def _planned_or_skip(
    ctx: ActionContext, params: ProvisionNodesParams, *, planning: bool
) -> tuple[list[Node], Rewritten | None, list[Any]]:
    """The nodes to build (their user data rewritten), what was rewritten, and their plans; a step
    with none to create is skipped with its reason, in plan and run alike."""
    nodes, rewritten = _with_endpoints_rewritten(ctx, params, planning=planning)
    plans = plan_nodes(ctx, nodes)
    if not plans:
        raise NothingToDo("the selection matches no node of the snapshot"
                          if ctx.manifest.of_kind("node") or ctx.manifest.of_kind("node_group")
                          else "no nodes in the snapshot")
    return nodes, rewritten, plans


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

